-- Message search: a keyed blind index. One row per distinct word of a message, holding only
-- HMAC-SHA256(room index key, word) cut to 16 bytes (see keyring/blind_index.rs): no word, no
-- position, no order. The index key derives from the room's data key, so the rows of one room
-- say which of its messages share a word, and nothing about what the word is.
--
-- Rows are written in the statement that stores the message, replaced on edit and removed on
-- delete. `term` leads the key: a search is one index range per (query word, readable room key),
-- newest message first (ids are UUIDv7, so their order is their time's).
-- No foreign keys: the checks would cost the hot insert one lookup per word. Message rows are
-- never deleted (a delete empties the row and drops its terms here); rooms are not deleted today,
-- and if one were, its leftover hashes would be keyed by a key deleted with it (room_keys cascade).
CREATE TABLE message_terms (
    term       bytea NOT NULL,
    message_id uuid NOT NULL,
    room_id    uuid NOT NULL,
    PRIMARY KEY (term, message_id)
);

