-- depends: 0029_open_work_by_site
-- Monthly partitions of the issue table (by reported_at) and of its audit trail issue_event
-- (by at), issue 19: a district adds millions of cases over a few years, and a period query
-- (an issues list with since/until, scores or phases over a period, an export, the trail of a
-- period) then reads the partitions of its months only, an old month can be archived whole,
-- and vacuum and index upkeep work month by month.
--
-- Uniqueness. A unique index of a partitioned table must contain the partition key, so
-- issue.id and issue.public_id can no longer be unique on issue, and eight foreign keys point
-- at them (issue_event, supervision_order, inspection_round_issue, deadline_alert,
-- revision_change, idempotency, issue.duplicate_of). They point now at issue_key, a narrow
-- unpartitioned table (id, public_id, reported_at) that keeps both unique and that triggers of
-- issue fill in the inserting statement (a BEFORE INSERT row trigger, so every write path, SQL
-- typed by hand included, gets its key without code changes). Why not (id, reported_at) keys
-- everywhere: every referencing table would need a reported_at column kept in step, and the
-- public id, which callers name alone, would be unique per month only. The key table also
-- answers "which month holds this issue" (layers.issues look-ups by public id read it first
-- and so touch one partition).
--
-- Existing installs: the tables are rebuilt from their own definition (columns, defaults,
-- checks, indexes, triggers, the views over them, foreign keys), read from the catalog, not
-- from a column list written here, and the rows copied in one statement per table. Indexes,
-- keys and triggers are created after the copy: building an index once is faster than
-- growing it row by row, and the tallies already count every copied issue (their journal
-- triggers must not see the copy).
--
-- Partitions: one per local month (in the district's zone, the migrating session's TimeZone,
-- kept by issue_partition_zone()) named issue_yYYYYmMM / issue_event_yYYYYmMM, contiguous, between two
-- open-ended ones: issue_before (MINVALUE to the first month) and issue_after (the end of the
-- last month to MAXVALUE) catch any row whose month does not exist yet. Why not a DEFAULT
-- partition: a default partition may hold any value, so the planner can no longer read the
-- partitions in order, and "the latest issue before a day" (the tallies' site recount, the
-- newest page of the issues list) then opens every month (a Merge Append) instead of reading
-- back from the newest one (an ordered Append). issue_month_partition(month) creates the month
-- next to either end (moving the rows the end partition holds of it); issue_month_partitions(
-- from, to) every month from the range there is to the period asked, at most ten years back
-- and five ahead of now. The worker keeps the coming months created (layers.db.partitions);
-- bulk paths create the months of their rows first.

CREATE TABLE issue_key (
    id          bigint PRIMARY KEY,
    public_id   text NOT NULL UNIQUE,
    -- The partition key of the issue: a look-up by id or public id reads one partition.
    reported_at timestamptz NOT NULL
);

