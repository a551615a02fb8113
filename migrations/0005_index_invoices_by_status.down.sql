-- sluice:no-transaction
-- The way back from 0005, as gentle as the way there: CONCURRENTLY keeps invoices writable while
-- the index goes, and IF EXISTS makes the file safe to run again after a repair.
DROP INDEX CONCURRENTLY IF EXISTS invoices_account_status_idx;
