-- depends: 0010_campaign_phases
-- Two things the map pages need to stay fast at a million issues.
--
-- 1. A version of the issue table that costs nothing to read. Counting or summing the table
--    (what the caches keyed on before) scans a million rows, 0.28 s per page at 1M issues.
--    Every transaction that changes issues adds one to a counter, once, at its own commit
--    (same transaction as the change, so a reader never sees the new count with the old
--    rows). The counter is sharded and a writer takes a shard nobody holds (SKIP LOCKED):
--    one counter row would queue every reporting transaction behind the one before it, and
--    behind a bulk reassignment for its whole length. The version is the sum of the shards.
CREATE TABLE issue_change (
    shard   smallint PRIMARY KEY,
    n       bigint NOT NULL DEFAULT 0
);
INSERT INTO issue_change (shard) SELECT generate_series(0, 15);

CREATE FUNCTION count_issue_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    tx      text := txid_current()::text;
    picked  smallint;
BEGIN
    -- Once per transaction (a savepoint rolled back also rolls this setting back).
    IF current_setting('sitewatch.issue_change_tx', true) = tx THEN
        RETURN NULL;
    END IF;
    SELECT shard INTO picked FROM issue_change ORDER BY random() LIMIT 1
        FOR UPDATE SKIP LOCKED;
    IF picked IS NULL THEN  -- all sixteen held by open transactions: wait for one
        picked := floor(random() * 16)::smallint;
    END IF;
    UPDATE issue_change SET n = n + 1 WHERE shard = picked;
    PERFORM set_config('sitewatch.issue_change_tx', tx, true);
    RETURN NULL;
END
$$;

CREATE TRIGGER issue_counts_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON issue FOR EACH STATEMENT EXECUTE FUNCTION count_issue_change();

-- 2. Analysis snapshots: what a map page shows that takes seconds to compute at scale (the
--    overview's aggregates, the hotspot analysis), stored with the data version they were
--    computed from. Pages read the newest snapshot; a stale one is served (labelled with its
--    time) while a refresh runs in the background. Shared by every server process and kept
--    across restarts. See layers/analysis/snapshots.py.
CREATE TABLE analysis_snapshot (
    key             text PRIMARY KEY CHECK (length(key) <= 200),
    data_version    text NOT NULL,
    computed_at     timestamptz NOT NULL DEFAULT now(),
    seconds         double precision NOT NULL CHECK (seconds >= 0),
    payload         jsonb NOT NULL
);
