-- URL slugs for projects: add the column, backfill it from the name, then enforce it.
ALTER TABLE projects ADD COLUMN slug text;

UPDATE projects
SET slug = trim(both '-' from regexp_replace(lower(name), '[^a-z0-9]+', '-', 'g')) || '-' || id
WHERE slug IS NULL;

ALTER TABLE projects ALTER COLUMN slug SET NOT NULL;
ALTER TABLE projects ADD CONSTRAINT projects_slug_key UNIQUE (slug);
