-- sluice:lock-timeout 2s
-- Invoices: money as integer cents, a status machine enforced by a check constraint.
-- sluice:lint-ignore prefer-text currency holds ISO 4217 codes, always exactly three letters
CREATE TABLE invoices (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  account_id   bigint NOT NULL REFERENCES accounts (id),
  project_id   bigint REFERENCES projects (id) ON DELETE SET NULL,
  amount_cents bigint NOT NULL CHECK (amount_cents >= 0),
  currency     char(3) NOT NULL DEFAULT 'EUR',
  status       text NOT NULL DEFAULT 'draft'
               CHECK (status IN ('draft', 'open', 'paid', 'void')),
  issued_at    timestamptz,
  created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION invoices_set_issued_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.status = 'open' AND NEW.issued_at IS NULL THEN
    NEW.issued_at := now();
  END IF;
  RETURN NEW;
END;
$$;

CREATE TRIGGER invoices_issued_at
BEFORE INSERT OR UPDATE OF status ON invoices
FOR EACH ROW EXECUTE FUNCTION invoices_set_issued_at();
