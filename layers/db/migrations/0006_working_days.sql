-- depends: 0005_evidence
-- Deadlines in working days (工作日), the way Chinese offices set rectification limits, with
-- the official calendar: public holidays (法定节假日) and the weekend days worked in exchange
-- (调休上班). Days not listed follow the week: Monday to Friday work, weekends do not.

ALTER TABLE category ADD COLUMN deadline_working_days integer
    CHECK (deadline_working_days BETWEEN 1 AND 60);
COMMENT ON COLUMN category.deadline_working_days IS
    'When set, the deadline is this many working days after the report (same local time); '
    'otherwise deadline_hours calendar hours.';

CREATE TABLE calendar_day (
    day      date PRIMARY KEY,
    working  boolean NOT NULL,
    name     text CHECK (length(name) <= 100)
);

-- The deadline of an issue reported at ``reported_at``: calendar hours, or the same local
-- clock time on the N-th working day after the report's local date. The district's time zone
-- is Asia/Shanghai (all of China keeps one).
CREATE FUNCTION issue_deadline(reported_at timestamptz, hours integer, working_days integer)
RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN working_days IS NULL
        THEN reported_at + make_interval(hours => hours)
        ELSE (
            -- date + time is a local timestamp; AT TIME ZONE turns it back into an instant.
            SELECT (g.d::date + (reported_at AT TIME ZONE 'Asia/Shanghai')::time)
                   AT TIME ZONE 'Asia/Shanghai'
            FROM generate_series(((reported_at AT TIME ZONE 'Asia/Shanghai')::date + 1)::timestamp,
                                 ((reported_at AT TIME ZONE 'Asia/Shanghai')::date
                                     + working_days * 2 + 30)::timestamp,
                                 interval '1 day') AS g(d)
            LEFT JOIN calendar_day c ON c.day = g.d::date
            WHERE coalesce(c.working, extract(isodow FROM g.d) < 6)
            ORDER BY g.d OFFSET working_days - 1 LIMIT 1)
    END
$$;
