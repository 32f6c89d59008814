-- Assignment by polygon (DESIGN.md), set-based so one statement serves a single new issue and
-- a bulk reassignment of a million alike. Parameters: %(ids)s bigint[] or NULL for all issues;
-- %(tolerance_m)s, how far outside every polygon a point may be and still go to the nearest
-- (degree prefilters divide metres by 55 000, conservative below 60 degrees of latitude).
WITH target AS (
    SELECT i.id, i.geom, i.category_code, i.reported_at, c.site_layer, c.deadline_hours,
           c.functional_unit_id AS category_unit_id
    FROM issue i JOIN category c ON c.code = i.category_code
    WHERE %(ids)s::bigint[] IS NULL OR i.id = ANY (%(ids)s::bigint[])
), territorial AS (
    -- The finest level containing the point; on a shared border several polygons of that
    -- level cover it, and the one with the smallest code wins (documented tie-break).
    SELECT t.id, j.id AS jurisdiction_id, j.unit_id, j.n_covering > 1 OR j.on_edge AS on_boundary,
           false AS outside_all
    FROM target t
    CROSS JOIN LATERAL (
        SELECT j.id, j.unit_id,
               count(*) OVER (PARTITION BY j.level) AS n_covering,
               NOT ST_Contains(j.geom, t.geom) AS on_edge
        FROM jurisdiction j
        WHERE ST_Covers(j.geom, t.geom)
        ORDER BY CASE j.level WHEN 'grid' THEN 0 WHEN 'community' THEN 1 ELSE 2 END, j.code
        LIMIT 1
    ) j
), nearest AS (
    -- Outside every polygon: the nearest finest polygon within the tolerance, flagged.
    SELECT t.id, j.id AS jurisdiction_id, j.unit_id, false AS on_boundary, true AS outside_all
    FROM target t
    CROSS JOIN LATERAL (
        SELECT j.id, j.unit_id
        FROM jurisdiction j
        WHERE j.geom && ST_Expand(t.geom, %(tolerance_m)s / 55000.0)
          AND ST_DWithin(j.geom::geography, t.geom::geography, %(tolerance_m)s)
        ORDER BY CASE j.level WHEN 'grid' THEN 0 WHEN 'community' THEN 1 ELSE 2 END,
                 ST_Distance(j.geom::geography, t.geom::geography), j.code
        LIMIT 1
    ) j
    WHERE NOT EXISTS (SELECT 1 FROM territorial x WHERE x.id = t.id)
), placed AS (
    SELECT * FROM territorial UNION ALL SELECT * FROM nearest
), zone AS MATERIALIZED (
    -- Each site's surroundings, buffered once per statement in a local metric projection
    -- (geography buffers use the best UTM/polar zone), instead of one geography distance per
    -- (issue, site) pair: 0.25 ms -> 0.03 ms an issue on the demo district.
    SELECT s.id, s.layer, s.geom,
           CASE WHEN s.buffer_m > 0
                THEN ST_Buffer(s.geom::geography, s.buffer_m)::geometry ELSE s.geom END AS zone
    FROM site s
), linked AS (
    -- The site containing the point, else the one whose surroundings buffer does; a category
    -- tied to a layer only links to sites of that layer.
    SELECT t.id, s.id AS site_id, s.via_buffer
    FROM target t
    CROSS JOIN LATERAL (
        SELECT z.id, NOT ST_Covers(z.geom, t.geom) AS via_buffer
        FROM zone z
        WHERE (t.site_layer IS NULL OR z.layer = t.site_layer)
          AND z.zone && t.geom AND ST_Covers(z.zone, t.geom)
        ORDER BY NOT ST_Covers(z.geom, t.geom),
                 ST_Distance(z.geom::geography, t.geom::geography), z.id
        LIMIT 1
    ) s
), functional AS (
    -- Responsibility rules, most specific first: site > jurisdiction (finest) > category.
    SELECT t.id, coalesce(r.unit_id, t.category_unit_id) AS unit_id
    FROM target t
    LEFT JOIN linked l ON l.id = t.id
    LEFT JOIN LATERAL (
        SELECT r.unit_id
        FROM responsibility_rule r
        LEFT JOIN jurisdiction rj ON rj.id = r.jurisdiction_id
        WHERE (r.category_code IS NULL OR r.category_code = t.category_code)
          AND (r.site_id IS NULL OR r.site_id = l.site_id)
          AND (r.jurisdiction_id IS NULL OR ST_Covers(rj.geom, t.geom))
        ORDER BY r.precedence DESC,
                 CASE rj.level WHEN 'grid' THEN 0 WHEN 'community' THEN 1 ELSE 2 END, r.id
        LIMIT 1
    ) r ON true
)
UPDATE issue i SET
    jurisdiction_id = p.jurisdiction_id,
    territorial_unit_id = p.unit_id,
    on_boundary = coalesce(p.on_boundary, false),
    outside_all = p.jurisdiction_id IS NULL OR p.outside_all,
    site_id = l.site_id,
    via_buffer = coalesce(l.via_buffer, false),
    functional_unit_id = f.unit_id,
    lead_unit_id = coalesce(f.unit_id, p.unit_id),
    deadline = coalesce(i.deadline, t.reported_at + make_interval(hours => t.deadline_hours))
FROM target t
LEFT JOIN placed p ON p.id = t.id
LEFT JOIN linked l ON l.id = t.id
LEFT JOIN functional f ON f.id = t.id
WHERE i.id = t.id
RETURNING i.id
