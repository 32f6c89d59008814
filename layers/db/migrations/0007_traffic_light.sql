-- depends: 0006_working_days
-- The deadline traffic light of Chinese digital urban management, in one place for every
-- query: green before 80 % of the time allowed, yellow up to the deadline, red (overdue)
-- after it; NULL once the issue is closed or when it has no deadline. Derived at read time,
-- never stored, so it cannot go stale.

CREATE FUNCTION issue_traffic_light(status text, reported_at timestamptz, deadline timestamptz)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN status NOT IN ('reported', 'assigned', 'rectified') OR deadline IS NULL THEN NULL
        WHEN now() > deadline THEN 'red'
        WHEN now() >= reported_at + (deadline - reported_at) * 0.8 THEN 'yellow'
        ELSE 'green' END
$$;
