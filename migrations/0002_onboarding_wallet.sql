-- Onboarding (profile, goals, workspace) and workspace wallets with an append-only ledger.

ALTER TABLE users ADD COLUMN onboarding_step text NOT NULL DEFAULT 'profile'
    CHECK (onboarding_step IN ('profile', 'goals', 'workspace', 'done'));
-- People who signed up before onboarding existed have a workspace already.
UPDATE users SET onboarding_step = 'done';

CREATE TABLE profiles (
    user_id    uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    timezone   text NOT NULL,
    role       text,
    bio        text,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- What the assistant reads to personalise its answers.
CREATE TABLE goal_profiles (
    user_id    uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    goals      text[] NOT NULL,
    focus      text,
    tone       text,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE wallets (
    workspace_id  uuid PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    balance_cents bigint NOT NULL DEFAULT 0 CHECK (balance_cents >= 0),
    currency      text NOT NULL DEFAULT 'USD',
    updated_at    timestamptz NOT NULL DEFAULT now()
);
INSERT INTO wallets (workspace_id) SELECT id FROM workspaces;

-- Append-only: rows are inserted, never updated or deleted.
CREATE TABLE ledger_entries (
    id                  uuid PRIMARY KEY,
    workspace_id        uuid NOT NULL REFERENCES wallets (workspace_id) ON DELETE CASCADE,
    kind                text NOT NULL CHECK (kind IN ('credit', 'debit')),
    amount_cents        bigint NOT NULL CHECK (amount_cents > 0),
    balance_after_cents bigint NOT NULL CHECK (balance_after_cents >= 0),
    reason              text NOT NULL,
    idempotency_key     text NOT NULL,
    created_by          uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ledger_entries_idempotency_key UNIQUE (workspace_id, idempotency_key)
);
CREATE INDEX ledger_entries_workspace_idx ON ledger_entries (workspace_id, created_at DESC);
