-- okerr on PostgreSQL. Times are microseconds since the Unix epoch (UTC), bound by the
-- caller: the database never reads a clock. Names are unqualified so that the tables
-- land in the schema of the connection's search_path.

CREATE TABLE projects (
    id      BIGSERIAL PRIMARY KEY,
    data    TEXT NOT NULL              -- the project as JSON (name, members, policies, limits)
);

CREATE TABLE textids (
    textid      TEXT COLLATE "C" PRIMARY KEY,
    project_id  BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    position    BIGINT NOT NULL       -- 0 for the main textid
);
CREATE INDEX textids_by_project ON textids(project_id);

CREATE TABLE indicators (
    id          BIGSERIAL PRIMARY KEY,
    project_id  BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name        TEXT COLLATE "C" NOT NULL,
    version     BIGINT NOT NULL,
    due_at      BIGINT,                -- Indicator::due_at, or a lease end while claimed
    data        TEXT NOT NULL,         -- the indicator as JSON
    UNIQUE (project_id, name)
);
CREATE INDEX indicators_due ON indicators(due_at) WHERE due_at IS NOT NULL;

CREATE TABLE log (
    id            BIGSERIAL PRIMARY KEY,
    indicator_id  BIGINT NOT NULL REFERENCES indicators(id) ON DELETE CASCADE,
    time          BIGINT NOT NULL,
    kind          TEXT NOT NULL,
    message       TEXT NOT NULL
);
CREATE INDEX log_by_indicator ON log(indicator_id, id);

CREATE TABLE outbox (
    id             BIGSERIAL PRIMARY KEY,
    project_id     BIGINT NOT NULL,
    indicator_id   BIGINT NOT NULL,    -- no foreign key: notifications outlive their indicator
    release_at     BIGINT NOT NULL,
    available_at   BIGINT,             -- when it may be claimed; NULL once delivered
    claims         BIGINT NOT NULL DEFAULT 0,
    attempts       BIGINT NOT NULL DEFAULT 0,
    delivered_at   BIGINT,
    last_error     TEXT,
    reduction_key  TEXT,
    data           TEXT NOT NULL       -- the notification as JSON
);
CREATE INDEX outbox_available ON outbox(available_at) WHERE available_at IS NOT NULL;
CREATE INDEX outbox_by_project ON outbox(project_id, id);
CREATE INDEX outbox_held ON outbox(indicator_id, reduction_key) WHERE reduction_key IS NOT NULL;
