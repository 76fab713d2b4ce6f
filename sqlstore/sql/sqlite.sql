-- SQLite schema and statements of github.com/apitoken-go/apitoken/sqlstore.
--
-- Table and index names carry the default prefix "apitoken_"; sqlstore
-- replaces it with the one given to WithTablePrefix. A "migration: N name"
-- section is schema version N: Migrate applies the versions the database
-- lacks, in order, and records each in apitoken_schema_version; the "down: N"
-- section after it undoes it, for the files of MigrationFiles. A "query:
-- name" section is one statement sqlstore runs. Each statement ends with ";"
-- at the end of a line.

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

-- migration: 1 tokens
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

-- down: 1
DROP TABLE IF EXISTS apitoken_tokens;

-- migration: 2 revocations
-- The revocation log: one row per change that makes a token (or, with an
-- empty token_id, every token of an account) stop verifying as caches hold
-- it: a delete, an expiry brought forward, a re-hash. The store writes it in
-- the transaction of the change, so that it is seen exactly when the change
-- commits, and never after a rollback; sqlstore's Bus reads it by id and
-- prunes it by revoked_at (AUTOINCREMENT: an id is never used twice, also
-- once the newest rows are pruned). Ids and a time, never a secret nor a
-- hash.
CREATE TABLE IF NOT EXISTS apitoken_revocations (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT    NOT NULL,
    token_id   TEXT    NOT NULL,
    revoked_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS apitoken_revocations_revoked_at ON apitoken_revocations (revoked_at);

-- down: 2
DROP TABLE IF EXISTS apitoken_revocations;

-- migration: 3 governance
-- Tokens that organisations govern: disabled (Disable, Enable); hint, the
-- last 4 characters of the secret ('' for tokens issued before it);
-- allowed_ips, space-separated prefixes ('' for any address); last_used_ip,
-- the address of the last use (NULL when unknown). The expiry index serves
-- Prune and Expiring, the last-use index PruneUnused. Applied in one
-- transaction.
ALTER TABLE apitoken_tokens ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE apitoken_tokens ADD COLUMN hint TEXT NOT NULL DEFAULT '';
ALTER TABLE apitoken_tokens ADD COLUMN allowed_ips TEXT NOT NULL DEFAULT '';
ALTER TABLE apitoken_tokens ADD COLUMN last_used_ip TEXT;
CREATE INDEX IF NOT EXISTS apitoken_tokens_expiry ON apitoken_tokens (expires_at, id);
CREATE INDEX IF NOT EXISTS apitoken_tokens_last_use ON apitoken_tokens (last_used_at, created_at);

-- down: 3
DROP INDEX IF EXISTS apitoken_tokens_last_use;
DROP INDEX IF EXISTS apitoken_tokens_expiry;
ALTER TABLE apitoken_tokens DROP COLUMN last_used_ip;
ALTER TABLE apitoken_tokens DROP COLUMN allowed_ips;
ALTER TABLE apitoken_tokens DROP COLUMN hint;
ALTER TABLE apitoken_tokens DROP COLUMN disabled;

-- query: create
INSERT INTO apitoken_tokens (hash, id, account_id, member_id, name, scopes, created_at, expires_at, last_used_at,
    disabled, hint, allowed_ips, last_used_ip)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT DO NOTHING;

-- query: lookup
SELECT id, account_id, member_id, name, scopes, created_at, expires_at, last_used_at,
    disabled, hint, allowed_ips, last_used_ip
FROM apitoken_tokens WHERE hash = ?;

-- query: list
SELECT id, account_id, member_id, name, scopes, created_at, expires_at, last_used_at,
    disabled, hint, allowed_ips, last_used_ip
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
UPDATE apitoken_tokens SET last_used_at = ?, last_used_ip = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?);

-- query: rehash
UPDATE apitoken_tokens SET hash = ? WHERE id = ? AND account_id = ? AND hash = ?;

-- query: revoke
INSERT INTO apitoken_revocations (account_id, token_id, revoked_at) VALUES (?, ?, ?);

-- query: revocations-after
-- The Bus's poll: the revocations after the last id it read, in order, at
-- most 1000 at a time.
SELECT id, account_id, token_id FROM apitoken_revocations WHERE id > ? ORDER BY id LIMIT 1000;

-- query: revocations-in
-- The Bus's look back: the revocations among 100 ids it has not seen yet,
-- below the last one it read (the transactions that took them may commit
-- late, or never).
SELECT id, account_id, token_id FROM apitoken_revocations WHERE id IN (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

-- query: revocations-since
-- The ids of the revocations written from a time on, when the Bus starts.
SELECT id FROM apitoken_revocations WHERE revoked_at >= ? ORDER BY id;

-- query: revocations-last
SELECT COALESCE(MAX(id), 0) FROM apitoken_revocations;

-- query: revocations-prune
DELETE FROM apitoken_revocations WHERE revoked_at < ?;

-- query: set-disabled
UPDATE apitoken_tokens SET disabled = ? WHERE id = ? AND account_id = ?;

-- query: exists
SELECT COUNT(*) FROM apitoken_tokens WHERE id = ? AND account_id = ?;

-- query: delete-member
DELETE FROM apitoken_tokens WHERE account_id = ? AND member_id = ?;

-- query: delete-unused
-- At most ? rows, found through the last-use index: the last used before
-- the time, then the never used (NULL) created before it.
DELETE FROM apitoken_tokens WHERE hash IN (
    SELECT hash FROM apitoken_tokens
    WHERE last_used_at < ? OR (last_used_at IS NULL AND created_at < ?)
    LIMIT ?
);

-- query: list-expiring
-- A page of the expiry index, after the last row of the page before.
SELECT id, account_id, member_id, name, scopes, created_at, expires_at, last_used_at,
    disabled, hint, allowed_ips, last_used_ip
FROM apitoken_tokens
WHERE expires_at < ? AND (expires_at, id) > (?, ?)
ORDER BY expires_at, id LIMIT ?;
