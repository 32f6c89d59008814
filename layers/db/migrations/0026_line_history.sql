-- depends: 0025_ground_and_site_tallies
-- History of the lines (issue 18): jurisdictions, sites and responsibility rules keep every
-- past version with the time it was valid, so that "whose ground was it on that day?" has an
-- answer, and a revision can be reverted to the lines as they were just before it.
--
-- One version table per line table, with the row's content in typed columns (geometry stays
-- geometry, so "which grid held this point then" is a spatial query on the past) rather than
-- one shared table of JSON. Triggers write them, so every writer (imports, the REST edits, a
-- revert, psql by hand) is covered without calling anything.
--
-- A version is valid from ``valid_from`` (the writing transaction's now(), the time its
-- revision also carries) until ``valid_to`` (NULL while current). ``xact_from``/``xact_to``
-- name the transaction that wrote and the one that ended it (pg_current_xact_id()); a
-- revision records its own transaction (revision.xact), so "the lines a revision changed"
-- are the versions it started or ended. Within one transaction a row has at most one new
-- version: a second write replaces the version the same transaction wrote.
-- An update that changes no content (only updated_at) writes no version.

-- Revisions stored before this migration keep NULL: their transaction is not known and their
-- lines were not kept, so they cannot be reverted (layers.history says so).
ALTER TABLE revision ADD COLUMN xact xid8;
ALTER TABLE revision ALTER COLUMN xact SET DEFAULT pg_current_xact_id();
CREATE INDEX revision_xact_idx ON revision (xact);
-- "Already reverted?" and "which revision reverted it?" are read by the reverted one's id.
CREATE INDEX revision_reverts_idx ON revision (reverts) WHERE reverts IS NOT NULL;

CREATE TABLE jurisdiction_version (
    version_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          bigint NOT NULL,
    code        text NOT NULL,
    name        text NOT NULL,
    level       text NOT NULL,
    parent_id   bigint,
    unit_id     bigint,
    geom        geometry(MultiPolygon, 4326) NOT NULL,
    valid_from  timestamptz NOT NULL,
    valid_to    timestamptz,
    xact_from   xid8,
    xact_to     xid8,
    CHECK (valid_to IS NULL OR valid_to >= valid_from)
);

CREATE TABLE site_version (
    version_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          bigint NOT NULL,
    layer       text NOT NULL,
    code        text,
    name        text NOT NULL,
    geom        geometry(Geometry, 4326) NOT NULL,
    attributes  jsonb NOT NULL,
    buffer_m    double precision NOT NULL,
    inspection_interval_days integer,
    unit_id     bigint,
    valid_from  timestamptz NOT NULL,
    valid_to    timestamptz,
    xact_from   xid8,
    xact_to     xid8,
    CHECK (valid_to IS NULL OR valid_to >= valid_from)
);

CREATE TABLE responsibility_rule_version (
    version_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              bigint NOT NULL,
    task            text,
    category_code   text,
    jurisdiction_id bigint,
    site_id         bigint,
    unit_id         bigint NOT NULL,
    leader          text,
    contact         text,
    valid_from      timestamptz NOT NULL,
    valid_to        timestamptz,
    xact_from       xid8,
    xact_to         xid8,
    CHECK (valid_to IS NULL OR valid_to >= valid_from)
);

