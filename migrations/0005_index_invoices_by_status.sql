-- sluice:no-transaction
-- Built CONCURRENTLY so a busy tenant keeps writing invoices while the index builds.
-- CONCURRENTLY cannot run inside a transaction, hence the directive above.
CREATE INDEX CONCURRENTLY IF NOT EXISTS invoices_account_status_idx
  ON invoices (account_id, status)
  WHERE status <> 'void';
