-- depends: 0031_retention
-- Many streets in one install (issue 19): a district holds several street roots, and a token
-- may be scoped to one street, seeing and acting on that street's ground and issues only.
--
-- 1. Every jurisdiction, site and issue knows its street (``street_id``): the root of a
--    jurisdiction's hierarchy; the street covering a site; the street of an issue's
--    jurisdiction (NULL while an issue waits outside every polygon: the district's queue).
--    Triggers keep them, so no writer (imports, REST edits, a revert, the reassignment
--    engine, psql) can leave one stale. ``issue.on_street_border`` flags a point on the border
--    of two streets (the engine's ``on_boundary`` where another street's polygon touches too).
-- 2. The scope is enforced by PostgreSQL's row-level security, not by each query: a request
--    of a street-scoped token runs under the role ``sitewatch_street`` with the setting
--    ``sitewatch.street`` naming its street (layers.auth.scope), and the policies below hide
--    everything of other streets from every route, page, export and analysis, and refuse
--    writes outside the street. District callers (district tokens, anonymous public pages,
--    the worker, the CLI) run as the owner, to whom no policy applies: no cost for them.
--    The district's catalog (units, categories, site layers, calendar, phases,
--    subscriptions) is read-only under the street role: a street office does not redefine
--    the district's units or problem catalog.

-- No function here is SECURITY DEFINER: entering one makes PostgreSQL restore settings on
-- exit, which undid count_issue_change's once-per-transaction mark (migration 0011) and
-- counted one transaction twice (tests/layers/test_snapshots.py). What the triggers must see
-- of other streets whoever writes (a border, the street covering a site) they read from
-- ``street_outline``, which no policy hides: the outlines are public on every map anyway.

-- The street the current session is scoped to, NULL for the district. A SQL function the
-- planner inlines, so "street_id = sitewatch_scope_street()" can use an index.
CREATE FUNCTION sitewatch_scope_street() RETURNS bigint LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT nullif(current_setting('sitewatch.street', true), '')::bigint
$$;

-- ---------------------------------------------------------------------------------------
-- Jurisdictions: their street.
ALTER TABLE jurisdiction ADD COLUMN street_id bigint REFERENCES jurisdiction (id);
WITH RECURSIVE tree (id, street) AS (
    SELECT id, id FROM jurisdiction WHERE parent_id IS NULL
    UNION ALL
    SELECT j.id, t.street FROM jurisdiction j JOIN tree t ON j.parent_id = t.id)
UPDATE jurisdiction j SET street_id = t.street FROM tree t WHERE t.id = j.id;
ALTER TABLE jurisdiction ALTER COLUMN street_id SET NOT NULL;
CREATE INDEX jurisdiction_street_idx ON jurisdiction (street_id);

-- A street is its own street; anything else has its parent's (a street office sees only its
-- own street's parents: another street's is refused before this, as an unknown parent).
CREATE FUNCTION jurisdiction_street() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.parent_id IS NULL THEN
        NEW.street_id := NEW.id;
    ELSE
        NEW.street_id := (SELECT street_id FROM jurisdiction WHERE id = NEW.parent_id);
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER jurisdiction_street BEFORE INSERT OR UPDATE OF parent_id, level ON jurisdiction
    FOR EACH ROW EXECUTE FUNCTION jurisdiction_street();

-- A community moved to another street takes its grids and issues along; a street's outline
-- changed moves the sites it now covers. Rare district acts: row by row is fine. ("UPDATE OF"
-- names parent_id: a column set by a BEFORE trigger does not fire "UPDATE OF street_id".)
CREATE FUNCTION jurisdiction_street_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.street_id IS DISTINCT FROM OLD.street_id THEN
        UPDATE jurisdiction SET street_id = NEW.street_id
        WHERE parent_id = NEW.id AND street_id IS DISTINCT FROM NEW.street_id;
        UPDATE issue SET street_id = NEW.street_id
        WHERE jurisdiction_id = NEW.id AND street_id IS DISTINCT FROM NEW.street_id;
    END IF;
    IF NEW.level = 'street' AND NOT ST_Equals(NEW.geom, OLD.geom) THEN
        UPDATE site SET street_id = street_at(geom)
        WHERE ST_Intersects(geom, NEW.geom) OR ST_Intersects(geom, OLD.geom);
    END IF;
    RETURN NULL;
