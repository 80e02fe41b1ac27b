-- Chat core: people, sessions, workspaces, rooms, invites, encrypted messages.

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    email         text NOT NULL,
    display_name  text NOT NULL,
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

-- Session tokens are random; only their SHA-256 is stored.
CREATE TABLE sessions (
    token_hash bytea PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX sessions_user_idx ON sessions (user_id);

CREATE TABLE workspaces (
    id         uuid PRIMARY KEY,
    name       text NOT NULL,
    owner_id   uuid NOT NULL REFERENCES users (id),
    personal   boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE workspace_members (
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role         text NOT NULL CHECK (role IN ('owner', 'member')),
    joined_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX workspace_members_user_idx ON workspace_members (user_id);

CREATE TABLE rooms (
    id           uuid PRIMARY KEY,
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         text NOT NULL,
    created_by   uuid NOT NULL REFERENCES users (id),
    -- The last message sequence number handed out; bumped in the insert's transaction.
    last_seq     bigint NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rooms_workspace_idx ON rooms (workspace_id);

CREATE TABLE room_members (
    room_id   uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id   uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    joined_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX room_members_user_idx ON room_members (user_id);

-- Per-room data keys, wrapped by the master key. Rotation adds a version.
CREATE TABLE room_keys (
    room_id     uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    version     integer NOT NULL,
    wrapped_key bytea NOT NULL,
    nonce       bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (room_id, version)
);

CREATE TABLE invites (
    code       text PRIMARY KEY,
    room_id    uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    created_by uuid NOT NULL REFERENCES users (id),
    max_uses   integer,
    uses       integer NOT NULL DEFAULT 0,
    expires_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Bodies are never stored in plaintext: only key_version, nonce and ciphertext.
CREATE TABLE messages (
    id            uuid PRIMARY KEY,
    room_id       uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq           bigint NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('user', 'ai', 'system')),
    author_id     uuid REFERENCES users (id) ON DELETE SET NULL,
    key_version   integer NOT NULL,
    nonce         bytea NOT NULL,
    ciphertext    bytea NOT NULL,
    client_msg_id text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (room_id, seq)
);
-- A client resending a message it never saw acknowledged gets the first one back.
CREATE UNIQUE INDEX messages_client_msg_key ON messages (room_id, author_id, client_msg_id)
    WHERE client_msg_id IS NOT NULL;
