-- depends: 0004_idempotency
-- Photos as evidence (整改前后照片), stored content-addressed on disk under the data dir; this
-- table holds what was read from each file so a verifier sees where and when it was taken.

CREATE TABLE evidence (
    sha256       text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    media_type   text NOT NULL CHECK (media_type IN ('image/jpeg', 'image/png')),
    size_bytes   integer NOT NULL CHECK (size_bytes > 0),
    taken_at     timestamptz,
    geom         geometry(Point, 4326),
    uploaded_by  bigint REFERENCES api_token (id) ON DELETE SET NULL,
    uploaded_at  timestamptz NOT NULL DEFAULT now()
);
