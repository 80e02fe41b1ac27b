-- The outcome of each tool call that changes something (a note, a reminder, a booking), per
-- AI job: a job delivered again, or retried after a failure, finds the outcome here and does not
-- act twice. Outcomes hold room content, so they are sealed with the room's key like messages.

CREATE TABLE ai_tool_calls (
    job_id      uuid        NOT NULL,
    -- "<round>:<index>:<tool name>:<sha-256 of the arguments>"
    call_key    text        NOT NULL,
    room_id     uuid        NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    key_version integer     NOT NULL,
    nonce       bytea       NOT NULL,
    ciphertext  bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, call_key)
);
