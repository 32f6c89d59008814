-- depends: 0016_deadline_time_zone
-- Notifications (issue 15): the outbox, subscriptions and their deliveries.
--
-- An outbox row is written by triggers, in the transaction of the change that causes it:
-- on issue_event (an issue assigned or reassigned to a unit, a rework, a verification, a new
-- external-assessment finding) and on supervision_order (an order issued or escalated). Why
-- triggers and not a call beside each writer: the events are written by set-based SQL in five
-- places (a CTE inserting a thousand issues, COPY-backed bulk reassignment, the orders' CTE,
-- the lifecycle, imports), and every present and future writer of the audit trail is covered
-- without remembering to call anything; the outbox cannot disagree with the audit trail.
-- Statement-level triggers with transition tables keep a bulk reassignment one INSERT.
--
-- While no subscription exists nothing is written (the demo load and installations without
-- notifications keep no outbox). Each outbox row fans out at once into one delivery per
-- matching subscription; the worker (layers.notify.deliveries.deliver_due) sends them.

CREATE TABLE subscription (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- NULL: the office, which receives every unit's events.
    unit_id     bigint REFERENCES unit (id) ON DELETE CASCADE,
    channel     text NOT NULL CHECK (channel IN ('webhook', 'wecom', 'dingtalk', 'email')),
    target      text NOT NULL CHECK (length(btrim(target)) BETWEEN 1 AND 2000),
    secret      text CHECK (length(secret) <= 200),
    -- Event kinds wanted; empty: all of them.
    events      text[] NOT NULL DEFAULT '{}',
    created_by  text NOT NULL CHECK (length(btrim(created_by)) BETWEEN 1 AND 100),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscription_unit_idx ON subscription (unit_id);

CREATE TABLE outbox (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('issue.assigned', 'issue.reassigned',
                    'issue.reworked', 'issue.verified', 'finding.new', 'order.issued',
                    'order.escalated', 'test')),
    unit_id     bigint REFERENCES unit (id) ON DELETE SET NULL,
    payload     jsonb NOT NULL CHECK (jsonb_typeof(payload) = 'object'),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE delivery (
    -- Stable across retries: receivers deduplicate on it (X-Sitewatch-Delivery).
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    outbox_id       bigint NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
    subscription_id bigint NOT NULL REFERENCES subscription (id) ON DELETE CASCADE,
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text CHECK (length(last_error) <= 2000),
    delivered_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- Retries go on for SITEWATCH_DELIVERY_RETRY_HOURS from here: the event's time, or the
    -- moment an admin retried a dead delivery.
    retry_from      timestamptz NOT NULL DEFAULT now(),
    CHECK ((state = 'delivered') = (delivered_at IS NOT NULL)),
    UNIQUE (outbox_id, subscription_id)
);
CREATE INDEX delivery_due_idx ON delivery (next_attempt_at) WHERE state = 'pending';
CREATE INDEX delivery_state_idx ON delivery (state, created_at);
CREATE INDEX delivery_subscription_idx ON delivery (subscription_id);

-- What a message about an issue says: what, by when, where, for whom.
CREATE FUNCTION notify_issue_payload(issue_id bigint, event jsonb) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'issue', i.public_id, 'category', c.code, 'category_zh', c.name_zh,
        'category_en', c.name_en, 'description', left(i.description, 200),
        'status', i.status, 'deadline', i.deadline, 'source', i.source,
        'rework_count', i.rework_count,
        'unit', u.code, 'unit_name', u.name,
        'community', CASE WHEN j.level = 'grid' THEN pj.name ELSE j.name END,
        'grid', CASE WHEN j.level = 'grid' THEN j.name END,
        'site', s.name, 'lon', ST_X(i.geom), 'lat', ST_Y(i.geom)) || event
    FROM issue i
    JOIN category c ON c.code = i.category_code
    LEFT JOIN unit u ON u.id = i.lead_unit_id
    LEFT JOIN jurisdiction j ON j.id = i.jurisdiction_id
    LEFT JOIN jurisdiction pj ON pj.id = j.parent_id
    LEFT JOIN site s ON s.id = i.site_id
    WHERE i.id = issue_id
$$;

CREATE FUNCTION outbox_from_issue_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM subscription) THEN
        RETURN NULL;
    END IF;
    INSERT INTO outbox (kind, unit_id, payload)
    SELECT k.kind, i.lead_unit_id,
           notify_issue_payload(i.id, jsonb_build_object(
               'event', k.kind, 'actor', e.actor, 'note', left(e.note, 500), 'at', e.at))
    FROM new_events e
    JOIN issue i ON i.id = e.issue_id
    CROSS JOIN LATERAL (SELECT CASE
        WHEN e.action = 'assign' THEN 'issue.assigned'
        WHEN e.action = 'reassign' AND e.data ? 'lead_unit_id' THEN 'issue.reassigned'
        WHEN e.action = 'reopen' THEN 'issue.reworked'
        WHEN e.action = 'verify' THEN 'issue.verified'
        WHEN e.action = 'report' AND i.source = 'external_assessment' THEN 'finding.new'
        END AS kind) AS k
    WHERE k.kind IS NOT NULL
    ORDER BY e.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER issue_event_outbox AFTER INSERT ON issue_event
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_from_issue_events();

CREATE FUNCTION outbox_from_orders() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM subscription) THEN
        RETURN NULL;
    END IF;
    -- AFTER triggers run once the whole statement is done, so the order's items (written by
    -- the same statement) are visible here.
    INSERT INTO outbox (kind, unit_id, payload)
    SELECT CASE o.kind WHEN 'order' THEN 'order.issued' ELSE 'order.escalated' END,
           o.unit_id,
           jsonb_build_object(
               'event', CASE o.kind WHEN 'order' THEN 'order.issued' ELSE 'order.escalated' END,
               'order', o.code, 'level', o.level, 'note', o.note, 'actor', o.issued_by,
               'at', o.issued_at, 'unit', u.code, 'unit_name', u.name,
               'issues', (SELECT count(*) FROM supervision_order_item it
                          WHERE it.order_id = o.id),
               'deadline', (SELECT min(it.deadline) FROM supervision_order_item it
                            WHERE it.order_id = o.id))
    FROM new_orders o JOIN unit u ON u.id = o.unit_id
    ORDER BY o.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER supervision_order_outbox AFTER INSERT ON supervision_order
    REFERENCING NEW TABLE AS new_orders
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_from_orders();

-- Fan out: one delivery per subscription that wants the event ('test' rows are addressed to
-- one subscription by whoever writes them).
CREATE FUNCTION outbox_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO delivery (outbox_id, subscription_id)
    SELECT o.id, s.id
    FROM new_rows o
    JOIN subscription s ON (s.unit_id IS NULL OR s.unit_id = o.unit_id)
                       AND (cardinality(s.events) = 0 OR o.kind = ANY (s.events))
    WHERE o.kind <> 'test'
    ORDER BY o.id, s.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER outbox_fan_out AFTER INSERT ON outbox
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_fan_out();