-- Per table: one current version per row; a row's versions in time order (as-of reads); the
-- versions a transaction started or ended (a revision's lines); where (spatial as-of reads).
CREATE UNIQUE INDEX jurisdiction_version_current_idx ON jurisdiction_version (id)
    WHERE valid_to IS NULL;
CREATE INDEX jurisdiction_version_time_idx ON jurisdiction_version (id, valid_from);
CREATE INDEX jurisdiction_version_from_idx ON jurisdiction_version (xact_from);
CREATE INDEX jurisdiction_version_to_idx ON jurisdiction_version (xact_to);
CREATE INDEX jurisdiction_version_geom_idx ON jurisdiction_version USING gist (geom);
CREATE UNIQUE INDEX site_version_current_idx ON site_version (id) WHERE valid_to IS NULL;
CREATE INDEX site_version_time_idx ON site_version (id, valid_from);
CREATE INDEX site_version_from_idx ON site_version (xact_from);
CREATE INDEX site_version_to_idx ON site_version (xact_to);
CREATE INDEX site_version_geom_idx ON site_version USING gist (geom);
CREATE UNIQUE INDEX responsibility_rule_version_current_idx ON responsibility_rule_version (id)
    WHERE valid_to IS NULL;
CREATE INDEX responsibility_rule_version_time_idx ON responsibility_rule_version (id, valid_from);
CREATE INDEX responsibility_rule_version_from_idx ON responsibility_rule_version (xact_from);
CREATE INDEX responsibility_rule_version_to_idx ON responsibility_rule_version (xact_to);

-- Statement triggers with transition tables, set-based: a new grid set of thousands of rows
-- costs three statements, not a PL/pgSQL call per row (measured: per-row triggers added
-- 0.46 s to an update of 5,000 grids that took 0.08 s). One function serves the three
-- tables; its argument lists the table's content columns (those a version keeps and
-- compares; updated_at and the generated precedence are not content).
--
-- Ending a row's current version: one this transaction wrote is replaced outright (one
-- version per row and transaction), an older one is closed now.
CREATE FUNCTION line_keep_versions() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    versions text := quote_ident(TG_TABLE_NAME || '_version');
    cols text := TG_ARGV[0];
    new_cols text := 'n.' || replace(TG_ARGV[0], ', ', ', n.');
    old_cols text := 'o.' || replace(TG_ARGV[0], ', ', ', o.');
    changed text := format('FROM new_rows n JOIN old_rows o ON o.id = n.id'
                           ' WHERE (%s) IS DISTINCT FROM (%s)', new_cols, old_cols);
    ended text;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        ended := 'SELECT n.id ' || changed;
    ELSIF TG_OP = 'DELETE' THEN
        ended := 'SELECT o.id FROM old_rows o';
    END IF;
    IF ended IS NOT NULL THEN
        EXECUTE format('DELETE FROM %s WHERE valid_to IS NULL'
                       ' AND xact_from = pg_current_xact_id() AND id IN (%s)', versions, ended);
        EXECUTE format('UPDATE %s SET valid_to = now(), xact_to = pg_current_xact_id()'
                       ' WHERE valid_to IS NULL AND id IN (%s)', versions, ended);
    END IF;
    IF TG_OP = 'INSERT' THEN
        EXECUTE format('INSERT INTO %s (id, %s, valid_from, xact_from)'
                       ' SELECT n.id, %s, now(), pg_current_xact_id() FROM new_rows n',
                       versions, cols, new_cols);
    ELSIF TG_OP = 'UPDATE' THEN
        EXECUTE format('INSERT INTO %s (id, %s, valid_from, xact_from)'
                       ' SELECT n.id, %s, now(), pg_current_xact_id() %s',
                       versions, cols, new_cols, changed);
    END IF;
    RETURN NULL;
END
$$;

-- The first version of what is there now. The tables keep no creation time; a row's
-- updated_at is when its present content was written (every writer sets it), so that is when
-- this version became valid. Rules have no such column: from now on.
INSERT INTO jurisdiction_version (id, code, name, level, parent_id, unit_id, geom, valid_from)
SELECT id, code, name, level, parent_id, unit_id, geom, least(updated_at, now())
FROM jurisdiction;
INSERT INTO site_version (id, layer, code, name, geom, attributes, buffer_m,
                          inspection_interval_days, unit_id, valid_from)
SELECT id, layer, code, name, geom, attributes, buffer_m, inspection_interval_days, unit_id,
       least(updated_at, now())
FROM site;
INSERT INTO responsibility_rule_version (id, task, category_code, jurisdiction_id, site_id,
                                         unit_id, leader, contact, valid_from)
SELECT id, task, category_code, jurisdiction_id, site_id, unit_id, leader, contact, now()
FROM responsibility_rule;

-- A trigger with transition tables takes one event, hence three per table.
CREATE TRIGGER jurisdiction_versions_insert AFTER INSERT ON jurisdiction
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION line_keep_versions('code, name, level, parent_id, unit_id, geom');
CREATE TRIGGER jurisdiction_versions_update AFTER UPDATE ON jurisdiction
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION line_keep_versions('code, name, level, parent_id, unit_id, geom');
CREATE TRIGGER jurisdiction_versions_delete AFTER DELETE ON jurisdiction
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION line_keep_versions('code, name, level, parent_id, unit_id, geom');
CREATE TRIGGER site_versions_insert AFTER INSERT ON site
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION line_keep_versions('layer, code, name, geom, attributes, buffer_m,'
                                        ' inspection_interval_days, unit_id');
CREATE TRIGGER site_versions_update AFTER UPDATE ON site
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION line_keep_versions('layer, code, name, geom, attributes, buffer_m,'
                                        ' inspection_interval_days, unit_id');
CREATE TRIGGER site_versions_delete AFTER DELETE ON site
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION line_keep_versions('layer, code, name, geom, attributes, buffer_m,'
                                        ' inspection_interval_days, unit_id');
CREATE TRIGGER responsibility_rule_versions_insert AFTER INSERT ON responsibility_rule
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION line_keep_versions('task, category_code, jurisdiction_id, site_id,'
                                        ' unit_id, leader, contact');
CREATE TRIGGER responsibility_rule_versions_update AFTER UPDATE ON responsibility_rule
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION line_keep_versions('task, category_code, jurisdiction_id, site_id,'
                                        ' unit_id, leader, contact');
CREATE TRIGGER responsibility_rule_versions_delete AFTER DELETE ON responsibility_rule
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION line_keep_versions('task, category_code, jurisdiction_id, site_id,'
                                        ' unit_id, leader, contact');

-- The columns of an answer of assignment (geo.assign.RESULT_COLUMNS; a test holds them equal).
CREATE FUNCTION issue_answer_columns() RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY['jurisdiction_id', 'territorial_unit_id', 'on_boundary', 'outside_all',
                 'site_id', 'via_buffer', 'functional_unit_id', 'lead_unit_id']
