-- depends: 0011_analysis_snapshots
-- Which issues carry a photo: a unit may fetch a photo only when it is attached to one of its
-- issues (layers/auth/access.py). Without these, that check read every issue of the unit and
-- their events (a seq scan of the issue table at a million issues) for each photo a work
-- page shows. Partial: most issues and events carry no photo, so the indexes stay small and
-- cost nothing to maintain for them.
CREATE INDEX issue_photos_idx ON issue USING gin (photos) WHERE photos <> '[]'::jsonb;
CREATE INDEX issue_event_evidence_idx ON issue_event USING gin (evidence)
    WHERE evidence <> '[]'::jsonb;
