-- depends: 0003_layers_version
-- Idempotency keys of issue reports: a phone that retries after a timeout gets the issue it
-- already created, never a second one.

CREATE TABLE idempotency_key (
    token_id     bigint NOT NULL REFERENCES api_token (id) ON DELETE CASCADE,
    key          text NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
    request_hash bytea NOT NULL,
    public_id    text REFERENCES issue (public_id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (token_id, key)
);
