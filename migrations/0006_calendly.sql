-- Calendly connections: tokens sealed with the master key (never stored or logged in the
-- clear), and single-use OAuth states bound to the session's user.

CREATE TABLE calendly_accounts (
    user_id          uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    kind             text NOT NULL CHECK (kind IN ('token', 'oauth')),
    user_uri         text NOT NULL,
    name             text,
    email            text,
    scheduling_url   text,
    access_nonce     bytea NOT NULL,
    access_sealed    bytea NOT NULL,
    refresh_nonce    bytea,
    refresh_sealed   bytea,
    expires_at       timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE calendly_oauth_states (
    state_hash bytea PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    used_at    timestamptz
);
