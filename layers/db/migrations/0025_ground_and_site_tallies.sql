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
--   marks its (site, category) pair dirty (site_dirty), and the job recounts each dirty
--   pair from its issues. A pair's history is short (tens to hundreds of issues).

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

-- (site, category) pairs whose site tallies must be recounted, oldest first.
CREATE TABLE site_dirty (
    site_id         bigint NOT NULL,
    category_code   text NOT NULL,
    at              timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site_id, category_code)
);

-- A pair's issues in report order.
CREATE INDEX issue_site_category_idx ON issue (site_id, category_code, reported_at)
    WHERE site_id IS NOT NULL;

INSERT INTO site_dirty (site_id, category_code)
SELECT DISTINCT site_id, category_code FROM issue WHERE site_id IS NOT NULL;
