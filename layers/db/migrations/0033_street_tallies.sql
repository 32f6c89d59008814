-- depends: 0032_streets
-- The tallies know their street (issue 19): a street's analyses read the street's own rows,
-- found by an index, instead of filtering the whole district's rows of a period through a
-- policy on their jurisdiction (measured at ten streets of 100,000 issues: one street's
-- answers took 1.2-2.8 times what the same street took alone, and its hotspots could not
-- use the per-cell tallies at all, which had no ground to filter by).
--
-- 1. The journal carries the issue's ``street_id`` (migration 0032), and an issue whose
--    street changes (its jurisdiction moved to another street) is journalled out of the old
--    and into the new.
-- 2. Every tally keyed by day (the full key, per cell, per jurisdiction, the scores') gains
--    ``street_id`` in its key, first in its unique index, so that "this street, these days"
--    is one range of it; a plain index on the day serves the district's readers, which read
--    every street. The unique index also carries the sums (INCLUDE), so a street's reading is
--    an index-only scan: its rows share heap pages with every other street's (they are
--    folded in the order issues change), and reading those pages was most of a street's cost
--    (one street of ten at 1M each, a quarter's cells: 12,400 pages and 288 ms through the
--    heap, 256 pages and 25 ms index-only). Updating a sum then updates the index too (no
--    HOT update): the fold's work, a few rows a second in use, for the reads' sake. The
--    tallies are vacuumed sooner than the default, so the pages stay all-visible.
--    The per-cell tallies split a cell on a street border into one row per
--    street: a few more rows, and the cells become readable by a street.
-- 3. The street policies compare ``street_id`` with the session's street, as the issue's
--    policy does, so a street sees in its tallies exactly the issues it sees in the table.
-- 4. The existing rows cannot be split by street (a cell or an unassigned issue's row may
--    hold several streets' issues): the tallies are emptied and every issue journalled again,
--    as a change of time zone does (layers.analysis.tallies.rebuild). The worker refolds them
--    (about 24,000 issues a second); the data version moves, so stored analyses are
--    recomputed from the new rows.

ALTER TABLE tally_journal ADD COLUMN street_id bigint;

CREATE OR REPLACE FUNCTION journal_issues() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Each statement names only the transition tables its event has: PL/pgSQL plans a
    -- statement when it first runs, and a missing one is an error even in a dead branch.
    IF TG_OP = 'INSERT' THEN
        INSERT INTO tally_journal (sign, lon, lat, reported_at, category_code, jurisdiction_id,
                                   site_id, lead_unit_id, status, deadline, closed_at, source,
                                   rework_count, first_rectified_at, street_id)
        SELECT 1, ST_X(n.geom), ST_Y(n.geom), n.reported_at, n.category_code,
               n.jurisdiction_id, n.site_id, n.lead_unit_id, n.status, n.deadline,
               n.closed_at, n.source, n.rework_count, n.first_rectified_at, n.street_id
        FROM new_rows n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO tally_journal (sign, lon, lat, reported_at, category_code, jurisdiction_id,
                                   site_id, lead_unit_id, status, deadline, closed_at, source,
                                   rework_count, first_rectified_at, street_id)
        SELECT -1, ST_X(o.geom), ST_Y(o.geom), o.reported_at, o.category_code,
               o.jurisdiction_id, o.site_id, o.lead_unit_id, o.status, o.deadline,
               o.closed_at, o.source, o.rework_count, o.first_rectified_at, o.street_id
        FROM old_rows o;
    ELSE
        INSERT INTO tally_journal (sign, lon, lat, reported_at, category_code, jurisdiction_id,
                                   site_id, lead_unit_id, status, deadline, closed_at, source,
                                   rework_count, first_rectified_at, street_id)
        SELECT v.sign, ST_X(v.geom), ST_Y(v.geom), v.reported_at, v.category_code,
               v.jurisdiction_id, v.site_id, v.lead_unit_id, v.status, v.deadline,
               v.closed_at, v.source, v.rework_count, v.first_rectified_at, v.street_id
        FROM old_rows o JOIN new_rows n ON n.id = o.id
        CROSS JOIN LATERAL (VALUES
            (-1::smallint, o.geom, o.reported_at, o.category_code, o.jurisdiction_id,
             o.site_id, o.lead_unit_id, o.status, o.deadline, o.closed_at, o.source,
             o.rework_count, o.first_rectified_at, o.street_id),
            (1::smallint, n.geom, n.reported_at, n.category_code, n.jurisdiction_id,
             n.site_id, n.lead_unit_id, n.status, n.deadline, n.closed_at, n.source,
             n.rework_count, n.first_rectified_at, n.street_id))
            AS v (sign, geom, reported_at, category_code, jurisdiction_id, site_id,
                  lead_unit_id, status, deadline, closed_at, source, rework_count,
                  first_rectified_at, street_id)
        WHERE (n.geom, n.reported_at, n.category_code, n.jurisdiction_id, n.site_id,
               n.lead_unit_id, n.status, n.deadline, n.closed_at, n.source, n.rework_count,
               n.first_rectified_at, n.street_id)
              IS DISTINCT FROM
              (o.geom, o.reported_at, o.category_code, o.jurisdiction_id, o.site_id,
               o.lead_unit_id, o.status, o.deadline, o.closed_at, o.source, o.rework_count,
               o.first_rectified_at, o.street_id);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION journal_every_issue() RETURNS void LANGUAGE sql AS $$
    INSERT INTO tally_journal (sign, lon, lat, reported_at, category_code, jurisdiction_id,
                               site_id, lead_unit_id, status, deadline, closed_at, source,
                               rework_count, first_rectified_at, street_id)
    SELECT 1, ST_X(geom), ST_Y(geom), reported_at, category_code, jurisdiction_id, site_id,
           lead_unit_id, status, deadline, closed_at, source, rework_count, first_rectified_at,
           street_id
    FROM issue ORDER BY id
$$;

TRUNCATE tally_journal, tally_day, tally_month, tally_cell_day, tally_cell_month, duty_day,
         duty_month, ground_day, ground_month, site_day, site_month, site_dirty;

-- Each day-keyed tally: the street in its key (first), its day indexed for the district, the
-- street policy on the street. The unique constraints of the month tables were copied with
-- generated names (LIKE ... INCLUDING ALL), so each is found in the catalog.
DO $$
DECLARE
    t text;
    keys text;
    sums text;
    old text;
BEGIN
    FOR t, keys, sums IN VALUES
        ('tally_day', 'day, cell, category_code, jurisdiction_id, site_id, open, deadline,'
                      ' late, assessed', 'n'),
        ('tally_month', 'day, cell, category_code, jurisdiction_id, site_id, open, deadline,'
                        ' late, assessed', 'n'),
        ('tally_cell_day', 'day, cell, open, deadline', 'n'),
        ('tally_cell_month', 'day, cell, open, deadline', 'n'),
        ('ground_day', 'day, jurisdiction_id, category_code, open, deadline, late, assessed',
         'n'),
        ('ground_month', 'day, jurisdiction_id, category_code, open, deadline, late, assessed',
         'n'),
        ('duty_day', 'day, lead_unit_id, jurisdiction_id, site_id, category_code, open,'
                     ' deadline, late, assessed, dismissed, verified, on_time',
         'n, reworks, reworked, rework_cases, rectified, rectify_seconds'),
        ('duty_month', 'day, lead_unit_id, jurisdiction_id, site_id, category_code, open,'
                       ' deadline, late, assessed, dismissed, verified, on_time',
         'n, reworks, reworked, rework_cases, rectified, rectify_seconds')
    LOOP
        SELECT conname INTO STRICT old FROM pg_constraint
        WHERE conrelid = t::regclass AND contype = 'u';
        EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', t, old);
        EXECUTE format('ALTER TABLE %I ADD COLUMN street_id bigint', t);
        EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I UNIQUE NULLS NOT DISTINCT'
                       ' (street_id, %s) INCLUDE (%s)', t, t || '_key', keys, sums);
        EXECUTE format('CREATE INDEX %I ON %I (day)', t || '_day_idx', t);
        EXECUTE format('ALTER TABLE %I SET (autovacuum_vacuum_scale_factor = 0.02,'
                       ' autovacuum_vacuum_insert_scale_factor = 0.02)', t);
        EXECUTE format('DROP POLICY IF EXISTS street_read ON %I', t);
        EXECUTE format('CREATE POLICY street_read ON %I FOR SELECT TO sitewatch_street'
                       ' USING (street_id = sitewatch_scope_street())', t);
    END LOOP;
END
$$;

-- A street's sites on its map: their open work is counted from issue_open_site_idx alone
-- (migration 0029), and under the street's policy the index must hold the street too, else
-- every open issue of the district is fetched from the heap to be filtered out (one street of
-- ten at 1M each: 0.65 s for its map's site markers).
DROP INDEX issue_open_site_idx;
-- Its predicate is 0029's, written out as issue_is_open's statuses (0015) so the planner can
-- prove it; tests/layers/test_vocab.py holds it equal to layers.vocab.OPEN_STATUSES.
CREATE INDEX issue_open_site_idx ON issue (site_id, deadline) INCLUDE (status, street_id)
    WHERE status IN ('reported', 'assigned', 'rectified') AND site_id IS NOT NULL;

SELECT journal_every_issue();
-- Stored analyses were computed from the old rows: the data version moves.
UPDATE tally_basis SET folds = folds + 1;