END
$$;

-- The streets' outlines, kept from the street rows by the trigger below.
CREATE TABLE street_outline (
    street_id   bigint PRIMARY KEY REFERENCES jurisdiction (id) ON DELETE CASCADE,
    code        text NOT NULL,
    geom        geometry(MultiPolygon, 4326) NOT NULL
);
CREATE INDEX street_outline_geom_idx ON street_outline USING gist (geom);
INSERT INTO street_outline SELECT id, code, geom FROM jurisdiction WHERE level = 'street';

CREATE FUNCTION street_outline_keep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM street_outline WHERE street_id = OLD.id AND TG_OP <> 'INSERT';
    IF TG_OP <> 'DELETE' AND NEW.level = 'street' THEN
        INSERT INTO street_outline VALUES (NEW.id, NEW.code, NEW.geom);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER street_outline_keep AFTER INSERT OR UPDATE OF level, code, geom OR DELETE
    ON jurisdiction FOR EACH ROW EXECUTE FUNCTION street_outline_keep();

-- The street covering a geometry's representative point (the smallest code on a shared
-- border, as the assignment engine breaks ties), else NULL; every street counts, whatever
-- the session sees.
CREATE FUNCTION street_at(g geometry) RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT street_id FROM street_outline
    WHERE ST_Covers(geom, ST_PointOnSurface(g))
    ORDER BY code LIMIT 1
$$;

CREATE TRIGGER jurisdiction_street_follow AFTER UPDATE OF parent_id, street_id, geom
    ON jurisdiction
    FOR EACH ROW EXECUTE FUNCTION jurisdiction_street_follow();

-- ---------------------------------------------------------------------------------------
-- Sites: the street covering them.
ALTER TABLE site ADD COLUMN street_id bigint REFERENCES jurisdiction (id) ON DELETE SET NULL;
UPDATE site SET street_id = street_at(geom);
CREATE INDEX site_street_idx ON site (street_id);

CREATE FUNCTION site_street() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.street_id := street_at(NEW.geom);
    RETURN NEW;
END
$$;
CREATE TRIGGER site_street BEFORE INSERT OR UPDATE OF geom ON site
    FOR EACH ROW EXECUTE FUNCTION site_street();

-- ---------------------------------------------------------------------------------------
-- Issues: the street of their jurisdiction, and the street-border flag.
ALTER TABLE issue
    ADD COLUMN street_id bigint REFERENCES jurisdiction (id),
    ADD COLUMN on_street_border boolean NOT NULL DEFAULT false;

-- A street office's session sees only its own jurisdictions: an issue the engine put on
-- another street's ground gets no street here and is refused by the issue policy.
CREATE FUNCTION issue_street() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.street_id := (SELECT street_id FROM jurisdiction WHERE id = NEW.jurisdiction_id);
    NEW.on_street_border := NEW.on_boundary AND NEW.street_id IS NOT NULL AND EXISTS (
        SELECT 1 FROM street_outline
        WHERE street_id <> NEW.street_id AND ST_Intersects(geom, NEW.geom));
    RETURN NEW;
END
$$;

-- Only when there are issues: an UPDATE of an empty table still moves the issue table's
-- change counter (migration 0011), which a new database must start at zero.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM issue) THEN
        UPDATE issue i SET street_id = j.street_id FROM jurisdiction j
        WHERE j.id = i.jurisdiction_id;
        UPDATE issue i SET on_street_border = true
        WHERE i.on_boundary AND i.street_id IS NOT NULL AND EXISTS (
            SELECT 1 FROM street_outline o
            WHERE o.street_id <> i.street_id AND ST_Intersects(o.geom, i.geom));
    END IF;
END
$$;
CREATE INDEX issue_street_idx ON issue (street_id, reported_at);

