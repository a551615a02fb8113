-- sluice:lock-timeout 2s
-- The way back from 0004: the table (and its trigger with it), then the trigger's function.
DROP TABLE invoices;
DROP FUNCTION invoices_set_issued_at();
