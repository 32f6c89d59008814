-- depends: 0020_deadline_alerts
-- Which of the campaign's five rectification actions (五大整治行动) a category belongs to
-- (issue 16): the report page groups its picker by them, the way the campaign office and the
-- inspectors think of the catalog. Optional: a category outside the five has none.
--
-- The seeded catalog (layers/data/categories.csv) names its action by its code's prefix; a
-- category added since is left for the admin to file (PATCH /api/v1/categories/{code}).
ALTER TABLE category ADD COLUMN campaign_action text
    CONSTRAINT category_campaign_action_check
    CHECK (campaign_action IN ('market', 'construction', 'appearance', 'compound', 'behaviour'));
UPDATE category SET campaign_action = CASE split_part(code, '-', 1)
    WHEN 'MKT' THEN 'market' WHEN 'CON' THEN 'construction' WHEN 'CTY' THEN 'appearance'
    WHEN 'CMP' THEN 'compound' WHEN 'BEH' THEN 'behaviour' END;
