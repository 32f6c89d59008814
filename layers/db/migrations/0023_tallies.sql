-- depends: 0022_revisions
-- Tallies (issue 17): the counts every map and analysis reads, kept as issues change, so the
-- cost of a page follows the cells, days and categories it shows, not the size of the
-- archive (a city adds about a million cases a year).
--
-- The grain is one H3 cell (resolution 10, layers/analysis/tallies.py) x local day x
-- category x jurisdiction x site, split by what a page counts: open (with its deadline, so
-- "overdue now" is counted at reading time), closed late, found by external assessment.
-- tally_month holds the same with the month for the day: a period reads whole months there
-- and only its edge days in tally_day; tally_cell_day and tally_cell_month count per cell
-- alone. Rejected and duplicate reports are not problems on the ground and are left out of
-- these; the scores' tallies (duty_day, duty_month, below) count them with the unit.
--
-- The H3 cell needs the h3 library, which this PostgreSQL does not have, so tallies are kept
-- by the worker (its "tally" job) from a journal the triggers below fill in the writing
-- transaction: one row with sign +1 for every new or changed issue as it is now and one with
-- sign -1 for it as it was. Any write path (a report, a transition, an import, a
-- reassignment, a deletion, a line of SQL) is journalled the same way. (TRUNCATE has no
-- transition table; the append-only audit trail refuses it for issues anyway.) The job folds the
-- journal within seconds; pages show its lag (the age of the oldest row not yet folded).

-- When an issue was first rectified: the scores' time to rectify (layers.supervision.scores),
-- kept on the issue so that its tallies carry it. Any rectify event moves it earlier (the
-- lifecycle writes one per rectification; the demo loader sets it with its events).
ALTER TABLE issue ADD COLUMN first_rectified_at timestamptz;
-- Only when there is something to fill: an UPDATE of no rows still counts as a change of the
-- issue table (0011), which would leave a fresh database one version ahead.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM issue_event WHERE action = 'rectify') THEN
        UPDATE issue i SET first_rectified_at = r.first
        FROM (SELECT issue_id, min(at) AS first FROM issue_event WHERE action = 'rectify'
              GROUP BY issue_id) r
        WHERE r.issue_id = i.id;
    END IF;
END
$$;

CREATE FUNCTION note_first_rectification() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE issue i SET first_rectified_at = r.first
    FROM (SELECT issue_id, min(at) AS first FROM new_events WHERE action = 'rectify'
          GROUP BY issue_id) r
    WHERE r.issue_id = i.id AND (i.first_rectified_at IS NULL OR i.first_rectified_at > r.first);
    RETURN NULL;
END
$$;
CREATE TRIGGER issue_event_first_rectification AFTER INSERT ON issue_event
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION note_first_rectification();

CREATE TABLE tally_journal (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT now(),
    sign            smallint NOT NULL CHECK (sign IN (-1, 1)),
    lon             float8 NOT NULL,
    lat             float8 NOT NULL,
    reported_at     timestamptz NOT NULL,
    category_code   text NOT NULL,
    jurisdiction_id bigint,
    site_id         bigint,
    lead_unit_id    bigint,
    status          text NOT NULL,
    deadline        timestamptz,
    closed_at       timestamptz,
    source          text NOT NULL,
    rework_count    integer NOT NULL,
    first_rectified_at timestamptz
);

-- The tally's view of an issue: its point and the columns a tally reads. An update journals
-- only the issues whose view changed (a description edit or a version bump does not).
CREATE FUNCTION journal_issues() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Each statement names only the transition tables its event has: PL/pgSQL plans a
    -- statement when it first runs, and a missing one is an error even in a dead branch.
    IF TG_OP = 'INSERT' THEN
        INSERT INTO tally_journal (sign, lon, lat, reported_at, category_code, jurisdiction_id,
                                   site_id, lead_unit_id, status, deadline, closed_at, source,
                                   rework_count, first_rectified_at)
        SELECT 1, ST_X(n.geom), ST_Y(n.geom), n.reported_at, n.category_code,
               n.jurisdiction_id, n.site_id, n.lead_unit_id, n.status, n.deadline,
               n.closed_at, n.source, n.rework_count, n.first_rectified_at
        FROM new_rows n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO tally_journal (sign, lon, lat, reported_at, category_code, jurisdiction_id,
                                   site_id, lead_unit_id, status, deadline, closed_at, source,
                                   rework_count, first_rectified_at)
        SELECT -1, ST_X(o.geom), ST_Y(o.geom), o.reported_at, o.category_code,
               o.jurisdiction_id, o.site_id, o.lead_unit_id, o.status, o.deadline,
               o.closed_at, o.source, o.rework_count, o.first_rectified_at
        FROM old_rows o;
    ELSE
        INSERT INTO tally_journal (sign, lon, lat, reported_at, category_code, jurisdiction_id,
                                   site_id, lead_unit_id, status, deadline, closed_at, source,
                                   rework_count, first_rectified_at)
        SELECT v.sign, ST_X(v.geom), ST_Y(v.geom), v.reported_at, v.category_code,
               v.jurisdiction_id, v.site_id, v.lead_unit_id, v.status, v.deadline,
               v.closed_at, v.source, v.rework_count, v.first_rectified_at
        FROM old_rows o JOIN new_rows n ON n.id = o.id
        CROSS JOIN LATERAL (VALUES
            (-1::smallint, o.geom, o.reported_at, o.category_code, o.jurisdiction_id,
             o.site_id, o.lead_unit_id, o.status, o.deadline, o.closed_at, o.source,
             o.rework_count, o.first_rectified_at),
            (1::smallint, n.geom, n.reported_at, n.category_code, n.jurisdiction_id,
             n.site_id, n.lead_unit_id, n.status, n.deadline, n.closed_at, n.source,
             n.rework_count, n.first_rectified_at))
            AS v (sign, geom, reported_at, category_code, jurisdiction_id, site_id,
                  lead_unit_id, status, deadline, closed_at, source, rework_count,
                  first_rectified_at)
        WHERE (n.geom, n.reported_at, n.category_code, n.jurisdiction_id, n.site_id,
               n.lead_unit_id, n.status, n.deadline, n.closed_at, n.source, n.rework_count,
               n.first_rectified_at)
              IS DISTINCT FROM
              (o.geom, o.reported_at, o.category_code, o.jurisdiction_id, o.site_id,
               o.lead_unit_id, o.status, o.deadline, o.closed_at, o.source, o.rework_count,
               o.first_rectified_at);
    END IF;
    RETURN NULL;
