-- depends: 0026_line_history
-- What the map of an import's preview draws (issue 18, /maps/revisions/preview/{token}): the
-- preview itself stores no line and no issue, so its map keeps its own copy here for a day,
-- under a random token (layers/line_previews.py bounds its size and purges what expired).
CREATE TABLE line_preview (
    token      text PRIMARY KEY CHECK (token ~ '^[A-Za-z0-9_-]{43}$'),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL DEFAULT now() + interval '24 hours',
    created_by text NOT NULL,
    payload    jsonb NOT NULL
);
CREATE INDEX line_preview_expires_at ON line_preview (expires_at);