$$;

-- What each of an issue's trail entries says about its answer of assignment (the columns of
-- geo.assign.RESULT_COLUMNS), as {column: id or flag} before (``old``) and after (``new``):
-- a revision change says all of both; the 'assign' event written when the issue was reported
-- says the whole answer after; an admin's 'assign' to a unit says the lead unit after only;
-- a 'reassign' event of before migration 0022 says [old, new] of what it changed.
-- Same order as issue_trail: by time, events before revision changes at the same instant.
CREATE VIEW issue_answer_record AS
SELECT c.issue_id, r.created_at AS at, 1 AS tier, r.id AS seq,
       jsonb_build_object(
           'jurisdiction_id', c.old_jurisdiction_id,
           'territorial_unit_id', c.old_territorial_unit_id,
           'on_boundary', c.old_on_boundary, 'outside_all', c.old_outside_all,
           'site_id', c.old_site_id, 'via_buffer', c.old_via_buffer,
           'functional_unit_id', c.old_functional_unit_id,
           'lead_unit_id', c.old_lead_unit_id) AS old,
       jsonb_build_object(
           'jurisdiction_id', c.new_jurisdiction_id,
           'territorial_unit_id', c.new_territorial_unit_id,
           'on_boundary', c.new_on_boundary, 'outside_all', c.new_outside_all,
           'site_id', c.new_site_id, 'via_buffer', c.new_via_buffer,
           'functional_unit_id', c.new_functional_unit_id,
           'lead_unit_id', c.new_lead_unit_id) AS new
FROM revision_change c JOIN revision r ON r.id = c.revision_id
UNION ALL
SELECT e.issue_id, e.at, 0, e.id,
       CASE WHEN e.action = 'reassign' THEN (
           SELECT coalesce(jsonb_object_agg(k, v -> 0), '{}') FROM jsonb_each(e.data) x(k, v)
           WHERE jsonb_typeof(v) = 'array' AND k = ANY (issue_answer_columns()))
       ELSE '{}' END,
       CASE WHEN e.action = 'reassign' THEN (
           SELECT coalesce(jsonb_object_agg(k, v -> 1), '{}') FROM jsonb_each(e.data) x(k, v)
           WHERE jsonb_typeof(v) = 'array' AND k = ANY (issue_answer_columns()))
       WHEN e.data ? 'lead_unit' THEN jsonb_build_object(
           'lead_unit_id', (SELECT u.id FROM unit u WHERE u.code = e.data ->> 'lead_unit'))
       ELSE (SELECT coalesce(jsonb_object_agg(k, v), '{}') FROM jsonb_each(e.data) x(k, v)
             WHERE k = ANY (issue_answer_columns()))
       END
FROM issue_event e
WHERE e.action IN ('assign', 'reassign');

-- One column of an issue's answer as the system gave it at ``at`` (JSON: an id, a flag or
-- null), read from its trail: what the last entry at or before ``at`` said it became; else
-- what the first entry after ``at`` said it was before; else (nothing changed it since) what
-- it is now. SQL NULL (not JSON null) when the trail cannot tell: the first later entry is an
-- admin's 'assign', which records the unit it gave, not the one it took from.
-- Before the issue was in the system (a back-dated report, an imported archive) the answer
-- it was first given holds: ``at`` is taken as no earlier than the issue's creation.
CREATE FUNCTION issue_answer_value_at(p_issue bigint, p_at timestamptz, p_column text)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    found_value jsonb;
    known boolean;
BEGIN
    SELECT greatest(p_at, i.created_at) INTO p_at FROM issue i WHERE i.id = p_issue;
    SELECT r.new -> p_column INTO found_value FROM issue_answer_record r
    WHERE r.issue_id = p_issue AND r.at <= p_at AND r.new ? p_column
    ORDER BY r.at DESC, r.tier DESC, r.seq DESC LIMIT 1;
    IF FOUND THEN
        RETURN found_value;
    END IF;
    SELECT r.old ? p_column, r.old -> p_column INTO known, found_value
    FROM issue_answer_record r
    WHERE r.issue_id = p_issue AND r.at > p_at AND r.new ? p_column
    ORDER BY r.at, r.tier, r.seq LIMIT 1;
    IF FOUND THEN
        RETURN CASE WHEN known THEN found_value END;
    END IF;
    SELECT jsonb_build_object(
               'jurisdiction_id', i.jurisdiction_id, 'territorial_unit_id', i.territorial_unit_id,
               'on_boundary', i.on_boundary, 'outside_all', i.outside_all, 'site_id', i.site_id,
               'via_buffer', i.via_buffer, 'functional_unit_id', i.functional_unit_id,
               'lead_unit_id', i.lead_unit_id) -> p_column
    INTO found_value FROM issue i WHERE i.id = p_issue;
    RETURN found_value;
END
$$;

-- The unit answering for an issue (its lead unit) at ``at``; NULL when none or not known.
CREATE FUNCTION issue_lead_unit_at(p_issue bigint, p_at timestamptz) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT (issue_answer_value_at(p_issue, p_at, 'lead_unit_id') #>> '{}')::bigint
$$;
