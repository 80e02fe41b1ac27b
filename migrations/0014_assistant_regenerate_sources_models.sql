-- The assistant (issue 14): regenerated replies, the notes a reply drew on, and a model per
-- workspace.

-- The notes that informed an AI reply, sealed with the room's key like the body (they quote
-- note text): a JSON list of `{note_id, room_id, excerpt}` plus a count of the asker's own notes
-- from other rooms, which are never named.
ALTER TABLE messages
    ADD COLUMN sources_key_version integer,
    ADD COLUMN sources_nonce       bytea,
    ADD COLUMN sources_ciphertext  bytea;

-- A regenerate job replaces this reply (the same message is rewritten when its stream ends).
-- While one runs (or waits in the queue) for a reply, another is refused; `queued` is the
-- state between the request and the worker's claim.
ALTER TABLE ai_jobs ADD COLUMN regenerates uuid;
ALTER TABLE ai_jobs DROP CONSTRAINT ai_jobs_status_check;
ALTER TABLE ai_jobs ADD CONSTRAINT ai_jobs_status_check CHECK (status IN ('queued', 'running', 'done'));
CREATE UNIQUE INDEX ai_jobs_one_regeneration_idx ON ai_jobs (regenerates) WHERE status <> 'done';

-- The model a workspace's assistant uses: an id of `MATHIA_AI_MODELS`; NULL is the default.
ALTER TABLE workspaces ADD COLUMN ai_model text;
