-- A project's version as a column: a batch of updates checks it in one query.
ALTER TABLE projects ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
UPDATE projects SET version = COALESCE((data::jsonb ->> 'version')::bigint, 0);
