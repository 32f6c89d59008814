-- depends: 0028_tally_overdue_deadlines
-- Every map page draws each site with its open and overdue issues now
-- (layers.views.mapviews.site_status). Through issue_open_deadline_idx that fetched every open
-- issue's row: 0.65 s at the 10M demo's 154,000 open issues. This index answers it alone (an
-- index-only scan), whatever else the rows hold. Its predicate is issue_is_open's (0015).
CREATE INDEX issue_open_site_idx ON issue (site_id, deadline) INCLUDE (status)
    WHERE status IN ('reported', 'assigned', 'rectified') AND site_id IS NOT NULL;
