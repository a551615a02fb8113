-- sluice:lock-timeout 2s
-- Projects belong to an account. The foreign key locks accounts briefly (SHARE ROW EXCLUSIVE),
-- hence the short lock timeout: a busy tenant is retried later rather than blocked.
CREATE TABLE projects (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  account_id  bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  name        text NOT NULL,
  archived    boolean NOT NULL DEFAULT false,
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX projects_account_id_idx ON projects (account_id);

INSERT INTO projects (account_id, name)
SELECT a.id, 'Default project of ' || a.full_name
FROM accounts a;
