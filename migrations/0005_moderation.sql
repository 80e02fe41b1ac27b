-- Moderation: a flag per offending message and classifier (so a batch judged twice flags
-- once), and mutes per room with a growing duration.

CREATE TABLE moderation_flags (
    id         uuid PRIMARY KEY,
    message_id uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    room_id    uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    category   text NOT NULL,
    severity   text NOT NULL,
    source     text NOT NULL,
    created_at timestamptz NOT NULL,
    CONSTRAINT moderation_flags_once UNIQUE (message_id, source)
);
CREATE INDEX moderation_flags_user_idx ON moderation_flags (room_id, user_id, created_at);

CREATE TABLE mutes (
    id         uuid PRIMARY KEY,
    room_id    uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    until      timestamptz NOT NULL,
    reason     text NOT NULL,
    created_at timestamptz NOT NULL,
    lifted_at  timestamptz
);
CREATE INDEX mutes_active_idx ON mutes (room_id, user_id) WHERE lifted_at IS NULL;
-- At most one active mute per person and room.
CREATE UNIQUE INDEX mutes_one_active ON mutes (room_id, user_id) WHERE lifted_at IS NULL;
