-- depends: 0014_public_site_attributes
-- Working-day deadlines in the district's configured time zone (Settings.timezone,
-- SITEWATCH_TIMEZONE) instead of the zone 0006 wrote into the function.
--
-- The zone is the session's TimeZone, which every connection sitewatch opens sets from the
-- setting (layers.db.database.conninfo: the web pool, the CLI, migrations, backups, the
-- snapshot refreshers). Why the session and not a one-row settings table: a session setting
-- belongs to one connection, so concurrent processes and transactions never race to write it
-- and a process started with another setting cannot move the zone others compute in; a table
-- would be state shared by all of them, rewritten by whichever started last. The same value
-- already drives to_char() and ::date of a timestamptz everywhere else (exports, map pages).
--
-- Reading a setting makes the function STABLE (it also reads calendar_day), never IMMUTABLE:
-- it must not appear in a generated column or an index expression, whose stored values
-- would not follow a change of zone. It is called when an issue is inserted and its result
-- stored as an instant, so changing the zone later leaves existing deadlines where they are.
CREATE OR REPLACE FUNCTION issue_deadline(reported_at timestamptz, hours integer,
                                          working_days integer)
RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN working_days IS NULL
        THEN reported_at + make_interval(hours => hours)
        ELSE (
            -- The same local clock time on the N-th working day after the local report date:
            -- date + time is a local timestamp; AT TIME ZONE turns it back into an instant.
            SELECT (g.d::date + l.at::time) AT TIME ZONE l.zone
            FROM (SELECT current_setting('TimeZone') AS zone,
                         reported_at AT TIME ZONE current_setting('TimeZone') AS at) AS l
            CROSS JOIN generate_series((l.at::date + 1)::timestamp,
                                       (l.at::date + working_days * 2 + 30)::timestamp,
                                       interval '1 day') AS g(d)
            LEFT JOIN calendar_day c ON c.day = g.d::date
            WHERE coalesce(c.working, extract(isodow FROM g.d) < 6)
            ORDER BY g.d OFFSET working_days - 1 LIMIT 1)
    END
$$;
