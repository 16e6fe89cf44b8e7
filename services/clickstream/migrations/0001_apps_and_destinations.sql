-- Apps, their write keys, and their destinations.

CREATE TABLE clickstream.apps (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE CHECK (name <> ''),
    -- Events per second accepted for this app by each Event API process; NULL: no limit.
    rate_limit  INTEGER CHECK (rate_limit > 0),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Several keys per app so a key can be rotated: add the new one, then revoke the old.
-- Only a SHA-256 of the key is kept; keys are long random tokens, so a fast hash is
-- enough and keeps the per-request lookup cheap.
CREATE TABLE clickstream.write_keys (
    id          BIGSERIAL PRIMARY KEY,
    app_id      BIGINT NOT NULL REFERENCES clickstream.apps (id) ON DELETE CASCADE,
    key_hash    BYTEA NOT NULL UNIQUE,
    -- First characters of the key, so people can tell keys apart without the secret.
    key_prefix  TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at  TIMESTAMPTZ
);
CREATE INDEX write_keys_app_id ON clickstream.write_keys (app_id);

CREATE TABLE clickstream.destinations (
    id          BIGSERIAL PRIMARY KEY,
    app_id      BIGINT NOT NULL REFERENCES clickstream.apps (id) ON DELETE CASCADE,
    -- The name events use in their `integrations` map to opt in or out.
    name        TEXT NOT NULL CHECK (name <> ''),
    kind        TEXT NOT NULL CHECK (kind IN ('webhook', 'warehouse', 'redis')),
    settings    JSONB NOT NULL DEFAULT '{}'::jsonb,
    secret      TEXT,
    enabled     BOOLEAN NOT NULL DEFAULT true,
    -- {"types": [...], "events": [...]}; an empty or missing list lets everything through.
    filters     JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (app_id, name)
);

-- What each destination's workers have done, updated in small aggregated steps.
CREATE TABLE clickstream.delivery_state (
    destination_id     BIGINT PRIMARY KEY
                       REFERENCES clickstream.destinations (id) ON DELETE CASCADE,
    delivered          BIGINT NOT NULL DEFAULT 0,
    retried            BIGINT NOT NULL DEFAULT 0,
    dead_lettered      BIGINT NOT NULL DEFAULT 0,
    replayed           BIGINT NOT NULL DEFAULT 0,
    last_delivered_at  TIMESTAMPTZ,
    last_error         TEXT,
    last_error_at      TIMESTAMPTZ
);

-- Caches in the Event API, router and workers listen on these channels, so a change
-- made by anyone (this CLI, Pilot, plain SQL) reaches them at once.
CREATE FUNCTION clickstream.notify_change() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify(TG_ARGV[0], '');  -- the channel, named by the trigger
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER write_keys_changed AFTER INSERT OR UPDATE OR DELETE ON clickstream.write_keys
    FOR EACH STATEMENT EXECUTE FUNCTION clickstream.notify_change('clickstream_write_keys');
CREATE TRIGGER apps_changed AFTER UPDATE OR DELETE ON clickstream.apps
    FOR EACH STATEMENT EXECUTE FUNCTION clickstream.notify_change('clickstream_write_keys');
CREATE TRIGGER destinations_changed AFTER INSERT OR UPDATE OR DELETE ON clickstream.destinations
    FOR EACH STATEMENT EXECUTE FUNCTION clickstream.notify_change('clickstream_destinations');
