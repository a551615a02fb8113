-- sluice:lock-timeout 2s
-- The way back from 0006: the column that references plans first, then plans itself. The plan each
-- account was on is lost; copy it out first if it matters.
ALTER TABLE accounts DROP COLUMN plan_code;
DROP TABLE plans;
