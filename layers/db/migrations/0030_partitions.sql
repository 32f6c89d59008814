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
-- Partitions: one per local month (the session's TimeZone, the district's, as the deadline
-- functions of 0016 use) named issue_yYYYYmMM / issue_event_yYYYYmMM, and a DEFAULT partition
-- each that catches any row whose month does not exist yet. issue_month_partition(month)
-- creates a month (moving what the default partitions hold of it); issue_month_partitions(from,
-- to) a range. The worker keeps the coming months created (layers.db.partitions); bulk paths
-- create the months of their rows first.

CREATE TABLE issue_key (
    id          bigint PRIMARY KEY,
    public_id   text NOT NULL UNIQUE,
    -- The partition key of the issue: a look-up by id or public id reads one partition.
    reported_at timestamptz NOT NULL
);

-- One local month of both tables, moving the rows their default partitions hold of it; false
-- when it exists already. The default partitions are locked first: a row of the month written
-- meanwhile would make the ATTACH fail. Moving a row between partitions is no change of the
-- issue: the user triggers of the default partitions (the audit trail's append-only guard, the
-- key upkeep) are disabled for the move, and the tallies' statement triggers on the parent
-- tables do not fire for statements on a partition.
CREATE FUNCTION issue_month_partition(p_month date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    lo timestamptz := date_trunc('month', p_month::timestamptz);
    hi timestamptz := date_trunc('month', p_month::timestamptz) + interval '1 month';
    parent text;
    keycol text;
    part text;
    moved bigint;
    created boolean := false;
BEGIN
    LOCK TABLE issue_default, issue_event_default IN EXCLUSIVE MODE;
    FOREACH parent IN ARRAY ARRAY['issue', 'issue_event'] LOOP
        keycol := CASE parent WHEN 'issue' THEN 'reported_at' ELSE 'at' END;
        part := parent || to_char(lo, '"_y"YYYY"m"MM');
        CONTINUE WHEN to_regclass(part) IS NOT NULL;
        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING CONSTRAINTS)', part, parent);
        EXECUTE format('INSERT INTO %I SELECT * FROM %I WHERE %I >= $1 AND %I < $2',
                       part, parent || '_default', keycol, keycol) USING lo, hi;
        GET DIAGNOSTICS moved = ROW_COUNT;
        IF moved > 0 THEN
            EXECUTE format('ALTER TABLE %I DISABLE TRIGGER USER', parent || '_default');
            EXECUTE format('DELETE FROM %I WHERE %I >= $1 AND %I < $2',
                           parent || '_default', keycol, keycol) USING lo, hi;
            EXECUTE format('ALTER TABLE %I ENABLE TRIGGER USER', parent || '_default');
        END IF;
        EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                       parent, part, lo, hi);
        IF parent = 'issue_event' THEN
            -- A statement trigger of the parent does not guard TRUNCATE of a partition.
            EXECUTE format('CREATE TRIGGER issue_event_no_truncate BEFORE TRUNCATE ON %I'
                           ' FOR EACH STATEMENT EXECUTE FUNCTION issue_event_append_only()',
                           part);
        END IF;
        created := true;
    END LOOP;
    RETURN created;
END
$$;

-- Every month from p_from's to p_to's (both included); the number created.
CREATE FUNCTION issue_month_partitions(p_from timestamptz, p_to timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    m timestamptz;
    n integer := 0;
BEGIN
    FOR m IN SELECT generate_series(date_trunc('month', p_from), date_trunc('month', p_to),
                                    interval '1 month') LOOP
        -- A month exists when its issue partition does (both are made together).
        CONTINUE WHEN to_regclass('issue' || to_char(m, '"_y"YYYY"m"MM')) IS NOT NULL;
        IF issue_month_partition((m AT TIME ZONE current_setting('TimeZone'))::date) THEN
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
        EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', tbl || '_default', tbl);
    END LOOP;

    -- The months of the rows (at most ten years back: older rows wait in the default
    -- partitions until someone creates their months) and the next three.
    SELECT least(min(t), now()), greatest(max(t), now()) INTO lo, hi
    FROM (SELECT min(reported_at) AS t FROM issue_unpartitioned
          UNION ALL SELECT max(reported_at) FROM issue_unpartitioned
          UNION ALL SELECT min(at) FROM issue_event_unpartitioned
          UNION ALL SELECT max(at) FROM issue_event_unpartitioned) b;
    PERFORM issue_month_partitions(greatest(lo, now() - interval '10 years'),
                                   hi + interval '3 months');

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
CREATE TRIGGER issue_event_no_truncate BEFORE TRUNCATE ON issue_event_default
    FOR EACH STATEMENT EXECUTE FUNCTION issue_event_append_only();

ANALYZE issue_key;
ANALYZE issue;
ANALYZE issue_event;
