-- The moderation worker's read: a batch of messages by id. It runs once per moderation batch, so
-- it is kept prepared (planned once per connection) rather than planned on every call; as a
-- function with `enable_seqscan = off`, its cached plan is never a sequential scan. A plan cached
-- while `messages` was nearly empty would otherwise scan the whole table on every batch once the
-- table has grown, until the next ANALYZE replaced it.
CREATE FUNCTION messages_to_moderate(ids uuid[])
RETURNS TABLE (id uuid, room_id uuid, seq bigint, author_id uuid, key_version integer, nonce bytea, ciphertext bytea)
LANGUAGE plpgsql STABLE
SET enable_seqscan = off
AS $$
BEGIN
    RETURN QUERY
        SELECT m.id, m.room_id, m.seq, m.author_id, m.key_version, m.nonce, m.ciphertext
        FROM messages m
        WHERE m.id = ANY(ids) AND m.kind = 'user' AND m.deleted_at IS NULL;
END
$$;
