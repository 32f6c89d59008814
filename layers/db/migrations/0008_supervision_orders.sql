-- depends: 0007_traffic_light
-- Supervision orders (督办单): one written order per responsible unit listing the open issues
-- handed to it, with their deadlines; units acknowledge receipt (签收). Overdue issues escalate
-- into new orders (升级督办). The database itself keeps issuing idempotent: an issue is handed
-- over on at most one first order, and escalated at most once per deadline it ran past, so
-- running `sitewatch orders issue|escalate` again (or twice at once) adds nothing.

CREATE SEQUENCE supervision_order_seq;

CREATE TABLE supervision_order (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The order number printed on paper and used in URLs: DB<year>-<serial>.
    code            text NOT NULL UNIQUE CHECK (code ~ '^DB[0-9]{4}-[0-9]{4,}$'),
    unit_id         bigint NOT NULL REFERENCES unit (id) ON DELETE RESTRICT,
    kind            text NOT NULL CHECK (kind IN ('order', 'escalation')),
    -- 1 for a first order; n for an order escalating issues for the n-th time.
    level           integer NOT NULL CHECK (level >= 1),
    issued_at       timestamptz NOT NULL DEFAULT now(),
    issued_by       text NOT NULL CHECK (length(btrim(issued_by)) BETWEEN 1 AND 100),
    issued_by_role  text,
    note            text CHECK (length(note) <= 2000),
    acknowledged_at timestamptz,
    acknowledged_by text CHECK (length(acknowledged_by) <= 100),
    CHECK ((acknowledged_at IS NULL) = (acknowledged_by IS NULL)),
    CHECK (acknowledged_at IS NULL OR acknowledged_at >= issued_at),
    CHECK ((kind = 'order') = (level = 1))
);
CREATE INDEX supervision_order_unit_idx ON supervision_order (unit_id, issued_at);

CREATE TABLE supervision_order_item (
    order_id        bigint NOT NULL REFERENCES supervision_order (id) ON DELETE RESTRICT,
    issue_id        bigint NOT NULL REFERENCES issue (id) ON DELETE RESTRICT,
    position        integer NOT NULL CHECK (position >= 1),
    -- 1: handed over; n: escalated for the (n-1)-th time.
    level           integer NOT NULL CHECK (level >= 1),
    -- The issue as it stood when the order was issued: the paper must not change later.
    status          text NOT NULL,
    deadline        timestamptz,
    -- Set on escalation items only: the deadline the issue had run past.
    escalated_deadline timestamptz,
    CHECK ((level = 1) = (escalated_deadline IS NULL)),
    PRIMARY KEY (order_id, issue_id),
    UNIQUE (order_id, position)
);
CREATE INDEX supervision_order_item_issue_idx ON supervision_order_item (issue_id);
-- Idempotence, enforced where no code path can get around it.
CREATE UNIQUE INDEX supervision_order_item_first_once ON supervision_order_item (issue_id)
    WHERE escalated_deadline IS NULL;
CREATE UNIQUE INDEX supervision_order_item_escalated_once
    ON supervision_order_item (issue_id, escalated_deadline)
    WHERE escalated_deadline IS NOT NULL;
