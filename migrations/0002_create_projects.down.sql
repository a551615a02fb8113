-- sluice:lock-timeout 2s
-- The way back from 0002. DROP TABLE takes ACCESS EXCLUSIVE on projects (and briefly on accounts,
-- for the foreign key): a short lock timeout retries a busy tenant later instead of queueing behind it.
DROP TABLE projects;
