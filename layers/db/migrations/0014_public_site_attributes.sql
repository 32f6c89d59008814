-- depends: 0013_evidence_uploaders
-- Imported site attributes (permit numbers, property managers' phones, owners' names) are the
-- office's working data. The public OGC API collections show only the attribute names an
-- admin lists here per layer; none until one does.
ALTER TABLE site_layer ADD COLUMN public_attributes text[] NOT NULL DEFAULT '{}';
