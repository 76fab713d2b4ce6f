-- MySQL and MariaDB schema and statements of
-- github.com/apitoken-go/apitoken/sqlstore.
--
-- Table and index names carry the default prefix "apitoken_"; sqlstore
-- replaces it with the one given to WithTablePrefix. A "migration: N" section
-- is schema version N: Migrate applies the versions the database lacks, in
-- order, and records each in apitoken_schema_version. A "query: name" section
-- is one statement sqlstore runs. Each statement ends with ";" at the end of
-- a line.

-- query: lock
-- Migrate holds this named lock, so that two processes migrating at once
-- take turns (MySQL commits DDL at once: a transaction would not do). The
-- name is hashed to stay within MySQL's 64 characters.
SELECT GET_LOCK(SHA1(CONCAT(DATABASE(), '.apitoken_schema_version')), 60);

-- query: unlock
SELECT RELEASE_LOCK(SHA1(CONCAT(DATABASE(), '.apitoken_schema_version')));

-- query: version-table
CREATE TABLE IF NOT EXISTS apitoken_schema_version (
    version    INT         NOT NULL PRIMARY KEY,
    applied_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB;

-- query: version
SELECT COALESCE(MAX(version), 0) FROM apitoken_schema_version;

-- query: set-version
INSERT INTO apitoken_schema_version (version) VALUES (?);

-- migration: 1
-- One row per token, clustered on hash: the keyed SHA-256 of the secret
-- (never the secret). Binary string types compare byte for byte, with no
-- collation and no padding; scopes are space-separated; times are UTC; a
-- NULL time is a zero time. Lengths are the Issuer's limits.
CREATE TABLE IF NOT EXISTS apitoken_tokens (
    hash         BINARY(32)      NOT NULL,
    id           VARBINARY(128)  NOT NULL,
    account_id   VARBINARY(128)  NOT NULL,
    member_id    VARBINARY(128)  NOT NULL,
    name         VARBINARY(128)  NOT NULL,
    scopes       VARBINARY(2079) NOT NULL,
    created_at   DATETIME(6)     NOT NULL,
    expires_at   DATETIME(6)     NULL,
    last_used_at DATETIME(6)     NULL,
    PRIMARY KEY (hash),
    UNIQUE KEY apitoken_tokens_id (id),
    KEY apitoken_tokens_account (account_id, created_at, id)
) ENGINE=InnoDB;

-- query: create
INSERT INTO apitoken_tokens (hash, id, account_id, member_id, name, scopes, created_at, expires_at, last_used_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?);

-- query: lookup
-- Times go both ways as text holding the UTC wall clock, so that the
-- driver's parseTime and loc settings cannot shift them.
SELECT id, account_id, member_id, name, scopes,
    DATE_FORMAT(created_at, '%Y-%m-%d %H:%i:%s.%f'),
    DATE_FORMAT(expires_at, '%Y-%m-%d %H:%i:%s.%f'),
    DATE_FORMAT(last_used_at, '%Y-%m-%d %H:%i:%s.%f')
FROM apitoken_tokens WHERE hash = ?;

-- query: list
SELECT id, account_id, member_id, name, scopes,
    DATE_FORMAT(created_at, '%Y-%m-%d %H:%i:%s.%f'),
    DATE_FORMAT(expires_at, '%Y-%m-%d %H:%i:%s.%f'),
    DATE_FORMAT(last_used_at, '%Y-%m-%d %H:%i:%s.%f')
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
UPDATE apitoken_tokens SET expires_at = ? WHERE id = ? AND account_id = ? AND expires_at <=> ?;

-- query: count-account
SELECT COUNT(*) FROM apitoken_tokens WHERE account_id = ?;

-- query: lock-account
-- CreateLimited counts and inserts under this named lock on the account, so
-- that two Issues cannot both see room for one more token.
SELECT GET_LOCK(SHA1(CONCAT(DATABASE(), '.apitoken_tokens.', ?)), 10);

-- query: unlock-account
SELECT RELEASE_LOCK(SHA1(CONCAT(DATABASE(), '.apitoken_tokens.', ?)));

-- query: set-last-used
UPDATE apitoken_tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?);

-- query: rehash
UPDATE apitoken_tokens SET hash = ? WHERE id = ? AND account_id = ? AND hash = ?;
