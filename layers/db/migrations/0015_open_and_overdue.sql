-- depends: 0014_public_site_attributes
-- "Open" and "overdue" written once for every query, and the second meaning of "overdue" the
-- scores and the accountability register need given a name of its own. Python's list of open
-- statuses is layers/vocab.py OPEN_STATUSES; tests/layers/test_vocab.py holds them equal.
--
-- The functions are single SQL expressions, IMMUTABLE, not STRICT and without SET clauses,
-- so the planner inlines them into the calling query before planning: a query saying
-- issue_is_open(i.status) is planned as i.status = ANY ('{reported,assigned,rectified}') and
-- still proves the predicate of the partial index issue_open_deadline_idx (0001).
-- tests/layers/test_vocab.py checks that the index is still chosen. The moment of "overdue"
-- is an argument (callers pass now(), or a planning time) so that the function itself stays
-- immutable and inlinable.

-- Open: the unit's work, or its rectification waiting for the supervisor's check.
CREATE FUNCTION issue_is_open(status text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT status IN ('reported', 'assigned', 'rectified')
$$;

-- Overdue (超期), at the moment ``at``: still open and past its deadline. An issue without a
-- deadline is never overdue (false, not NULL, so the result counts and filters as it is).
CREATE FUNCTION issue_is_overdue(status text, deadline timestamptz, at timestamptz)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT issue_is_open(status) AND deadline IS NOT NULL AND deadline < at
$$;

-- Ran past its deadline (超时), as of ``at``: still open after it, or closed after it. This
-- is what loses a category's points and enters the accountability register (问责): a unit
-- that closed an issue late lost the points although nothing is overdue any more. Closed
-- issues are judged by their closed_at whatever their status; callers leave out the
-- dismissed ones (rejected, duplicate) where those do not count.
CREATE FUNCTION issue_ran_past_deadline(deadline timestamptz, closed_at timestamptz,
                                        at timestamptz)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT deadline IS NOT NULL AND coalesce(closed_at, at) > deadline
$$;

-- The traffic light of 0007, unchanged in meaning, now on the shared definitions: red is
-- exactly "overdue now".
CREATE OR REPLACE FUNCTION issue_traffic_light(status text, reported_at timestamptz,
                                               deadline timestamptz)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN NOT issue_is_open(status) OR deadline IS NULL THEN NULL
        WHEN issue_is_overdue(status, deadline, now()) THEN 'red'
        WHEN now() >= reported_at + (deadline - reported_at) * 0.8 THEN 'yellow'
        ELSE 'green' END
$$;
