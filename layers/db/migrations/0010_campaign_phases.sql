-- depends: 0007_traffic_light
-- Campaign phases (创建阶段) as explicit dated rows, one per phase and campaign year: the office
-- fixes the dates each year in its work plan and they move (a phase starts late, one ends
-- early), so recurring month/day rules would state dates nobody decided. The three phases of
-- the mobilisation speech are seeded for this campaign year and the next; later years are
-- added with `sitewatch phases set`.

CREATE TABLE campaign_phase (
    code       text NOT NULL CHECK (code ~ '^[a-z][a-z0-9_]{1,39}$'),
    name_zh    text NOT NULL CHECK (length(btrim(name_zh)) BETWEEN 1 AND 100),
    name_en    text NOT NULL CHECK (length(btrim(name_en)) BETWEEN 1 AND 200),
    starts_on  date NOT NULL,
    ends_on    date NOT NULL,  -- inclusive: the last day of the phase
    -- The campaign year is the year the phase starts, so a phase running into January still
    -- belongs to the year it began in.
    year       integer GENERATED ALWAYS AS (date_part('year', starts_on)::integer) STORED,
    PRIMARY KEY (code, year),
    CHECK (starts_on <= ends_on AND ends_on < starts_on + 366),
    -- A day belongs to at most one phase, so "the phase of a day" has one answer.
    EXCLUDE USING gist (daterange(starts_on, ends_on, '[]') WITH &&)
);

INSERT INTO campaign_phase (code, name_zh, name_en, starts_on, ends_on)
SELECT p.code, p.name_zh, p.name_en, make_date(y, p.m1, 1),
       (make_date(y, p.m2, 1) + interval '1 month - 1 day')::date
FROM (VALUES ('attack', '重点攻坚', 'Key attack', 5, 6),
             ('compliance', '全面达标', 'Full compliance', 7, 8),
             ('consolidation', '巩固提高', 'Consolidation', 9, 12)) AS p(code, name_zh, name_en, m1, m2),
     (VALUES (2026), (2027)) AS years(y);
