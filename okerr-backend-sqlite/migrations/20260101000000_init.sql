-- okerr on SQLite. Times are microseconds since the Unix epoch (UTC), bound by the
-- caller: the database never reads a clock.

CREATE TABLE projects (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    data    TEXT NOT NULL              -- the project as JSON (name, members, policies, limits)
);

CREATE TABLE textids (
    textid      TEXT PRIMARY KEY,
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    position    INTEGER NOT NULL       -- 0 for the main textid
);
CREATE INDEX textids_by_project ON textids(project_id);

CREATE TABLE indicators (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    due_at      INTEGER,               -- Indicator::due_at, or a lease end while claimed
    data        TEXT NOT NULL,         -- the indicator as JSON
    UNIQUE (project_id, name)
);
CREATE INDEX indicators_due ON indicators(due_at) WHERE due_at IS NOT NULL;

CREATE TABLE log (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    indicator_id  INTEGER NOT NULL REFERENCES indicators(id) ON DELETE CASCADE,
    time          INTEGER NOT NULL,
    kind          TEXT NOT NULL,
    message       TEXT NOT NULL
);
CREATE INDEX log_by_indicator ON log(indicator_id, id);

CREATE TABLE outbox (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id     INTEGER NOT NULL,
    indicator_id   INTEGER NOT NULL,   -- no foreign key: notifications outlive their indicator
    release_at     INTEGER NOT NULL,
    available_at   INTEGER,            -- when it may be claimed; NULL once delivered
    claims         INTEGER NOT NULL DEFAULT 0,
    attempts       INTEGER NOT NULL DEFAULT 0,
    delivered_at   INTEGER,
    last_error     TEXT,
    reduction_key  TEXT,
    data           TEXT NOT NULL       -- the notification as JSON
);
CREATE INDEX outbox_available ON outbox(available_at) WHERE available_at IS NOT NULL;
CREATE INDEX outbox_by_project ON outbox(project_id, id);
CREATE INDEX outbox_held ON outbox(indicator_id, reduction_key) WHERE reduction_key IS NOT NULL;
