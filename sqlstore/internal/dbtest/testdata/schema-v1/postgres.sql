-- PostgreSQL schema and statements of github.com/apitoken-go/apitoken/sqlstore.
--
-- Table and index names carry the default prefix "apitoken_"; sqlstore
-- replaces it with the one given to WithTablePrefix. A "migration: N" section
-- is schema version N: Migrate applies the versions the database lacks, in
-- order, and records each in apitoken_schema_version. A "query: name" section
-- is one statement sqlstore runs. Each statement ends with ";" at the end of
-- a line.

-- query: lock
-- Migrate runs in one transaction under this lock, so that two processes
-- migrating at once take turns.
SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.apitoken_schema_version'));

-- query: version-table
CREATE TABLE IF NOT EXISTS apitoken_schema_version (
    version    integer     PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- query: version
SELECT COALESCE(MAX(version), 0) FROM apitoken_schema_version;

-- query: set-version
INSERT INTO apitoken_schema_version (version) VALUES ($1);

-- migration: 1
-- One row per token. hash is the keyed SHA-256 of the secret (never the
-- secret); ids compare byte for byte ("C" collation); scopes are
-- space-separated; a NULL time is a zero time.
CREATE TABLE IF NOT EXISTS apitoken_tokens (
    hash         bytea       PRIMARY KEY CHECK (octet_length(hash) = 32),
    id           text        COLLATE "C" NOT NULL UNIQUE,
    account_id   text        COLLATE "C" NOT NULL,
    member_id    text        NOT NULL,
    name         text        NOT NULL,
    scopes       text        NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz,
    last_used_at timestamptz
);
CREATE INDEX IF NOT EXISTS apitoken_tokens_account ON apitoken_tokens (account_id, created_at, id);

-- query: create
INSERT INTO apitoken_tokens (hash, id, account_id, member_id, name, scopes, created_at, expires_at, last_used_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT DO NOTHING;

-- query: lookup
SELECT id, account_id, member_id, name, scopes, created_at, expires_at, last_used_at
FROM apitoken_tokens WHERE hash = $1;

-- query: list
SELECT id, account_id, member_id, name, scopes, created_at, expires_at, last_used_at
FROM apitoken_tokens WHERE account_id = $1 ORDER BY created_at, id;

-- query: delete
DELETE FROM apitoken_tokens WHERE id = $1 AND account_id = $2;

-- query: delete-account
DELETE FROM apitoken_tokens WHERE account_id = $1;

-- query: delete-expired
-- A token that never expires has a NULL expires_at, which no comparison
-- selects.
DELETE FROM apitoken_tokens WHERE expires_at <= $1;

-- query: set-expiry
-- A compare-and-set: the expiry changes only if it is still $4 (NULL: none).
UPDATE apitoken_tokens SET expires_at = $1 WHERE id = $2 AND account_id = $3 AND expires_at IS NOT DISTINCT FROM $4;

-- query: count-account
SELECT COUNT(*) FROM apitoken_tokens WHERE account_id = $1;

-- query: isolation
SELECT current_setting('transaction_isolation');

-- query: lock-account
-- CreateLimited counts and inserts under this lock on the account, held to
-- the end of its transaction, so that two Issues cannot both see room for
-- one more token.
SELECT pg_advisory_xact_lock(hashtext('apitoken_tokens'), hashtext($1));

-- query: set-last-used
UPDATE apitoken_tokens SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1);

-- query: rehash
UPDATE apitoken_tokens SET hash = $1 WHERE id = $2 AND account_id = $3 AND hash = $4;
