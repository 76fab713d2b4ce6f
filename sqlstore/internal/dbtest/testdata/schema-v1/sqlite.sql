-- SQLite schema and statements of github.com/apitoken-go/apitoken/sqlstore.
--
-- Table and index names carry the default prefix "apitoken_"; sqlstore
-- replaces it with the one given to WithTablePrefix. A "migration: N" section
-- is schema version N: Migrate applies the versions the database lacks, in
-- order, and records each in apitoken_schema_version. A "query: name" section
-- is one statement sqlstore runs. Each statement ends with ";" at the end of
-- a line.

-- query: lock
-- Migrate runs in one transaction that takes the write lock at once, so that
-- two processes migrating at once take turns (set busy_timeout to wait).
BEGIN IMMEDIATE;

-- query: unlock
COMMIT;

-- query: rollback
ROLLBACK;

-- query: version-table
CREATE TABLE IF NOT EXISTS apitoken_schema_version (
    version    INTEGER NOT NULL PRIMARY KEY,
    applied_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- query: version
SELECT COALESCE(MAX(version), 0) FROM apitoken_schema_version;

-- query: set-version
INSERT INTO apitoken_schema_version (version) VALUES (?);

-- migration: 1
-- One row per token, clustered on hash: the keyed SHA-256 of the secret
-- (never the secret). TEXT compares byte for byte (the BINARY collation);
-- scopes are space-separated; times are microseconds since 1970-01-01 UTC;
-- a NULL time is a zero time.
CREATE TABLE IF NOT EXISTS apitoken_tokens (
    hash         BLOB    NOT NULL PRIMARY KEY CHECK (length(hash) = 32),
    id           TEXT    NOT NULL UNIQUE,
    account_id   TEXT    NOT NULL,
    member_id    TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    scopes       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    last_used_at INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS apitoken_tokens_account ON apitoken_tokens (account_id, created_at, id);

-- query: create
INSERT INTO apitoken_tokens (hash, id, account_id, member_id, name, scopes, created_at, expires_at, last_used_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT DO NOTHING;

-- query: lookup
SELECT id, account_id, member_id, name, scopes, created_at, expires_at, last_used_at
FROM apitoken_tokens WHERE hash = ?;

-- query: list
SELECT id, account_id, member_id, name, scopes, created_at, expires_at, last_used_at
FROM apitoken_tokens WHERE account_id = ? ORDER BY created_at, id;

-- query: delete
DELETE FROM apitoken_tokens WHERE id = ? AND account_id = ?;

-- query: delete-account
DELETE FROM apitoken_tokens WHERE account_id = ?;

-- query: delete-expired
-- A token that never expires has a NULL expires_at, which no comparison
-- selects.
DELETE FROM apitoken_tokens WHERE expires_at <= ?;

-- query: set-expiry
-- A compare-and-set: the expiry changes only if it is still the last
-- argument (NULL: none).
UPDATE apitoken_tokens SET expires_at = ? WHERE id = ? AND account_id = ? AND expires_at IS ?;

-- query: count-account
SELECT COUNT(*) FROM apitoken_tokens WHERE account_id = ?;

-- query: set-last-used
UPDATE apitoken_tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?);

-- query: rehash
UPDATE apitoken_tokens SET hash = ? WHERE id = ? AND account_id = ? AND hash = ?;