END
$$;

-- Every issue journalled as it is now: the start of the tallies (below, and when the job
-- rebuilds them).
CREATE FUNCTION journal_every_issue() RETURNS void LANGUAGE sql AS $$
    INSERT INTO tally_journal (sign, lon, lat, reported_at, category_code, jurisdiction_id,
                               site_id, lead_unit_id, status, deadline, closed_at, source,
                               rework_count, first_rectified_at)
    SELECT 1, ST_X(geom), ST_Y(geom), reported_at, category_code, jurisdiction_id, site_id,
           lead_unit_id, status, deadline, closed_at, source, rework_count, first_rectified_at
    FROM issue ORDER BY id
$$;

-- A trigger with transition tables fires for one event only.
CREATE TRIGGER issue_journal_insert AFTER INSERT ON issue
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION journal_issues();
CREATE TRIGGER issue_journal_update AFTER UPDATE ON issue
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION journal_issues();
CREATE TRIGGER issue_journal_delete AFTER DELETE ON issue
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION journal_issues();

CREATE TABLE tally_day (
    cell            bigint NOT NULL,
    day             date NOT NULL,
    category_code   text NOT NULL,
    jurisdiction_id bigint,
    site_id         bigint,
    open            boolean NOT NULL,
    -- Open issues only: when they fall overdue (the open work is small, whatever the archive).
    deadline        timestamptz CHECK (open OR deadline IS NULL),
    -- Closed after its deadline: lost its points (issue_ran_past_deadline of 0015).
    late            boolean NOT NULL,
    assessed        boolean NOT NULL,
    n               integer NOT NULL,
    UNIQUE NULLS NOT DISTINCT (day, cell, category_code, jurisdiction_id, site_id, open,
                               deadline, late, assessed)
);

CREATE TABLE tally_month (LIKE tally_day INCLUDING ALL);

-- The same counts per cell alone (no category, jurisdiction or site): what the unfiltered
-- analyses read (the overview's cells, Gi* and the space-time cube of all problems). The
-- full key above holds nearly one row per issue-day at a district's density; this one is
-- bounded by cells x days whatever the number of issues.
CREATE TABLE tally_cell_day (
    cell            bigint NOT NULL,
    day             date NOT NULL,
    open            boolean NOT NULL,
    deadline        timestamptz CHECK (open OR deadline IS NULL),
    n               integer NOT NULL,
    UNIQUE NULLS NOT DISTINCT (day, cell, open, deadline)
);

CREATE TABLE tally_cell_month (LIKE tally_cell_day INCLUDING ALL);

-- A hot area's categories are read for its cells only.
CREATE INDEX tally_day_cell_idx ON tally_day (cell, day);
CREATE INDEX tally_month_cell_idx ON tally_month (cell, day);

-- The scores' tallies (layers.supervision.scores): per local day, lead unit, jurisdiction,
-- site and category, rejected and duplicate reports included (a unit's issue count has
-- them), split as the scores count: open (with its deadline), closed late, assessed, closed
-- as rejected or duplicate, verified, verified by the deadline; with the sums the rates and
-- the time to rectify need.
CREATE TABLE duty_day (
    day             date NOT NULL,
    lead_unit_id    bigint,
    jurisdiction_id bigint,
    site_id         bigint,
    category_code   text NOT NULL,
    open            boolean NOT NULL,
    deadline        timestamptz CHECK (open OR deadline IS NULL),
    late            boolean NOT NULL,
    assessed        boolean NOT NULL,
    dismissed       boolean NOT NULL,
    verified        boolean NOT NULL,
    on_time         boolean NOT NULL,
    n               integer NOT NULL,
    reworks         integer NOT NULL,  -- sum of rework_count
    reworked        integer NOT NULL,  -- issues sent back at least once
    rework_cases    integer NOT NULL,  -- issues that reached rectification
    rectified       integer NOT NULL,  -- issues rectified at least once
    rectify_seconds float8 NOT NULL,   -- sum over those of report to first rectification
    UNIQUE NULLS NOT DISTINCT (day, lead_unit_id, jurisdiction_id, site_id, category_code,
                               open, deadline, late, assessed, dismissed, verified, on_time)
);

CREATE TABLE duty_month (LIKE duty_day INCLUDING ALL);

-- What the tallies were built with: the job rebuilds them when the district's time zone
-- (which decides the local day) or the cell resolution changes. ``folds`` counts the
-- batches that changed them: part of the data version a stored analysis is compared with
-- (layers/analysis/snapshots.py), as an analysis changes when the tallies do, which is a
-- few seconds after the issues.
CREATE TABLE tally_basis (
    one         boolean PRIMARY KEY DEFAULT true CHECK (one),
    zone        text NOT NULL,
    resolution  smallint NOT NULL,
    folds       bigint NOT NULL DEFAULT 0
);

-- The issues already stored are journalled once, as if reported now; the job folds them.
DO $$ BEGIN PERFORM journal_every_issue(); END $$;