-- The zone of the months: the district's, as the session migrating had it (every connection
-- sitewatch opens sets it: layers.db.database.conninfo). Fixed here, not read from each
-- session: a session in another zone (a test, a DBA's psql) must find the same month bounds.
DO $$
BEGIN
    EXECUTE format('CREATE FUNCTION issue_partition_zone() RETURNS text LANGUAGE sql'
                   ' IMMUTABLE AS %L', format('SELECT %L::text', current_setting('TimeZone')));
END
$$;

-- The finite bound of an end partition: issue_before's upper, issue_after's lower.
CREATE FUNCTION issue_partition_edge(p_part regclass) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT (regexp_match(pg_get_expr(c.relpartbound, c.oid),
                         CASE WHEN pg_get_expr(c.relpartbound, c.oid) LIKE '%MINVALUE%'
                              THEN 'TO \(''([^'']+)''\)' ELSE 'FROM \(''([^'']+)''\)' END)
            )[1]::timestamptz
    FROM pg_class c WHERE c.oid = p_part
$$;

-- One local month of both tables, next to either end of the months there are: the end
-- partition that holds its range is detached, gives the month's rows to the new partition and
-- is attached again with the rest of its range. False when the month exists already. DETACH
-- holds the parent table exclusively until the transaction ends: instant when the end
-- partition is empty, as the worker keeps it. Moving a row between partitions is no change of
-- the issue: a detached partition has none of the parent's triggers (the audit trail's
-- append-only guard, the key upkeep), and the tallies' statement triggers on the parent do
-- not fire for statements on a partition.
CREATE FUNCTION issue_month_partition(p_month date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    zone text := issue_partition_zone();
    local timestamp := date_trunc('month', p_month::timestamp);
    lo timestamptz := date_trunc('month', p_month::timestamp) AT TIME ZONE zone;
    hi timestamptz := (date_trunc('month', p_month::timestamp) + interval '1 month')
                      AT TIME ZONE zone;
    upward boolean;
    parent text;
    keycol text;
    part text;
    edge text;
BEGIN
    IF to_regclass('issue' || to_char(local, '"_y"YYYY"m"MM')) IS NOT NULL THEN
        RETURN false;
    END IF;
    IF lo = issue_partition_edge('issue_after') THEN
        upward := true;
    ELSIF hi = issue_partition_edge('issue_before') THEN
        upward := false;
    ELSE
        RAISE EXCEPTION 'month % is not next to the months there are (% to %)',
            to_char(local, 'YYYY-MM'), issue_partition_edge('issue_before'),
            issue_partition_edge('issue_after');
    END IF;
    FOREACH parent IN ARRAY ARRAY['issue', 'issue_event'] LOOP
        keycol := CASE parent WHEN 'issue' THEN 'reported_at' ELSE 'at' END;
        part := parent || to_char(local, '"_y"YYYY"m"MM');
        edge := parent || CASE WHEN upward THEN '_after' ELSE '_before' END;
        EXECUTE format('ALTER TABLE %I DETACH PARTITION %I', parent, edge);
        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING CONSTRAINTS)', part, parent);
        EXECUTE format('WITH moved AS (DELETE FROM %I WHERE %I >= $1 AND %I < $2 RETURNING *)'
                       ' INSERT INTO %I SELECT * FROM moved', edge, keycol, keycol, part)
            USING lo, hi;
        EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                       parent, part, lo, hi);
        IF upward THEN
            EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L)'
                           ' TO (MAXVALUE)', parent, edge, hi);
        ELSE
            EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (MINVALUE)'
                           ' TO (%L)', parent, edge, lo);
        END IF;
        IF parent = 'issue_event' THEN
            -- A statement trigger of the parent does not guard TRUNCATE of a partition.
            EXECUTE format('CREATE TRIGGER issue_event_no_truncate BEFORE TRUNCATE ON %I'
                           ' FOR EACH STATEMENT EXECUTE FUNCTION issue_event_append_only()',
                           part);
        END IF;
    END LOOP;
    RETURN true;
END
$$;

