-- MySQL and MariaDB schema and statements of
-- github.com/apitoken-go/apitoken/sqlstore.
--
-- Table and index names carry the default prefix "apitoken_"; sqlstore
-- replaces it with the one given to WithTablePrefix. A "migration: N name"
-- section is schema version N: Migrate applies the versions the database
-- lacks, in order, and records each in apitoken_schema_version; the "down: N"
-- section after it undoes it, for the files of MigrationFiles. A "query:
-- name" section is one statement sqlstore runs. Each statement ends with ";"
-- at the end of a line.

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

-- migration: 1 tokens
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

-- down: 1
DROP TABLE IF EXISTS apitoken_tokens;

-- migration: 2 revocations
-- The revocation log: one row per change that makes a token (or, with an
-- empty token_id, every token of an account) stop verifying as caches hold
-- it: a delete, an expiry brought forward, a re-hash. The store writes it in
-- the transaction of the change, so that it is seen exactly when the change
-- commits, and never after a rollback; sqlstore's Bus reads it by id and
-- prunes it by revoked_at. Ids and a time, never a secret nor a hash.
CREATE TABLE IF NOT EXISTS apitoken_revocations (
    id         BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    account_id VARBINARY(128)  NOT NULL,
    token_id   VARBINARY(128)  NOT NULL,
    revoked_at DATETIME(6)     NOT NULL,
    PRIMARY KEY (id),
    KEY apitoken_revocations_revoked_at (revoked_at)
) ENGINE=InnoDB;

-- down: 2
DROP TABLE IF EXISTS apitoken_revocations;

-- migration: 3 governance
-- Tokens that organisations govern: disabled (Disable, Enable); hint, the
-- last 4 characters of the secret ('' for tokens issued before it);
-- allowed_ips, space-separated prefixes ('' for any address); last_used_ip,
-- the address of the last use (NULL when unknown). The expiry index serves
-- Prune and Expiring, the last-use index PruneUnused. One change per
-- statement: MySQL commits each at once, and Migrate, run again after a
-- failure, skips a column or index that exists.
ALTER TABLE apitoken_tokens ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE apitoken_tokens ADD COLUMN hint VARBINARY(4) NOT NULL DEFAULT '';
ALTER TABLE apitoken_tokens ADD COLUMN allowed_ips VARBINARY(1407) NOT NULL DEFAULT '';
ALTER TABLE apitoken_tokens ADD COLUMN last_used_ip VARBINARY(39) NULL;
CREATE INDEX apitoken_tokens_expiry ON apitoken_tokens (expires_at, id);
CREATE INDEX apitoken_tokens_last_use ON apitoken_tokens (last_used_at, created_at);

-- down: 3
DROP INDEX apitoken_tokens_last_use ON apitoken_tokens;
DROP INDEX apitoken_tokens_expiry ON apitoken_tokens;
ALTER TABLE apitoken_tokens DROP COLUMN last_used_ip, DROP COLUMN allowed_ips, DROP COLUMN hint, DROP COLUMN disabled;

-- query: create
INSERT INTO apitoken_tokens (hash, id, account_id, member_id, name, scopes, created_at, expires_at, last_used_at,
    disabled, hint, allowed_ips, last_used_ip)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

-- query: lookup
-- Times go both ways as text holding the UTC wall clock, so that the
-- driver's parseTime and loc settings cannot shift them.
SELECT id, account_id, member_id, name, scopes,
    DATE_FORMAT(created_at, '%Y-%m-%d %H:%i:%s.%f'),
    DATE_FORMAT(expires_at, '%Y-%m-%d %H:%i:%s.%f'),
    DATE_FORMAT(last_used_at, '%Y-%m-%d %H:%i:%s.%f'),
    disabled, hint, allowed_ips, last_used_ip
FROM apitoken_tokens WHERE hash = ?;

-- query: list
SELECT id, account_id, member_id, name, scopes,
    DATE_FORMAT(created_at, '%Y-%m-%d %H:%i:%s.%f'),
    DATE_FORMAT(expires_at, '%Y-%m-%d %H:%i:%s.%f'),
    DATE_FORMAT(last_used_at, '%Y-%m-%d %H:%i:%s.%f'),
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
UPDATE apitoken_tokens SET expires_at = ? WHERE id = ? AND account_id = ? AND expires_at <=> ?;

-- query: create-limited
-- CreateLimited's INSERT, under the account's named lock: the row goes in
-- only while the account holds fewer tokens than the limit (the last
-- argument), counted by the same statement.
INSERT INTO apitoken_tokens (hash, id, account_id, member_id, name, scopes, created_at, expires_at, last_used_at,
    disabled, hint, allowed_ips, last_used_ip)
SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM DUAL
WHERE (SELECT COUNT(*) FROM apitoken_tokens WHERE account_id = ?) < ?;

-- query: count-account
SELECT COUNT(*) FROM apitoken_tokens WHERE account_id = ?;

-- query: lock-account
-- CreateLimited counts and inserts under this named lock on the account, so
-- that two Issues cannot both see room for one more token. DATABASE() is
-- utf8mb3 and the account id may hold 4-byte characters (an emoji, CJK
-- Extension B): both are converted to utf8mb4, or CONCAT fails with error
-- 1270 (illegal mix of collations). For every other id the name, and so
-- the lock, is the one of earlier versions, which may run beside this one.
SELECT GET_LOCK(SHA1(CONCAT(CONVERT(DATABASE() USING utf8mb4), '.apitoken_tokens.', CONVERT(? USING utf8mb4))), 10);

-- query: unlock-account
SELECT RELEASE_LOCK(SHA1(CONCAT(CONVERT(DATABASE() USING utf8mb4), '.apitoken_tokens.', CONVERT(? USING utf8mb4))));

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

-- query: select-unused
-- PruneUnused in two steps, so that InnoDB never locks rows it does not
-- delete: this plain read (a consistent read, which takes no lock) finds at
-- most ? of them, through the last-use index when the optimizer takes it...
SELECT hash FROM apitoken_tokens
WHERE last_used_at < ? OR (last_used_at IS NULL AND created_at < ?)
LIMIT ?;

-- query: delete-unused
-- ...and this deletes them by primary key, each checked again (a token used
-- meanwhile stays). The "IN (?)" is given one placeholder per hash.
DELETE FROM apitoken_tokens
WHERE (last_used_at < ? OR (last_used_at IS NULL AND created_at < ?)) AND hash IN (?);

-- query: list-expiring
-- A page of the expiry index, after the last row of the page before.
SELECT id, account_id, member_id, name, scopes,
    DATE_FORMAT(created_at, '%Y-%m-%d %H:%i:%s.%f'),
    DATE_FORMAT(expires_at, '%Y-%m-%d %H:%i:%s.%f'),
    DATE_FORMAT(last_used_at, '%Y-%m-%d %H:%i:%s.%f'),
    disabled, hint, allowed_ips, last_used_ip
FROM apitoken_tokens
WHERE expires_at < ? AND (expires_at > ? OR (expires_at = ? AND id > ?))
ORDER BY expires_at, id LIMIT ?;
