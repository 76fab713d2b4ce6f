-- PostgreSQL schema and statements of github.com/apitoken-go/apitoken/sqlstore.
--
-- Table and index names carry the default prefix "apitoken_"; sqlstore
-- replaces it with the one given to WithTablePrefix. A "migration: N name"
-- section is schema version N: Migrate applies the versions the database
-- lacks, in order, and records each in apitoken_schema_version; the "down: N"
-- section after it undoes it, for the files of MigrationFiles. A "query:
-- name" section is one statement sqlstore runs. Each statement ends with ";"
-- at the end of a line.

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

-- migration: 1 tokens
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
    id         bigserial   PRIMARY KEY,
    account_id text        COLLATE "C" NOT NULL,
    token_id   text        COLLATE "C" NOT NULL,
    revoked_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS apitoken_revocations_revoked_at ON apitoken_revocations (revoked_at);

-- down: 2
DROP TABLE IF EXISTS apitoken_revocations;

-- migration: 3 governance
-- Tokens that organisations govern: disabled (Disable, Enable); hint, the
-- last 4 characters of the secret ('' for tokens issued before it);
-- allowed_ips, space-separated prefixes ('' for any address); last_used_ip,
-- the address of the last use (NULL when unknown). The expiry index serves
-- Prune and Expiring, the last-use index PruneUnused.
ALTER TABLE apitoken_tokens
    ADD COLUMN IF NOT EXISTS disabled     boolean NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS hint         text    NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS allowed_ips  text    NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS last_used_ip text;
CREATE INDEX IF NOT EXISTS apitoken_tokens_expiry ON apitoken_tokens (expires_at, id);
CREATE INDEX IF NOT EXISTS apitoken_tokens_last_use ON apitoken_tokens (last_used_at, created_at);

-- down: 3
DROP INDEX IF EXISTS apitoken_tokens_last_use;
DROP INDEX IF EXISTS apitoken_tokens_expiry;
ALTER TABLE apitoken_tokens
    DROP COLUMN IF EXISTS last_used_ip,
    DROP COLUMN IF EXISTS allowed_ips,
    DROP COLUMN IF EXISTS hint,
    DROP COLUMN IF EXISTS disabled;

-- query: create
INSERT INTO apitoken_tokens (hash, id, account_id, member_id, name, scopes, created_at, expires_at, last_used_at,
    disabled, hint, allowed_ips, last_used_ip)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
ON CONFLICT DO NOTHING;

-- query: lookup
SELECT id, account_id, member_id, name, scopes, created_at, expires_at, last_used_at,
    disabled, hint, allowed_ips, last_used_ip
FROM apitoken_tokens WHERE hash = $1;

-- query: list
SELECT id, account_id, member_id, name, scopes, created_at, expires_at, last_used_at,
    disabled, hint, allowed_ips, last_used_ip
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

-- query: create-limited
-- CreateLimited's INSERT, under the account's advisory lock: the row goes in
-- only while the account holds fewer tokens than the limit ($14), counted by
-- the same statement, which says both the count and whether it inserted
-- (nothing inserted below the limit: the id or the hash exists). The casts
-- type the parameters, which a SELECT list leaves unknown.
WITH counted AS (SELECT count(*) AS n FROM apitoken_tokens WHERE account_id = $3::text),
inserted AS (
    INSERT INTO apitoken_tokens (hash, id, account_id, member_id, name, scopes, created_at, expires_at, last_used_at,
        disabled, hint, allowed_ips, last_used_ip)
    SELECT $1::bytea, $2::text, $3::text, $4::text, $5::text, $6::text, $7::timestamptz, $8::timestamptz,
        $9::timestamptz, $10::boolean, $11::text, $12::text, $13::text
    FROM counted WHERE counted.n < $14::bigint
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT (SELECT n FROM counted), (SELECT count(*) FROM inserted);

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
UPDATE apitoken_tokens SET last_used_at = $1, last_used_ip = $3 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1);

-- query: rehash
UPDATE apitoken_tokens SET hash = $1 WHERE id = $2 AND account_id = $3 AND hash = $4;

-- query: revoke
INSERT INTO apitoken_revocations (account_id, token_id, revoked_at) VALUES ($1, $2, $3);

-- query: revocations-after
-- The Bus's poll: the revocations after the last id it read, in order, at
-- most 1000 at a time.
SELECT id, account_id, token_id FROM apitoken_revocations WHERE id > $1 ORDER BY id LIMIT 1000;

-- query: revocations-in
-- The Bus's look back: the revocations among 100 ids it has not seen yet,
-- below the last one it read (the transactions that took them may commit
-- late, or never).
SELECT id, account_id, token_id FROM apitoken_revocations WHERE id IN ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34, $35, $36, $37, $38, $39, $40, $41, $42, $43, $44, $45, $46, $47, $48, $49, $50, $51, $52, $53, $54, $55, $56, $57, $58, $59, $60, $61, $62, $63, $64, $65, $66, $67, $68, $69, $70, $71, $72, $73, $74, $75, $76, $77, $78, $79, $80, $81, $82, $83, $84, $85, $86, $87, $88, $89, $90, $91, $92, $93, $94, $95, $96, $97, $98, $99, $100);

-- query: revocations-since
-- The ids of the revocations written from a time on, when the Bus starts.
SELECT id FROM apitoken_revocations WHERE revoked_at >= $1 ORDER BY id;

-- query: revocations-last
SELECT COALESCE(MAX(id), 0) FROM apitoken_revocations;

-- query: revocations-prune
DELETE FROM apitoken_revocations WHERE revoked_at < $1;

-- query: set-disabled
UPDATE apitoken_tokens SET disabled = $1 WHERE id = $2 AND account_id = $3;

-- query: exists
SELECT COUNT(*) FROM apitoken_tokens WHERE id = $1 AND account_id = $2;

-- query: delete-member
DELETE FROM apitoken_tokens WHERE account_id = $1 AND member_id = $2;

-- query: delete-unused
-- At most $2 rows, found through the last-use index: the last used before
-- $1, then the never used (NULL) created before it.
DELETE FROM apitoken_tokens WHERE hash IN (
    SELECT hash FROM apitoken_tokens
    WHERE last_used_at < $1 OR (last_used_at IS NULL AND created_at < $1)
    LIMIT $2
);

-- query: list-expiring
-- A page of the expiry index, after the last row of the page before.
SELECT id, account_id, member_id, name, scopes, created_at, expires_at, last_used_at,
    disabled, hint, allowed_ips, last_used_ip
FROM apitoken_tokens
WHERE expires_at < $1 AND (expires_at, id) > ($2, $3)
ORDER BY expires_at, id LIMIT $4;
