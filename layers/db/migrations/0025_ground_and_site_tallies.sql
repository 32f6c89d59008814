-- depends: 0024_public_id_past_ten_million
-- Two more families of tallies (layers/analysis/tallies.py), so that the last analyses that
-- read single issues read counts instead:
--
-- * ground_*: per local day, jurisdiction and category, split as tally_* is (open with its
--   deadline, closed late, assessed). The community choropleth and any count by
--   jurisdiction read it: tally_* holds nearly a row per issue-day (550,390 month rows at
--   10M issues), this one jurisdictions x days x categories.
-- * site_*: per local day, site, category and recurrence gap, for the chronic-site ranking
--   (geo.hotspots.chronic). Whether an issue recurs depends on the previous issue of its
--   site and category, so these are not folded from the journal row by row: a journal row
--   marks its site, category and local day dirty (site_dirty), and the job recounts that day
--   and the day of the next issue of the pair (the only other one whose gap can change)
--   from the issues of those days and the one before them: work per change, whatever the
--   pair's history.

CREATE TABLE ground_day (
    day             date NOT NULL,
    jurisdiction_id bigint,
    category_code   text NOT NULL,
    open            boolean NOT NULL,
    deadline        timestamptz CHECK (open OR deadline IS NULL),
    late            boolean NOT NULL,
    assessed        boolean NOT NULL,
    n               integer NOT NULL,
    UNIQUE NULLS NOT DISTINCT (day, jurisdiction_id, category_code, open, deadline, late,
                               assessed)
);

CREATE TABLE ground_month (LIKE ground_day INCLUDING ALL);

-- The ground tallies are a projection of the full ones: filled from what has been folded so
-- far (the journal's rows not folded yet go to both when they are).
INSERT INTO ground_day (day, jurisdiction_id, category_code, open, deadline, late, assessed, n)
SELECT day, jurisdiction_id, category_code, open, deadline, late, assessed, sum(n)
FROM tally_day GROUP BY 1, 2, 3, 4, 5, 6, 7;
INSERT INTO ground_month (day, jurisdiction_id, category_code, open, deadline, late, assessed,
                          n)
SELECT day, jurisdiction_id, category_code, open, deadline, late, assessed, sum(n)
FROM tally_month GROUP BY 1, 2, 3, 4, 5, 6, 7;

-- ``gap``: whole days (rounded up) from the closure, as verified, of the previous issue of
-- the same site and category to this report, when it is 0 to 365 days (the longest window a
-- caller may ask for); otherwise NULL. An issue recurs within a window of W whole days when
-- gap <= W, exactly as with the unrounded gap, since W is whole.
CREATE TABLE site_day (
    day             date NOT NULL,
    site_id         bigint NOT NULL,
    category_code   text NOT NULL,
    gap             smallint CHECK (gap BETWEEN 0 AND 365),
    n               integer NOT NULL,
    UNIQUE NULLS NOT DISTINCT (site_id, category_code, day, gap)
);

CREATE TABLE site_month (LIKE site_day INCLUDING ALL);
CREATE INDEX site_day_day_idx ON site_day (day);
CREATE INDEX site_month_day_idx ON site_month (day);

-- (site, category, local day) whose site tallies must be recounted, oldest first.
CREATE TABLE site_dirty (
    site_id         bigint NOT NULL,
    category_code   text NOT NULL,
    day             date NOT NULL,
    at              timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site_id, category_code, day)
);
CREATE INDEX site_dirty_at_idx ON site_dirty (at);

-- A pair's issues in report order.
CREATE INDEX issue_site_category_idx ON issue (site_id, category_code, reported_at)
    WHERE site_id IS NOT NULL;

-- In the days the tallies are counted in (the zone they were built in).
INSERT INTO site_dirty (site_id, category_code, day)
SELECT DISTINCT site_id, category_code,
       (reported_at AT TIME ZONE coalesce((SELECT zone FROM tally_basis), 'UTC'))::date
FROM issue WHERE site_id IS NOT NULL;
