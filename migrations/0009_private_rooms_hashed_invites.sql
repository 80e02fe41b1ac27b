-- Rooms are public within their workspace (any member may join by id) or private (an invite
-- is needed). Rooms that existed before keep what they had: anyone in the workspace could join
-- them, so they are public; new rooms are private unless created public (the API's default).
ALTER TABLE rooms ADD COLUMN visibility text NOT NULL DEFAULT 'public'
    CHECK (visibility IN ('public', 'private'));

-- Invite codes are secrets: only their SHA-256 is kept, like session tokens. Each invite gets
-- an id so it can be named (revoked) without its code.
ALTER TABLE invites ADD COLUMN id uuid, ADD COLUMN code_hash bytea;
UPDATE invites SET id = gen_random_uuid(), code_hash = sha256(convert_to(code, 'UTF8'));
ALTER TABLE invites DROP CONSTRAINT invites_pkey;
ALTER TABLE invites DROP COLUMN code;
ALTER TABLE invites ALTER COLUMN id SET NOT NULL, ALTER COLUMN code_hash SET NOT NULL;
ALTER TABLE invites ADD PRIMARY KEY (id);
ALTER TABLE invites ADD CONSTRAINT invites_code_hash_key UNIQUE (code_hash);
CREATE INDEX invites_room_idx ON invites (room_id);

-- Who has used which invite: an invite lets each person in once, so someone who left or was
-- removed needs a new one.
CREATE TABLE invite_redemptions (
    invite_id   uuid NOT NULL REFERENCES invites (id) ON DELETE CASCADE,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    redeemed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (invite_id, user_id)
);