-- Every month from the months there are to p_from's and p_to's, at most ten years before
-- and five years after now (rows further out wait in the end partitions); the number created.
CREATE FUNCTION issue_month_partitions(p_from timestamptz, p_to timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    zone text := issue_partition_zone();
    lo timestamp := greatest(date_trunc('month', p_from AT TIME ZONE zone),
                             date_trunc('month', (now() - interval '10 years') AT TIME ZONE zone));
    hi timestamp := least(date_trunc('month', p_to AT TIME ZONE zone),
                          date_trunc('month', (now() + interval '5 years') AT TIME ZONE zone));
    m timestamp;
    n integer := 0;
BEGIN
    FOR m IN SELECT generate_series(issue_partition_edge('issue_after') AT TIME ZONE zone, hi,
                                    interval '1 month') LOOP
        IF issue_month_partition(m::date) THEN
            n := n + 1;
        END IF;
    END LOOP;
    FOR m IN SELECT generate_series(
                 (issue_partition_edge('issue_before') AT TIME ZONE zone) - interval '1 month',
                 lo, interval '-1 month') LOOP
        IF issue_month_partition(m::date) THEN
            n := n + 1;
        END IF;
    END LOOP;
    RETURN n;
END
$$;

-- The key of every new issue, in its inserting statement. An UPDATE that moves an issue to
-- another month runs as a delete and an insert of partitions: the insert finds the key there
-- already (so it updates it) and the delete keeps it (the row exists again when AFTER
-- triggers run).
CREATE FUNCTION issue_key_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO issue_key (id, public_id, reported_at)
    VALUES (NEW.id, NEW.public_id, NEW.reported_at)
    ON CONFLICT (id) DO UPDATE SET public_id = EXCLUDED.public_id,
                                   reported_at = EXCLUDED.reported_at;
    RETURN NEW;
END
$$;
CREATE FUNCTION issue_key_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE issue_key SET public_id = NEW.public_id, reported_at = NEW.reported_at
    WHERE id = OLD.id;
    RETURN NULL;
END
$$;
CREATE FUNCTION issue_key_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM issue_key k WHERE k.id = OLD.id
        AND NOT EXISTS (SELECT 1 FROM issue i WHERE i.id = OLD.id);
    RETURN NULL;
END
$$;

DO $$
DECLARE
    tbl text;
    stmt text;
    seq_next bigint;
    lo timestamptz;
    hi timestamptz;
BEGIN
    CREATE TEMP TABLE rebuild (ord serial, phase int, stmt text) ON COMMIT DROP;

    -- Views over the tables, dropped now and created again over the new ones.
    INSERT INTO rebuild (phase, stmt)
    SELECT 4, format('CREATE VIEW %s AS %s', v.oid::regclass, pg_get_viewdef(v.oid))
    FROM pg_class v
    WHERE v.relkind = 'v' AND v.oid IN (
        SELECT rw.ev_class FROM pg_rewrite rw JOIN pg_depend d ON d.objid = rw.oid
        WHERE d.classid = 'pg_rewrite'::regclass
          AND d.refobjid IN ('issue'::regclass, 'issue_event'::regclass))
    ORDER BY v.oid;
    FOR stmt IN SELECT format('DROP VIEW %s', v.oid::regclass) FROM pg_class v
                WHERE v.relkind = 'v' AND v.oid IN (
                    SELECT rw.ev_class FROM pg_rewrite rw JOIN pg_depend d ON d.objid = rw.oid
                    WHERE d.classid = 'pg_rewrite'::regclass
                      AND d.refobjid IN ('issue'::regclass, 'issue_event'::regclass))
                ORDER BY v.oid DESC LOOP
        EXECUTE stmt;
    END LOOP;

    -- Indexes that back no constraint (the primary and unique keys are replaced below).
    INSERT INTO rebuild (phase, stmt)
    SELECT 1, pg_get_indexdef(i.indexrelid)
    FROM pg_index i
    WHERE i.indrelid IN ('issue'::regclass, 'issue_event'::regclass)
      AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
    ORDER BY i.indexrelid;

    -- Foreign keys out of the two tables and into issue: a key into issue now names
    -- issue_key, which holds the same ids and public ids.
    INSERT INTO rebuild (phase, stmt)
    SELECT 2, format('ALTER TABLE %s ADD CONSTRAINT %I %s', c.conrelid::regclass, c.conname,
                     regexp_replace(pg_get_constraintdef(c.oid),
                                    'REFERENCES (public\.)?issue\(', 'REFERENCES issue_key(')
                     )
    FROM pg_constraint c
    WHERE c.contype = 'f'
      AND (c.conrelid IN ('issue'::regclass, 'issue_event'::regclass)
           OR c.confrelid = 'issue'::regclass)
    ORDER BY c.oid;
    FOR stmt IN SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', c.conrelid::regclass,
                              c.conname)
                FROM pg_constraint c
                WHERE c.contype = 'f' AND c.confrelid = 'issue'::regclass
                  AND c.conrelid NOT IN ('issue'::regclass, 'issue_event'::regclass) LOOP
        EXECUTE stmt;
    END LOOP;

    -- Triggers (the tallies' journal, the change counter, the outbox, the append-only guard).
    INSERT INTO rebuild (phase, stmt)
    SELECT 3, pg_get_triggerdef(t.oid)
    FROM pg_trigger t
    WHERE t.tgrelid IN ('issue'::regclass, 'issue_event'::regclass) AND NOT t.tgisinternal
    ORDER BY t.oid;

    INSERT INTO issue_key (id, public_id, reported_at)
    SELECT id, public_id, reported_at FROM issue;

    FOREACH tbl IN ARRAY ARRAY['issue', 'issue_event'] LOOP
        EXECUTE format('ALTER TABLE %I RENAME TO %I', tbl, tbl || '_unpartitioned');
        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS'
                       ' INCLUDING GENERATED INCLUDING STORAGE INCLUDING COMMENTS'
                       ' INCLUDING STATISTICS) PARTITION BY RANGE (%I)',
                       tbl, tbl || '_unpartitioned',
                       CASE tbl WHEN 'issue' THEN 'reported_at' ELSE 'at' END);
        -- The months start at this one; issue_month_partitions adds the others.
        EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (MINVALUE) TO (%L)',
                       tbl || '_before', tbl, date_trunc('month', now() AT TIME ZONE
                       issue_partition_zone()) AT TIME ZONE issue_partition_zone());
        EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (MAXVALUE)',
                       tbl || '_after', tbl, date_trunc('month', now() AT TIME ZONE
                       issue_partition_zone()) AT TIME ZONE issue_partition_zone());
    END LOOP;

    -- The months of the rows (at most ten years back: older rows wait in issue_before until
    -- someone creates their months) and the next three.
    SELECT least(min(t), now()), greatest(max(t), now()) INTO lo, hi
    FROM (SELECT min(reported_at) AS t FROM issue_unpartitioned
          UNION ALL SELECT max(reported_at) FROM issue_unpartitioned
          UNION ALL SELECT min(at) FROM issue_event_unpartitioned
          UNION ALL SELECT max(at) FROM issue_event_unpartitioned) b;
    PERFORM issue_month_partitions(lo, hi + interval '3 months');

    INSERT INTO issue SELECT * FROM issue_unpartitioned;
    INSERT INTO issue_event SELECT * FROM issue_event_unpartitioned;

    -- The trail first: its key into issue_unpartitioned holds that one.
    FOREACH tbl IN ARRAY ARRAY['issue_event', 'issue'] LOOP
        EXECUTE format('SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END'
                       ' FROM %s', pg_get_serial_sequence(tbl || '_unpartitioned', 'id'))
            INTO seq_next;
        EXECUTE format('DROP TABLE %I', tbl || '_unpartitioned');
        EXECUTE format('ALTER TABLE %I ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY'
                       ' (START WITH %s)', tbl, seq_next);
    END LOOP;
    ALTER TABLE issue_event ADD PRIMARY KEY (id, at);
    -- Not unique (the key table is), but what a look-up by id or public id probes in each
    -- partition it reads.
    CREATE INDEX issue_id_idx ON issue (id);
    CREATE INDEX issue_public_id_idx ON issue (public_id);

    FOR stmt IN SELECT r.stmt FROM rebuild r ORDER BY r.phase, r.ord LOOP
        EXECUTE stmt;
    END LOOP;
END
$$;

CREATE TRIGGER issue_key_insert BEFORE INSERT ON issue
    FOR EACH ROW EXECUTE FUNCTION issue_key_insert();
CREATE TRIGGER issue_key_update AFTER UPDATE OF public_id, reported_at ON issue
    FOR EACH ROW WHEN (OLD.public_id IS DISTINCT FROM NEW.public_id
                       OR OLD.reported_at IS DISTINCT FROM NEW.reported_at)
    EXECUTE FUNCTION issue_key_update();
CREATE TRIGGER issue_key_delete AFTER DELETE ON issue
    FOR EACH ROW EXECUTE FUNCTION issue_key_delete();
CREATE TRIGGER issue_event_no_truncate BEFORE TRUNCATE ON issue_event_before
    FOR EACH STATEMENT EXECUTE FUNCTION issue_event_append_only();
CREATE TRIGGER issue_event_no_truncate BEFORE TRUNCATE ON issue_event_after
    FOR EACH STATEMENT EXECUTE FUNCTION issue_event_append_only();

ANALYZE issue_key;
ANALYZE issue;
ANALYZE issue_event;
