-- Attention: who was mentioned in a message, and how far each person has read each room.

-- Mentions of a message, stored by user id (a rename does not break them) and only for people
-- who were members of the room when it was posted. `everyone` marks an `@room` mention (one row,
-- `user_id` NULL). `seq` is the message's, so counting a room's mentions after a marker needs no
-- join with `messages`.
CREATE TABLE message_mentions (
    message_id uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    room_id    uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq        bigint NOT NULL,
    user_id    uuid REFERENCES users (id) ON DELETE CASCADE,
    everyone   boolean NOT NULL DEFAULT false,
    CHECK (everyone = (user_id IS NULL))
);
CREATE UNIQUE INDEX message_mentions_one_idx
    ON message_mentions (message_id, coalesce(user_id, '00000000-0000-0000-0000-000000000000'::uuid));
CREATE INDEX message_mentions_user_idx ON message_mentions (user_id, room_id, seq);
CREATE INDEX message_mentions_room_idx ON message_mentions (room_id, seq) WHERE everyone;

-- Per person and room: the last `seq` they have read. It only moves forward.
CREATE TABLE read_markers (
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    room_id       uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    last_read_seq bigint NOT NULL CHECK (last_read_seq >= 0),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, room_id)
);

-- Replies to a person's messages are counted through `messages.reply_to`.
CREATE INDEX IF NOT EXISTS messages_reply_to_idx ON messages (reply_to) WHERE reply_to IS NOT NULL;
