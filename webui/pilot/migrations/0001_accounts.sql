-- Accounts, their sessions and API tokens, and the failed logins the rate limit counts.

CREATE TABLE pilot.users (
    id BIGSERIAL PRIMARY KEY,
    username TEXT NOT NULL UNIQUE CHECK (username ~ '^[a-z][a-z0-9._-]{0,62}$'),
    role TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
    password_hash TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    password_changed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- A session's id is in the browser's cookie only; here is its sha256.
CREATE TABLE pilot.sessions (
    id_hash BYTEA PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES pilot.users (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    remote TEXT,
    user_agent TEXT
);
CREATE INDEX sessions_expires_at ON pilot.sessions (expires_at);
CREATE INDEX sessions_user_id ON pilot.sessions (user_id);

-- An API token is shown once; here are its sha256 and the first characters, to tell
-- tokens apart in a list.
CREATE TABLE pilot.api_tokens (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES pilot.users (id) ON DELETE CASCADE,
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    role TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
    prefix TEXT NOT NULL,
    token_hash BYTEA NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX api_tokens_user_id ON pilot.api_tokens (user_id);

-- One row per failed login, once under the account name tried and once under the
-- client's address; rows older than the window are deleted as logins come.
CREATE TABLE pilot.login_failures (
    id BIGSERIAL PRIMARY KEY,
    scope TEXT NOT NULL CHECK (scope IN ('account', 'address')),
    key TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX login_failures_scope_key_at ON pilot.login_failures (scope, key, at);
