-- The assistant: message extras (replies, edits, deletes, stopped streams, reactions), the
-- room's memory (notes, encrypted like messages) and AI jobs (one reply per job id).

ALTER TABLE messages
    ADD COLUMN reply_to   uuid REFERENCES messages (id) ON DELETE SET NULL,
    ADD COLUMN edited_at  timestamptz,
    ADD COLUMN deleted_at timestamptz,
    ADD COLUMN stopped    boolean NOT NULL DEFAULT false;

CREATE TABLE reactions (
    message_id uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    emoji      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, user_id, emoji)
);

CREATE TABLE notes (
    id          uuid PRIMARY KEY,
    room_id     uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    author_id   uuid REFERENCES users (id) ON DELETE SET NULL,
    priority    text NOT NULL CHECK (priority IN ('normal', 'high')),
    kind        text NOT NULL CHECK (kind IN ('decision', 'action_item', 'insight', 'reference')),
    key_version integer NOT NULL,
    nonce       bytea NOT NULL,
    ciphertext  bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notes_room_idx ON notes (room_id, created_at);

-- One row per AI job: a redelivered job finds its row and does nothing twice.
CREATE TABLE ai_jobs (
    job_id             uuid PRIMARY KEY,
    room_id            uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    trigger_message_id uuid NOT NULL,
    status             text NOT NULL CHECK (status IN ('running', 'done')),
    stream_id          uuid NOT NULL,
    reply_message_id   uuid,
    outcome            text,
    started_at         timestamptz NOT NULL DEFAULT now(),
    finished_at        timestamptz
);
