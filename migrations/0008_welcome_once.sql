-- One welcome credit per person, whatever number of workspaces they create: the row is taken in
-- the transaction that credits, so a replayed or concurrent onboarding step cannot credit twice.
CREATE TABLE welcome_credits (
    user_id      uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- People welcomed before this table existed (keys `welcome:<workspace id>`) were welcomed.
INSERT INTO welcome_credits (user_id, workspace_id, created_at)
SELECT DISTINCT ON (w.owner_id) w.owner_id, w.id, l.created_at
FROM ledger_entries l JOIN workspaces w ON w.id = l.workspace_id
WHERE l.kind = 'credit' AND l.idempotency_key LIKE 'welcome:%'
ORDER BY w.owner_id, l.created_at
ON CONFLICT DO NOTHING;
