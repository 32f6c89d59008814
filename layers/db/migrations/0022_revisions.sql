-- depends: 0021_campaign_action
-- Revisions (issue 18): a bulk reassignment (an import, a boundary or site edit, `sitewatch
-- reassign`) is stored as ONE revision with a compact change table, not one audit event per
-- moved issue. A change row holds the old and the new answer of assignment as plain columns
-- (one pair per column of geo.assign.RESULT_COLUMNS; tests/layers/test_revisions.py holds
-- them equal): no JSON to build and one index to keep, where a redrawn grid set over a
-- million open issues writes a million of them.
--
-- The audit trail still shows each change as one of the issue's events: the view issue_trail
-- reads issue_event and revision_change as one, a change appearing as the 'reassign' event it
-- replaced ({"lead_unit_id": [old, new], ...} plus "revision"), with the revision's note.
-- 'reassign' events written before this migration stay in issue_event, and the trigger of
-- 0018 still announces any such event; new reassignments are announced by the trigger on
-- revision_change below, with the same payload.

CREATE TABLE revision (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at    timestamptz NOT NULL DEFAULT now(),
    actor         text NOT NULL CHECK (length(btrim(actor)) BETWEEN 1 AND 200),
    kind          text NOT NULL CHECK (kind IN ('import', 'edit', 'reassign', 'revert')),
    -- The file imported (its name as the user gave it) or the row edited ("jurisdiction C01").
    source        text CHECK (length(source) <= 300),
    source_sha256 text CHECK (source_sha256 ~ '^[0-9a-f]{64}$'),
    note          text CHECK (length(note) <= 4000),
    reverts       bigint REFERENCES revision (id),
    -- Written with the revision: examined, changed, and per lead unit gained/lost and per
    -- from->to pair (layers.revisions), so that reading a summary never scans its changes.
    counts        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(counts) = 'object'),
    CHECK ((kind = 'revert') = (reverts IS NOT NULL))
);

CREATE TABLE revision_change (
    revision_id             bigint NOT NULL REFERENCES revision (id) ON DELETE RESTRICT,
    issue_id                bigint NOT NULL REFERENCES issue (id) ON DELETE RESTRICT,
    -- The issue's status when it moved (the replaced event's from_status and to_status).
    status                  text NOT NULL,
    old_jurisdiction_id     bigint,
    new_jurisdiction_id     bigint,
    old_territorial_unit_id bigint,
    new_territorial_unit_id bigint,
    old_on_boundary         boolean NOT NULL,
    new_on_boundary         boolean NOT NULL,
    old_outside_all         boolean NOT NULL,
    new_outside_all         boolean NOT NULL,
    old_site_id             bigint,
    new_site_id             bigint,
    old_via_buffer          boolean NOT NULL,
    new_via_buffer          boolean NOT NULL,
    old_functional_unit_id  bigint,
    new_functional_unit_id  bigint,
    old_lead_unit_id        bigint,
    new_lead_unit_id        bigint,
    PRIMARY KEY (revision_id, issue_id)
);
-- An issue's audit trail reads its changes by issue.
CREATE INDEX revision_change_issue_idx ON revision_change (issue_id);

-- Like issue_event, both are append-only: a revision is undone by a new one that reverts it.
CREATE FUNCTION revision_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER revision_no_update BEFORE UPDATE OR DELETE ON revision
    FOR EACH ROW EXECUTE FUNCTION revision_append_only();
CREATE TRIGGER revision_no_truncate BEFORE TRUNCATE ON revision
    FOR EACH STATEMENT EXECUTE FUNCTION revision_append_only();
CREATE TRIGGER revision_change_no_update BEFORE UPDATE OR DELETE ON revision_change
    FOR EACH ROW EXECUTE FUNCTION revision_append_only();
CREATE TRIGGER revision_change_no_truncate BEFORE TRUNCATE ON revision_change
    FOR EACH STATEMENT EXECUTE FUNCTION revision_append_only();

-- An issue's audit trail: its events and its revision changes, each change shown as the
-- 'reassign' event it stands for. The data names only what changed, [old, new] by column.
-- Filters on issue_id reach both branches (UNION ALL), so each uses its issue index.
CREATE VIEW issue_trail AS
SELECT e.issue_id, e.id AS event_id, NULL::bigint AS revision_id, e.at, e.actor,
       e.actor_role, e.action, e.from_status, e.to_status, e.note, e.evidence, e.data
FROM issue_event e
UNION ALL
SELECT c.issue_id, NULL::bigint, r.id, r.created_at, r.actor, 'system', 'reassign',
       c.status, c.status, r.note, '[]'::jsonb,
       jsonb_strip_nulls(jsonb_build_object(
           'jurisdiction_id', CASE WHEN c.new_jurisdiction_id IS DISTINCT FROM
               c.old_jurisdiction_id THEN jsonb_build_array(c.old_jurisdiction_id,
               c.new_jurisdiction_id) END,
           'territorial_unit_id', CASE WHEN c.new_territorial_unit_id IS DISTINCT FROM
               c.old_territorial_unit_id THEN jsonb_build_array(c.old_territorial_unit_id,
               c.new_territorial_unit_id) END,
           'on_boundary', CASE WHEN c.new_on_boundary IS DISTINCT FROM c.old_on_boundary
               THEN jsonb_build_array(c.old_on_boundary, c.new_on_boundary) END,
           'outside_all', CASE WHEN c.new_outside_all IS DISTINCT FROM c.old_outside_all
               THEN jsonb_build_array(c.old_outside_all, c.new_outside_all) END,
           'site_id', CASE WHEN c.new_site_id IS DISTINCT FROM c.old_site_id
               THEN jsonb_build_array(c.old_site_id, c.new_site_id) END,
           'via_buffer', CASE WHEN c.new_via_buffer IS DISTINCT FROM c.old_via_buffer
               THEN jsonb_build_array(c.old_via_buffer, c.new_via_buffer) END,
           'functional_unit_id', CASE WHEN c.new_functional_unit_id IS DISTINCT FROM
               c.old_functional_unit_id THEN jsonb_build_array(c.old_functional_unit_id,
               c.new_functional_unit_id) END,
           'lead_unit_id', CASE WHEN c.new_lead_unit_id IS DISTINCT FROM c.old_lead_unit_id
               THEN jsonb_build_array(c.old_lead_unit_id, c.new_lead_unit_id) END))
       || jsonb_build_object('revision', r.id)
FROM revision_change c JOIN revision r ON r.id = c.revision_id;

-- 'issue.reassigned' for each issue whose lead unit a revision changed, to its new lead unit,
-- with the payload 0018's trigger writes for a 'reassign' event. The issue rows are updated
-- before their changes are inserted (layers.assignment), so the payload names the new unit.
CREATE FUNCTION outbox_from_revision_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM subscription) THEN
        RETURN NULL;
    END IF;
    INSERT INTO outbox (kind, unit_id, payload)
    SELECT 'issue.reassigned', i.lead_unit_id,
           notify_issue_payload(i.id, jsonb_build_object(
               'event', 'issue.reassigned', 'actor', r.actor, 'note', left(r.note, 500),
               'at', r.created_at))
    FROM new_changes c
    JOIN revision r ON r.id = c.revision_id
    JOIN issue i ON i.id = c.issue_id
    WHERE c.new_lead_unit_id IS DISTINCT FROM c.old_lead_unit_id
    ORDER BY c.revision_id, c.issue_id;
    RETURN NULL;
END
$$;
CREATE TRIGGER revision_change_outbox AFTER INSERT ON revision_change
    REFERENCING NEW TABLE AS new_changes
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_from_revision_changes();
