-- Files shared in rooms. Bytes live in object storage (S3, or a local folder encrypted with the
-- room's key); a row tracks each upload from its declaration to its validation.

CREATE TABLE files (
    id            uuid PRIMARY KEY,
    room_id       uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    uploader_id   uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          text NOT NULL,
    declared_type text NOT NULL,
    declared_size bigint NOT NULL,
    status        text NOT NULL CHECK (status IN ('pending', 'ready', 'rejected')),
    content_type  text,
    size          bigint,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX files_room_idx ON files (room_id);

ALTER TABLE messages ADD COLUMN attachment_id uuid REFERENCES files (id) ON DELETE SET NULL;