CREATE TRIGGER issue_street BEFORE INSERT OR UPDATE OF jurisdiction_id, geom, on_boundary
    ON issue FOR EACH ROW EXECUTE FUNCTION issue_street();

-- ---------------------------------------------------------------------------------------
-- Things a street office makes carry its street (NULL: made by the district); the default
-- is the session's scope, so no writer has to pass it.
ALTER TABLE api_token ADD COLUMN street_id bigint REFERENCES jurisdiction (id) ON DELETE RESTRICT;
ALTER TABLE supervision_order
    ADD COLUMN street_id bigint DEFAULT sitewatch_scope_street() REFERENCES jurisdiction (id);
ALTER TABLE revision
    ADD COLUMN street_id bigint DEFAULT sitewatch_scope_street() REFERENCES jurisdiction (id);
ALTER TABLE line_preview
    ADD COLUMN street_id bigint DEFAULT sitewatch_scope_street() REFERENCES jurisdiction (id);
-- One inspection round a day per street (and one for the district office).
ALTER TABLE inspection_round
    ADD COLUMN street_id bigint DEFAULT sitewatch_scope_street() REFERENCES jurisdiction (id),
    DROP CONSTRAINT inspection_round_planned_for_key,
    ADD CONSTRAINT inspection_round_street_day UNIQUE NULLS NOT DISTINCT (street_id, planned_for);

