-- depends: 0030_partitions
-- Retention (issue 19, layers/retention.py): after Settings.retention_years, reporters' names
-- and contacts are erased and the photos of closed issues archived, as the personal
-- information protection law (个人信息保护法, art. 19) expects: personal data kept no longer
-- than its purpose needs. A run is an audited act: a row here (who, when, cutoff, counts) and
-- a 'retention' event in the trail of every issue it touched.

CREATE TABLE retention_run (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    actor           text NOT NULL CHECK (length(btrim(actor)) BETWEEN 1 AND 200),
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    -- Issues closed before this instant were in scope (now - retention_years at the start).
    cutoff          timestamptz NOT NULL,
    years           integer NOT NULL CHECK (years >= 1),
    state           text NOT NULL DEFAULT 'running'
                    CHECK (state IN ('running', 'done', 'failed')),
    issues_erased   integer NOT NULL DEFAULT 0,
    photos_archived integer NOT NULL DEFAULT 0,
    idempotency_forgotten integer NOT NULL DEFAULT 0,
    error           text,
    CHECK ((state = 'running') = (finished_at IS NULL))
);

-- When an issue's reporter data was erased (by which run): later runs skip it.
ALTER TABLE issue ADD COLUMN personal_erased_at timestamptz;
-- The closed issues of the past a run still has to look at: reported before the cutoff (so
-- one month partition after another), not erased yet.
CREATE INDEX issue_retention_todo_idx ON issue (reported_at)
    WHERE personal_erased_at IS NULL AND status IN ('verified', 'rejected', 'duplicate');

-- An archived photo: the tar under <data dir>/archive that holds it; its download answers 410.
ALTER TABLE evidence ADD COLUMN archived_at timestamptz;
ALTER TABLE evidence ADD COLUMN archive text CHECK (archive ~ '^photos-[0-9]{4}-[0-9]{2}\.tar$');
ALTER TABLE evidence ADD CONSTRAINT evidence_archive_check2
    CHECK ((archived_at IS NULL) = (archive IS NULL));
