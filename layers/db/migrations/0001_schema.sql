-- The data model of DESIGN.md. Geometries are EPSG:4326; constraints keep bad data out at
-- the database, whatever path the data came in by.

CREATE EXTENSION IF NOT EXISTS postgis;

CREATE TABLE unit (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code        text NOT NULL UNIQUE CHECK (code ~ '^[A-Za-z0-9_.-]{1,40}$'),
    name        text NOT NULL UNIQUE CHECK (length(btrim(name)) BETWEEN 1 AND 100),
    name_en     text CHECK (length(name_en) <= 200),
    kind        text NOT NULL CHECK (kind IN ('territorial', 'functional')),
    leader      text CHECK (length(leader) <= 100),
    contact     text CHECK (length(contact) <= 100),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE jurisdiction (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code        text NOT NULL UNIQUE CHECK (code ~ '^[A-Za-z0-9_.-]{1,40}$'),
    name        text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 100),
    level       text NOT NULL CHECK (level IN ('street', 'community', 'grid')),
    parent_id   bigint REFERENCES jurisdiction (id) ON DELETE RESTRICT,
    unit_id     bigint REFERENCES unit (id) ON DELETE SET NULL,
    geom        geometry(MultiPolygon, 4326) NOT NULL
                CHECK (ST_IsValid(geom) AND NOT ST_IsEmpty(geom)),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    -- A street is the root of the hierarchy; everything below it has a parent.
    CHECK ((level = 'street') = (parent_id IS NULL))
);
CREATE INDEX jurisdiction_geom_idx ON jurisdiction USING gist (geom);
CREATE INDEX jurisdiction_parent_idx ON jurisdiction (parent_id);

-- Site layers are data, not an enum: an admin adds a layer without a migration.
CREATE TABLE site_layer (
    code        text PRIMARY KEY CHECK (code ~ '^[a-z][a-z0-9_]{1,39}$'),
    name_zh     text NOT NULL,
    name_en     text NOT NULL,
    builtin     boolean NOT NULL DEFAULT false
);
INSERT INTO site_layer (code, name_zh, name_en, builtin) VALUES
    ('market', '农贸市场', 'Farmers'' market', true),
    ('construction_site', '建筑工地', 'Construction site', true),
    ('old_compound', '老旧小区', 'Old residential compound', true);

CREATE TABLE site (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    layer       text NOT NULL REFERENCES site_layer (code) ON UPDATE CASCADE,
    code        text UNIQUE CHECK (code ~ '^[A-Za-z0-9_.-]{1,40}$'),
    name        text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    geom        geometry(Geometry, 4326) NOT NULL
                CHECK (GeometryType(geom) IN ('POINT', 'POLYGON', 'MULTIPOLYGON')
                       AND ST_IsValid(geom) AND NOT ST_IsEmpty(geom)),
    attributes  jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(attributes) = 'object'),
    -- Surroundings ("及周边") in metres, measured in a local metric CRS by the assignment.
    buffer_m    double precision NOT NULL DEFAULT 0 CHECK (buffer_m BETWEEN 0 AND 1000),
    inspection_interval_days integer CHECK (inspection_interval_days BETWEEN 1 AND 366),
    unit_id     bigint REFERENCES unit (id) ON DELETE SET NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX site_geom_idx ON site USING gist (geom);
CREATE INDEX site_layer_idx ON site (layer);

CREATE TABLE category (
    code        text PRIMARY KEY CHECK (code ~ '^[A-Z]{2,6}-[0-9]{2,3}$'),
    name_zh     text NOT NULL CHECK (length(btrim(name_zh)) BETWEEN 1 AND 100),
    name_en     text NOT NULL CHECK (length(btrim(name_en)) BETWEEN 1 AND 200),
    site_layer  text REFERENCES site_layer (code) ON UPDATE CASCADE,
    -- NULL: the territorial community handles it.
    functional_unit_id bigint REFERENCES unit (id) ON DELETE SET NULL,
    deadline_hours integer NOT NULL CHECK (deadline_hours BETWEEN 1 AND 8760),
    points      numeric(6, 2) NOT NULL CHECK (points >= 0),
    dcm_event_class text,
    active      boolean NOT NULL DEFAULT true
);

-- The task breakdown table (任务分解表): (category?, jurisdiction?, site?) -> unit.
CREATE TABLE responsibility_rule (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task            text,
    category_code   text REFERENCES category (code) ON DELETE CASCADE,
    jurisdiction_id bigint REFERENCES jurisdiction (id) ON DELETE CASCADE,
    site_id         bigint REFERENCES site (id) ON DELETE CASCADE,
    unit_id         bigint NOT NULL REFERENCES unit (id) ON DELETE CASCADE,
    leader          text,
    contact         text,
    -- Most specific first: site > jurisdiction > category default; a category narrows any.
    precedence      integer GENERATED ALWAYS AS (
        CASE WHEN site_id IS NOT NULL THEN 300
             WHEN jurisdiction_id IS NOT NULL THEN 200
             ELSE 100 END
        + CASE WHEN category_code IS NOT NULL THEN 10 ELSE 0 END) STORED,
    CHECK (num_nonnulls(category_code, jurisdiction_id, site_id) >= 1),
    UNIQUE NULLS NOT DISTINCT (category_code, jurisdiction_id, site_id)
);