-- ---------------------------------------------------------------------------------------
-- The role a street-scoped request runs under.
-- Creating it needs CREATEROLE (the managed cluster's user is a superuser); on a server where
-- the application's user lacks it, a DBA creates the role and grants it to that user first
-- (docs/deploy.md), and this only checks. The owner switches to it per request (SET ROLE),
-- which needs membership unless superuser.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sitewatch_street') THEN
        CREATE ROLE sitewatch_street NOLOGIN;
    END IF;
    IF NOT pg_has_role(current_user, 'sitewatch_street', 'MEMBER') THEN
        EXECUTE format('GRANT sitewatch_street TO %I', current_user);
    END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO sitewatch_street;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO sitewatch_street;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO sitewatch_street;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO sitewatch_street;
-- Not the partitions (migration 0030): a policy holds on the table a query names, so a
-- partition named directly would show every street. Read through their parent, they need no
-- privilege of their own. Tables made later get none by default (the months the worker adds
-- included): a migration adding a table grants the street role what it needs, and
-- tests/layers/test_street_role.py fails until it decides.
DO $$
DECLARE
    part regclass;
BEGIN
    FOR part IN
        WITH RECURSIVE parts AS (
            SELECT inhrelid FROM pg_inherits
            WHERE inhparent IN ('issue'::regclass, 'issue_event'::regclass)
            UNION ALL
            SELECT i.inhrelid FROM pg_inherits i JOIN parts p ON i.inhparent = p.inhrelid)
        SELECT inhrelid::regclass FROM parts
    LOOP
        EXECUTE format('REVOKE ALL ON %s FROM sitewatch_street', part);
    END LOOP;
END
$$;
-- The district's catalog: read, not written.
REVOKE INSERT, UPDATE, DELETE ON unit, category, site_layer, calendar_day, campaign_phase,
    subscription FROM sitewatch_street;
-- Tokens are looked up before the scope is set; a street session has no business there.
REVOKE ALL ON api_token FROM sitewatch_street;

-- ---------------------------------------------------------------------------------------
-- The policies. They name the street role only: the owner (district) is not subject to
-- them, and no other role reads these tables.
ALTER TABLE jurisdiction ENABLE ROW LEVEL SECURITY;
CREATE POLICY street_scope ON jurisdiction TO sitewatch_street
    USING (street_id = sitewatch_scope_street());

ALTER TABLE site ENABLE ROW LEVEL SECURITY;
CREATE POLICY street_scope ON site TO sitewatch_street
    USING (street_id = sitewatch_scope_street());

ALTER TABLE issue ENABLE ROW LEVEL SECURITY;
CREATE POLICY street_scope ON issue TO sitewatch_street
    USING (street_id = sitewatch_scope_street());

-- The audit trail, order items, stops, findings and revision changes are read with their
-- issue (or round): the subquery is itself under that table's policy. They are added in the
-- same statement as their issue (a data-modifying WITH, which cannot see the new issue yet),
-- so adding is not checked here: the code adds them only for issues it has just written or
-- read, which the issue policy already confined to the street.
ALTER TABLE issue_event ENABLE ROW LEVEL SECURITY;
CREATE POLICY street_read ON issue_event FOR SELECT TO sitewatch_street
    USING (EXISTS (SELECT 1 FROM issue i WHERE i.id = issue_event.issue_id));
CREATE POLICY street_add ON issue_event FOR INSERT TO sitewatch_street WITH CHECK (true);
ALTER TABLE supervision_order_item ENABLE ROW LEVEL SECURITY;
CREATE POLICY street_read ON supervision_order_item FOR SELECT TO sitewatch_street
    USING (EXISTS (SELECT 1 FROM issue i WHERE i.id = supervision_order_item.issue_id));
CREATE POLICY street_add ON supervision_order_item FOR INSERT TO sitewatch_street WITH CHECK (true);
ALTER TABLE inspection_finding ENABLE ROW LEVEL SECURITY;
CREATE POLICY street_read ON inspection_finding FOR SELECT TO sitewatch_street
    USING (EXISTS (SELECT 1 FROM issue i WHERE i.id = inspection_finding.issue_id));
CREATE POLICY street_add ON inspection_finding FOR INSERT TO sitewatch_street WITH CHECK (true);
ALTER TABLE revision_change ENABLE ROW LEVEL SECURITY;
CREATE POLICY street_read ON revision_change FOR SELECT TO sitewatch_street
    USING (EXISTS (SELECT 1 FROM issue i WHERE i.id = revision_change.issue_id));
CREATE POLICY street_add ON revision_change FOR INSERT TO sitewatch_street WITH CHECK (true);
ALTER TABLE inspection_stop ENABLE ROW LEVEL SECURITY;
CREATE POLICY street_read ON inspection_stop FOR SELECT TO sitewatch_street
    USING (EXISTS (SELECT 1 FROM inspection_round r WHERE r.id = inspection_stop.round_id));
CREATE POLICY street_add ON inspection_stop FOR INSERT TO sitewatch_street WITH CHECK (true);
-- The narrow key table of the partitioned issues (migration 0030) has no policy: it tells
-- only that a public id exists (they are sequential, and Open311 lists every one), and the
-- code finds an issue through the issue table (layers.db.partitions.ISSUE_BY_PUBLIC_ID).

-- Views run with their owner's rights unless told otherwise, which would pass the policies
-- by: these read as the caller.
ALTER VIEW issue_trail SET (security_invoker = true);
ALTER VIEW issue_answer_record SET (security_invoker = true);

-- A stop is visited (updated) by the street whose round it is.
CREATE POLICY street_visit ON inspection_stop FOR UPDATE TO sitewatch_street
    USING (EXISTS (SELECT 1 FROM inspection_round r WHERE r.id = inspection_stop.round_id));

-- An order is the street's when the street issued it or it lists one of the street's issues
-- (a district order to a department spanning streets shows each street its own items).
ALTER TABLE supervision_order ENABLE ROW LEVEL SECURITY;
CREATE POLICY street_scope ON supervision_order TO sitewatch_street
    USING (street_id = sitewatch_scope_street()
           OR EXISTS (SELECT 1 FROM supervision_order_item it
                      WHERE it.order_id = supervision_order.id));

ALTER TABLE inspection_round ENABLE ROW LEVEL SECURITY;
CREATE POLICY street_scope ON inspection_round TO sitewatch_street
    USING (street_id = sitewatch_scope_street());

ALTER TABLE revision ENABLE ROW LEVEL SECURITY;
CREATE POLICY street_scope ON revision TO sitewatch_street
    USING (street_id = sitewatch_scope_street());
ALTER TABLE line_preview ENABLE ROW LEVEL SECURITY;
CREATE POLICY street_scope ON line_preview TO sitewatch_street
    USING (street_id = sitewatch_scope_street());

-- Responsibility rules: those on the street's ground are its own to read and write; the
-- district's category-wide rules are read (they decide the street's functional units too)
-- but written by the district only.
ALTER TABLE responsibility_rule ENABLE ROW LEVEL SECURITY;
CREATE POLICY street_read ON responsibility_rule FOR SELECT TO sitewatch_street
    USING ((jurisdiction_id IS NULL OR jurisdiction_id IN (SELECT id FROM jurisdiction))
           AND (site_id IS NULL OR site_id IN (SELECT id FROM site)));
