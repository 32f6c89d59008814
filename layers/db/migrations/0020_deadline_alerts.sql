-- depends: 0019_token_people
-- Deadlines turning yellow and red, and the daily digest (issue 15).
--
-- The traffic light (issue_traffic_light, 0015) is derived from the clock, so no table change
-- announces that it turned: the worker's "deadline-lights" job (layers.notify.deadlines)
-- compares it every minute with what was last announced, kept here per issue. One row per
-- open issue whose light is yellow or red: the colour last announced, or the colour it was
-- moved back to by an extension (red -> yellow, announced again when red comes again). A
-- light back to green, a closed issue or a deadline removed deletes the row, so each colour
-- is announced once per issue, and again after an extension moves it back to green.
CREATE TABLE deadline_notice (
    issue_id    bigint PRIMARY KEY REFERENCES issue (id) ON DELETE CASCADE,
    light       text NOT NULL CHECK (light IN ('yellow', 'red')),
    noticed_at  timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check CHECK (kind IN ('issue.assigned',
    'issue.reassigned', 'issue.reworked', 'issue.verified', 'issue.due_soon', 'issue.overdue',
    'finding.new', 'order.issued', 'order.escalated', 'digest', 'test'));

-- Fan out as 0018, but a unit's digest goes to that unit's subscriptions only: the office's
-- (unit-less) subscriptions receive the one office-wide digest (an outbox row without a
-- unit), not one message per unit each morning.
CREATE OR REPLACE FUNCTION outbox_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO delivery (outbox_id, subscription_id)
    SELECT o.id, s.id
    FROM new_rows o
    JOIN subscription s ON (s.unit_id = o.unit_id
                            OR (s.unit_id IS NULL AND (o.kind <> 'digest' OR o.unit_id IS NULL)))
                       AND (cardinality(s.events) = 0 OR o.kind = ANY (s.events))
    WHERE o.kind <> 'test'
    ORDER BY o.id, s.id;
    RETURN NULL;
END
$$;
