-- Customer accounts inside one tenant.
CREATE TABLE accounts (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  email       text NOT NULL UNIQUE,
  full_name   text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- Every tenant starts with its owner account, so later backfills have rows to work on.
INSERT INTO accounts (email, full_name)
VALUES ('owner@example.invalid', 'Tenant Owner'),
       ('billing@example.invalid', 'Billing Contact');
