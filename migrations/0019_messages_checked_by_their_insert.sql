-- A message's room and author are checked by the statement that stores it, so the foreign keys
-- that checked them again are dropped. The insert takes its `seq` from bumping the room's row
-- (no room, no row, no message) and, for a person's message, requires the author's membership
-- row in `room_members` (which keeps its own keys to `rooms` and `users`); AI and system messages
-- have no author. Each key cost a lookup of the referenced row for every stored message, and the
-- author's key locked that person's `users` row (FOR KEY SHARE) in every batch that carried
-- their message, a write to that row's page. Their ON DELETE actions never ran: rooms and users
-- are never deleted (as for `message_terms`, which never had keys). The keys between messages
-- (`reply_to`) and to files (`attachment_id`) stay: they are checked only when set, and the
-- insert reads those rows anyway.
ALTER TABLE messages
    DROP CONSTRAINT messages_room_id_fkey,
    DROP CONSTRAINT messages_author_id_fkey;
