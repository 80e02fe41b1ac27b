-- Welcome credits are counted per client address in Postgres, in the transaction that gives one,
-- instead of in a rate window (in memory in `mathia-local`, in Redis on Lambda): a restart no
-- longer forgets the day's count, and a Redis outage no longer withholds every credit. The
-- address is kept only while it counts: the scheduler clears it a day after the credit.
ALTER TABLE welcome_credits ADD COLUMN address text;
CREATE INDEX welcome_credits_by_address ON welcome_credits (address, created_at) WHERE address IS NOT NULL;
