-- sluice:lock-timeout 2s
-- URL slugs for projects: add the column, backfill it from the name, then enforce it.
ALTER TABLE projects ADD COLUMN slug text;

UPDATE projects
SET slug = trim(both '-' from regexp_replace(lower(name), '[^a-z0-9]+', '-', 'g')) || '-' || id
WHERE slug IS NULL;

-- sluice:lint-ignore set-not-null-without-check projects holds a few rows per tenant (one per account); the scan is instant
ALTER TABLE projects ALTER COLUMN slug SET NOT NULL;
-- sluice:lint-ignore unique-without-using-index projects holds a few rows per tenant; building the index under the lock is instant
ALTER TABLE projects ADD CONSTRAINT projects_slug_key UNIQUE (slug);
