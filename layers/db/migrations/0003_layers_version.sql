-- depends: 0002_seed_catalog
-- A counter bumped by every change to what assignment depends on, so that a process holding
-- a prepared assignment engine (geo.assign.Assigner) knows when to rebuild it.

CREATE TABLE layers_version (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version     bigint NOT NULL DEFAULT 1
);
INSERT INTO layers_version DEFAULT VALUES;

CREATE FUNCTION bump_layers_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE layers_version SET version = version + 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER jurisdiction_bumps_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON jurisdiction FOR EACH STATEMENT EXECUTE FUNCTION bump_layers_version();
CREATE TRIGGER site_bumps_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON site FOR EACH STATEMENT EXECUTE FUNCTION bump_layers_version();
CREATE TRIGGER rule_bumps_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON responsibility_rule FOR EACH STATEMENT EXECUTE FUNCTION bump_layers_version();
CREATE TRIGGER category_bumps_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON category FOR EACH STATEMENT EXECUTE FUNCTION bump_layers_version();
