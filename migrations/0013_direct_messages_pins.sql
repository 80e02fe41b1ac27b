-- Direct messages: a room of exactly two people of one workspace, one per pair. The pair is kept
-- ordered (dm_low < dm_high) so a unique index makes two concurrent "get or create" requests
-- end in one room. Every room that existed before is a plain room.
ALTER TABLE rooms ADD COLUMN kind text NOT NULL DEFAULT 'room' CHECK (kind IN ('room', 'dm'));
ALTER TABLE rooms ADD COLUMN dm_low uuid REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE rooms ADD COLUMN dm_high uuid REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE rooms ADD CONSTRAINT rooms_dm_pair_check CHECK (
    (kind = 'room' AND dm_low IS NULL AND dm_high IS NULL)
    OR (kind = 'dm' AND dm_low IS NOT NULL AND dm_high IS NOT NULL AND dm_low < dm_high)
);
CREATE UNIQUE INDEX rooms_dm_pair_key ON rooms (workspace_id, dm_low, dm_high) WHERE kind = 'dm';

-- The last line of defence: nobody but the pair ever becomes a member of a DM, whatever path
-- (join, invite, a bug) tries to add them.
CREATE FUNCTION room_members_dm_pair_only() RETURNS trigger AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM rooms r WHERE r.id = NEW.room_id AND r.kind = 'dm'
               AND NEW.user_id <> r.dm_low AND NEW.user_id <> r.dm_high) THEN
        RAISE EXCEPTION 'only its two people are members of a direct message'
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER room_members_dm_pair_only BEFORE INSERT OR UPDATE ON room_members
    FOR EACH ROW EXECUTE FUNCTION room_members_dm_pair_only();

-- Pinned messages: one row per pinned message; a deleted message loses its pin.
CREATE TABLE pins (
    message_id uuid PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    room_id    uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    pinned_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    pinned_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pins_room_idx ON pins (room_id, pinned_at DESC);
