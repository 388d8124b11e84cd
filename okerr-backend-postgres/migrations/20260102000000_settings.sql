-- Server-wide settings, such as the hash of the admin token.
CREATE TABLE settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
