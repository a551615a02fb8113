-- sluice:lock-timeout 2s
-- The way back from 0001: every tenant's accounts go with it (see docs/rollback.md, what cannot be undone).
DROP TABLE accounts;
