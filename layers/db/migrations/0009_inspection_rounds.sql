-- depends: 0007_traffic_light
-- Inspection rounds (巡查/督查): the supervision group's visits every 10 days to a small,
-- risk-weighted random sample of sites (geo/sampling.py). A round keeps how it was drawn (seed,
-- size, cover_rounds, weights) so it can be reproduced, its stops in walking order with why
-- each was drawn, the visits, and the issues its findings became.

CREATE TABLE inspection_round (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- One round a day: a second plan for the same date is a double submission.
    planned_for     date NOT NULL UNIQUE,
    seed            bigint NOT NULL CHECK (seed >= 0),
    size            integer NOT NULL CHECK (size BETWEEN 1 AND 500),
    cover_rounds    integer NOT NULL CHECK (cover_rounds BETWEEN 1 AND 52),
    -- Risk weights, recent-issue window, start point: whatever else the draw depended on.
    params          jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(params) = 'object'),
    route_length_m  double precision NOT NULL CHECK (route_length_m >= 0),
    status          text NOT NULL DEFAULT 'planned'
                    CHECK (status IN ('planned', 'in_progress', 'done')),
    created_by      text NOT NULL CHECK (length(btrim(created_by)) BETWEEN 1 AND 100),
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE inspection_stop (
    round_id        bigint NOT NULL REFERENCES inspection_round (id) ON DELETE CASCADE,
    seq             integer NOT NULL CHECK (seq >= 1),
    -- A deleted site leaves its past stops in place, like its issues (layers.catalog.sites.delete).
    site_id         bigint REFERENCES site (id) ON DELETE SET NULL,
    -- The strata the stop covered when planned; coverage history is read from these, so a
    -- site later moved to another layer or community does not rewrite the past.
    layer           text NOT NULL,
    community_id    bigint REFERENCES jurisdiction (id) ON DELETE SET NULL,
    geom            geometry(Point, 4326) NOT NULL CHECK (NOT ST_IsEmpty(geom)),
    risk            double precision NOT NULL CHECK (risk > 0),
    reason          jsonb NOT NULL CHECK (jsonb_typeof(reason) = 'object' AND reason ? 'why'),
    visited_at      timestamptz,
    visited_by      text CHECK (length(visited_by) <= 100),
    PRIMARY KEY (round_id, seq),
    UNIQUE (round_id, site_id),
    CHECK ((visited_at IS NULL) = (visited_by IS NULL))
);
CREATE INDEX inspection_stop_site_idx ON inspection_stop (site_id, visited_at);

-- Findings become ordinary issues (source 'supervision'); this links them to their round
-- and, when given, the stop, without widening the issue table.
CREATE TABLE inspection_finding (
    round_id        bigint NOT NULL REFERENCES inspection_round (id) ON DELETE CASCADE,
    issue_id        bigint NOT NULL UNIQUE REFERENCES issue (id) ON DELETE RESTRICT,
    seq             integer,
    PRIMARY KEY (round_id, issue_id),
    FOREIGN KEY (round_id, seq) REFERENCES inspection_stop (round_id, seq)
);
