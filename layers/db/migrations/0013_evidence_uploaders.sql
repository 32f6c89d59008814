-- depends: 0012_evidence_lookup
-- Who uploaded each photo: the token and its unit. A transition accepts as evidence only
-- photos uploaded by the caller's token or unit (layers/auth/access.py); before, a unit could name
-- a photo it had seen on another unit's issue as its own "after" photo, and the event then let
-- it download that photo. A row per uploader, not a column of evidence: a photo is stored once
-- by its content, and two people may upload the same file. The unit is copied from the token,
-- not joined through it, so a unit keeps its photos after its token is revoked or deleted.
CREATE TABLE evidence_upload (
    sha256       text NOT NULL REFERENCES evidence (sha256) ON DELETE CASCADE,
    token_id     bigint REFERENCES api_token (id) ON DELETE SET NULL,
    unit_id      bigint REFERENCES unit (id) ON DELETE SET NULL,
    uploaded_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (sha256, token_id)
);

INSERT INTO evidence_upload (sha256, token_id, unit_id, uploaded_at)
SELECT e.sha256, e.uploaded_by, t.unit_id, e.uploaded_at
FROM evidence e LEFT JOIN api_token t ON t.id = e.uploaded_by
WHERE e.uploaded_by IS NOT NULL;

ALTER TABLE evidence DROP COLUMN uploaded_by;
