-- depends: 0025_ground_and_site_tallies
-- The tallies keep an open issue's deadline so that "overdue" (deadline < now()) is counted
-- when read, which made one row per open issue: 15,404 of the 23,771 per-cell month rows at
-- 1M demo issues, ten times as many at 10M. Once a deadline has passed, its exact time no
-- longer matters to any reading (every reader asks deadline < now(), and now() only grows),
-- so the tally job moves such rows to one stand-in deadline, the epoch (layers/analysis/
-- tallies.py, OVERDUE), and folds journal rows the same way. What stays exact is the open
-- work not yet due, which is small whatever the archive. `compacted_to` is the moment up to
-- which deadlines were moved.

ALTER TABLE tally_basis ADD COLUMN compacted_to timestamptz;

-- The open rows still keyed by a deadline to come, found by it.
CREATE INDEX tally_day_due_idx ON tally_day (deadline) WHERE open AND deadline > 'epoch';
CREATE INDEX tally_month_due_idx ON tally_month (deadline) WHERE open AND deadline > 'epoch';
CREATE INDEX tally_cell_day_due_idx ON tally_cell_day (deadline)
    WHERE open AND deadline > 'epoch';
CREATE INDEX tally_cell_month_due_idx ON tally_cell_month (deadline)
    WHERE open AND deadline > 'epoch';
CREATE INDEX ground_day_due_idx ON ground_day (deadline) WHERE open AND deadline > 'epoch';
CREATE INDEX ground_month_due_idx ON ground_month (deadline) WHERE open AND deadline > 'epoch';
CREATE INDEX duty_day_due_idx ON duty_day (deadline) WHERE open AND deadline > 'epoch';
CREATE INDEX duty_month_due_idx ON duty_month (deadline) WHERE open AND deadline > 'epoch';
