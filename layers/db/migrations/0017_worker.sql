-- depends: 0016_deadline_time_zone
-- The background worker (layers/worker): who runs, and which job slots were claimed.
--
-- A job's slot names one scheduled run (an interval's start, or a local day for a daily job).
-- A worker claims a slot by inserting (job, slot) with ON CONFLICT DO NOTHING: the primary
-- key lets exactly one of several workers win, and a slot once claimed is never run again,
-- even by a worker started later. The row then records how the run ended.
CREATE TABLE job_run (
    job         text NOT NULL,
    slot        timestamptz NOT NULL,
    worker      text NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    ok          boolean,
    result      text,
    PRIMARY KEY (job, slot)
);
CREATE INDEX job_run_recent ON job_run (job, started_at DESC);

-- One row per worker process, its heartbeat written every loop; /health reads the newest.
CREATE TABLE worker (
    name        text PRIMARY KEY,
    host        text NOT NULL,
    pid         integer NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    heartbeat   timestamptz NOT NULL DEFAULT now(),
    stopped_at  timestamptz
);
