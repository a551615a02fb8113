-- sluice:lock-timeout 2s
-- The way back from 0003, in the reverse order of the file: the constraint, then the column.
ALTER TABLE projects DROP CONSTRAINT projects_slug_key;
ALTER TABLE projects DROP COLUMN slug;