CREATE POLICY street_write ON responsibility_rule FOR ALL TO sitewatch_street
    USING (num_nonnulls(jurisdiction_id, site_id) >= 1
           AND (jurisdiction_id IS NULL OR jurisdiction_id IN (SELECT id FROM jurisdiction))
           AND (site_id IS NULL OR site_id IN (SELECT id FROM site)));

-- The history of the lines (the version tables of migration 0026) has no policy: it holds
-- outlines, public on every map, and is read only for a revision or an issue the policies
-- above already let the caller see.

-- The tallies the analyses and scores read (migrations 0023, 0025): a street's session reads
-- the rows of its ground, and writes none (only the worker folds them, as the owner).
-- The per-cell tallies carry no ground, so a street's session reads none of them (RLS on, no
-- policy: nothing visible); its analyses count from the full key (layers.analysis.tallies).
ALTER TABLE tally_cell_day ENABLE ROW LEVEL SECURITY;
ALTER TABLE tally_cell_month ENABLE ROW LEVEL SECURITY;
ALTER TABLE tally_day ENABLE ROW LEVEL SECURITY;
CREATE POLICY street_read ON tally_day FOR SELECT TO sitewatch_street
    USING (jurisdiction_id IN (SELECT id FROM jurisdiction));
ALTER TABLE tally_month ENABLE ROW LEVEL SECURITY;
CREATE POLICY street_read ON tally_month FOR SELECT TO sitewatch_street
    USING (jurisdiction_id IN (SELECT id FROM jurisdiction));
ALTER TABLE duty_day ENABLE ROW LEVEL SECURITY;
CREATE POLICY street_read ON duty_day FOR SELECT TO sitewatch_street
    USING (jurisdiction_id IN (SELECT id FROM jurisdiction));
ALTER TABLE duty_month ENABLE ROW LEVEL SECURITY;
CREATE POLICY street_read ON duty_month FOR SELECT TO sitewatch_street
    USING (jurisdiction_id IN (SELECT id FROM jurisdiction));
ALTER TABLE ground_day ENABLE ROW LEVEL SECURITY;
CREATE POLICY street_read ON ground_day FOR SELECT TO sitewatch_street
    USING (jurisdiction_id IN (SELECT id FROM jurisdiction));
ALTER TABLE ground_month ENABLE ROW LEVEL SECURITY;
CREATE POLICY street_read ON ground_month FOR SELECT TO sitewatch_street
    USING (jurisdiction_id IN (SELECT id FROM jurisdiction));
ALTER TABLE site_day ENABLE ROW LEVEL SECURITY;
CREATE POLICY street_read ON site_day FOR SELECT TO sitewatch_street
    USING (site_id IN (SELECT id FROM site));
ALTER TABLE site_month ENABLE ROW LEVEL SECURITY;
CREATE POLICY street_read ON site_month FOR SELECT TO sitewatch_street
    USING (site_id IN (SELECT id FROM site));

-- Stored analysis results are kept per scope: a street's answer is keyed under its street
-- (layers.analysis.snapshots) and never served to the district, nor the district's to it.
ALTER TABLE analysis_snapshot ENABLE ROW LEVEL SECURITY;
CREATE POLICY street_scope ON analysis_snapshot TO sitewatch_street
    USING (starts_with(key, 'street:' || sitewatch_scope_street() || ':'));
