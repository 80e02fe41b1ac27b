-- Message search: the blind index moves from one row per (word, message) in `message_terms` to
-- one array per message, `messages.search_terms`, under a GIN index. At a few thousand messages
-- a second the nine or so B-tree rows of each message were the largest part of the insert's
-- cost (a heap row and an index entry each, the entry at a random place of an index larger than
-- the table); a GIN index takes the new entries into its pending list and merges them in bulk,
-- and keeps one posting list per hash, so it is a fraction of the size (bench/RESULTS.md).
--
-- A hash is now the first 8 bytes of HMAC-SHA256 as a bigint (keyring/blind_index.rs), so the
-- 16-byte hashes of `message_terms` are cut to their first 8 bytes, read big-endian, as the code
-- now cuts them. The pending list is kept small (1 MB, against 4 MB by default) so that merging
-- it, which falls to the insert that overflows it, stays a short pause.
ALTER TABLE messages ADD COLUMN search_terms bigint[];

UPDATE messages m SET search_terms = t.terms
FROM (SELECT message_id,
             array_agg(DISTINCT ('x' || encode(substring(term FROM 1 FOR 8), 'hex'))::bit(64)::bigint) AS terms
      FROM message_terms GROUP BY message_id) t
WHERE t.message_id = m.id;

DROP TABLE message_terms;

CREATE INDEX messages_search_terms_idx ON messages USING gin (search_terms) WITH (gin_pending_list_limit = 1024);