CREATE TABLE issue (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The one public id: REST paths and Open311 service_request_id.
    public_id       text NOT NULL UNIQUE,
    category_code   text NOT NULL REFERENCES category (code),
    geom            geometry(Point, 4326) NOT NULL
                    CHECK (ST_IsValid(geom) AND NOT ST_IsEmpty(geom)
                           AND ST_X(geom) BETWEEN -180 AND 180 AND ST_Y(geom) BETWEEN -90 AND 90),
    description     text NOT NULL CHECK (length(btrim(description)) BETWEEN 1 AND 4000),
    photos          jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(photos) = 'array'),
    reporter        text CHECK (length(reporter) <= 100),
    reporter_contact text CHECK (length(reporter_contact) <= 100),
    source          text NOT NULL CHECK (source IN
                        ('self_inspection', 'supervision', 'external_assessment', 'citizen')),
    reported_at     timestamptz NOT NULL DEFAULT now(),
    status          text NOT NULL DEFAULT 'reported' CHECK (status IN
                        ('reported', 'assigned', 'rectified', 'verified', 'rejected', 'duplicate')),
    deadline        timestamptz,
    territorial_unit_id bigint REFERENCES unit (id),
    functional_unit_id  bigint REFERENCES unit (id),
    lead_unit_id        bigint REFERENCES unit (id),
    jurisdiction_id bigint REFERENCES jurisdiction (id),
    site_id         bigint REFERENCES site (id) ON DELETE SET NULL,
    on_boundary     boolean NOT NULL DEFAULT false,
    outside_all     boolean NOT NULL DEFAULT false,
    via_buffer      boolean NOT NULL DEFAULT false,
    rework_count    integer NOT NULL DEFAULT 0 CHECK (rework_count >= 0),
    duplicate_of    bigint REFERENCES issue (id),
    closed_at       timestamptz,
    version         integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    -- Closed states carry their closing time; open ones do not.
    CHECK ((status IN ('verified', 'rejected', 'duplicate')) = (closed_at IS NOT NULL)),
    CHECK (closed_at IS NULL OR closed_at >= reported_at),
    CHECK (duplicate_of IS NULL OR status = 'duplicate')
);
CREATE SEQUENCE issue_public_seq;
ALTER TABLE issue ALTER COLUMN public_id
    SET DEFAULT 'SW' || lpad(nextval('issue_public_seq')::text, 7, '0');
CREATE INDEX issue_geom_idx ON issue USING gist (geom);
CREATE INDEX issue_status_idx ON issue (status);
CREATE INDEX issue_category_idx ON issue (category_code);
CREATE INDEX issue_reported_at_idx ON issue (reported_at);
CREATE INDEX issue_lead_unit_idx ON issue (lead_unit_id);
CREATE INDEX issue_jurisdiction_idx ON issue (jurisdiction_id);
CREATE INDEX issue_site_idx ON issue (site_id);
CREATE INDEX issue_open_deadline_idx ON issue (deadline)
    WHERE status IN ('reported', 'assigned', 'rectified');

-- Append-only audit trail of every change.
CREATE TABLE issue_event (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    issue_id    bigint NOT NULL REFERENCES issue (id) ON DELETE RESTRICT,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    actor_role  text,
    action      text NOT NULL,
    from_status text,
    to_status   text,
    note        text CHECK (length(note) <= 4000),
    evidence    jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(evidence) = 'array'),
    data        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(data) = 'object')
);
CREATE INDEX issue_event_issue_idx ON issue_event (issue_id, at);

CREATE FUNCTION issue_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'issue_event is append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER issue_event_no_update BEFORE UPDATE OR DELETE ON issue_event
    FOR EACH ROW EXECUTE FUNCTION issue_event_append_only();
CREATE TRIGGER issue_event_no_truncate BEFORE TRUNCATE ON issue_event
    FOR EACH STATEMENT EXECUTE FUNCTION issue_event_append_only();

CREATE TABLE api_token (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL DEFAULT '',
    -- sha256 of the token; the token itself is shown once and never stored.
    token_hash  bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    role        text NOT NULL CHECK (role IN ('admin', 'supervisor', 'inspector', 'unit', 'viewer')),
    unit_id     bigint REFERENCES unit (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    revoked_at  timestamptz,
    last_used_at timestamptz,
    CHECK (role <> 'unit' OR unit_id IS NOT NULL)
);
