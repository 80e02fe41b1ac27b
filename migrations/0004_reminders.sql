-- Reminders: set from plain language, delivered exactly once. The text is sealed with the
-- room's key. Due within 15 minutes → queued with a delay; later → swept by the scheduler.

CREATE TABLE reminders (
    id                uuid PRIMARY KEY,
    user_id           uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    room_id           uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    -- One reminder per asking message, however often its job is delivered.
    source_message_id uuid UNIQUE,
    key_version       integer NOT NULL,
    nonce             bytea NOT NULL,
    ciphertext        bytea NOT NULL,
    due_at            timestamptz NOT NULL,
    status            text NOT NULL CHECK (status IN ('pending', 'queued', 'delivered', 'cancelled')),
    -- Whether the person has seen it (they may have been offline when it was due).
    notified          boolean NOT NULL DEFAULT false,
    created_at        timestamptz NOT NULL DEFAULT now(),
    delivered_at      timestamptz
);
CREATE INDEX reminders_pending_due_idx ON reminders (due_at) WHERE status = 'pending';
CREATE INDEX reminders_user_idx ON reminders (user_id, due_at);
