-- sluice:lock-timeout 2s
-- Subscription plans, and every existing account moved onto the free plan.
CREATE TABLE plans (
  code        text PRIMARY KEY,
  name        text NOT NULL,
  seats       integer NOT NULL CHECK (seats > 0),
  price_cents bigint NOT NULL DEFAULT 0
);

INSERT INTO plans (code, name, seats, price_cents) VALUES
  ('free', 'Free', 3, 0),
  ('team', 'Team', 25, 4900),
  ('enterprise', 'Enterprise', 1000, 99900);

-- sluice:lint-ignore constraint-without-not-valid the column is new and empty; validating it reads the few accounts of a tenant
ALTER TABLE accounts ADD COLUMN plan_code text REFERENCES plans (code);
UPDATE accounts SET plan_code = 'free' WHERE plan_code IS NULL;
-- sluice:lint-ignore set-not-null-without-check the UPDATE above filled every row; accounts holds a few rows per tenant
ALTER TABLE accounts ALTER COLUMN plan_code SET NOT NULL;
ALTER TABLE accounts ALTER COLUMN plan_code SET DEFAULT 'free';
