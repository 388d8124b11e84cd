-- A project's version as a column: a batch of updates checks it in one query.
ALTER TABLE projects ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
UPDATE projects SET version = COALESCE(CAST(json_extract(data, '$.version') AS INTEGER), 0);
