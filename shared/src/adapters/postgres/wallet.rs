//! Workspace wallets: a balance row and an append-only ledger. A movement is one transaction
//! that takes the balance row's lock, refuses to go below zero, and records an entry under a
//! unique idempotency key — so money is never lost, doubled or driven negative, whatever the
//! concurrency or retries.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Credit,
    Debit,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Credit => "credit",
            Self::Debit => "debit",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Entry {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub kind: String,
    pub amount_cents: i64,
    pub balance_after_cents: i64,
    pub reason: String,
    pub idempotency_key: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Wallet {
    pub workspace_id: Uuid,
    pub balance_cents: i64,
    pub currency: String,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Moved {
    /// A new ledger entry.
    New(Entry),
    /// The idempotency key was used before: the original entry, nothing moved.
    Replayed(Entry),
    InsufficientFunds {
        balance_cents: i64,
    },
    /// The key was used before for a different movement.
    KeyReused(Entry),
    NoWallet,
}

const ENTRY_COLUMNS: &str =
    "id, workspace_id, kind, amount_cents, balance_after_cents, reason, idempotency_key, created_at";

/// Creates a workspace's wallet (inside the transaction that creates the workspace).
pub async fn create(tx: &mut Transaction<'_, Postgres>, workspace_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO wallets (workspace_id) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(workspace_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn get(db: &PgPool, workspace_id: Uuid) -> Result<Option<Wallet>, sqlx::Error> {
    sqlx::query_as("SELECT workspace_id, balance_cents, currency FROM wallets WHERE workspace_id = $1")
        .bind(workspace_id)
        .fetch_optional(db)
        .await
}

pub async fn entries(db: &PgPool, workspace_id: Uuid, limit: i64) -> Result<Vec<Entry>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ENTRY_COLUMNS} FROM ledger_entries WHERE workspace_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
    ))
    .bind(workspace_id)
    .bind(limit)
    .fetch_all(db)
    .await
}

async fn by_key(
    tx: &mut Transaction<'_, Postgres>,
    workspace_id: Uuid,
    key: &str,
) -> Result<Option<Entry>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ENTRY_COLUMNS} FROM ledger_entries WHERE workspace_id = $1 AND idempotency_key = $2"
    ))
    .bind(workspace_id)
    .bind(key)
    .fetch_optional(&mut **tx)
    .await
}

/// Moves money in or out of a wallet, once per idempotency key.
pub async fn apply(
    db: &PgPool,
    workspace_id: Uuid,
    kind: Kind,
    amount_cents: i64,
    key: &str,
    reason: &str,
    by: Option<Uuid>,
) -> Result<Moved, sqlx::Error> {
    let replay = |existing: Entry| {
        if existing.kind == kind.as_str() && existing.amount_cents == amount_cents {
            Moved::Replayed(existing)
        } else {
            Moved::KeyReused(existing)
        }
    };
    let mut tx = db.begin().await?;
    if let Some(existing) = by_key(&mut tx, workspace_id, key).await? {
        return Ok(replay(existing));
    }
    // The row lock serialises movements of one wallet; the WHERE re-checks the balance after
    // waiting for it, so concurrent debits can never overdraw.
    let delta = match kind {
        Kind::Credit => amount_cents,
        Kind::Debit => -amount_cents,
    };
    let balance: Option<i64> = sqlx::query_scalar(
        "UPDATE wallets SET balance_cents = balance_cents + $2, updated_at = now()
         WHERE workspace_id = $1 AND balance_cents + $2 >= 0
         RETURNING balance_cents",
    )
    .bind(workspace_id)
    .bind(delta)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(balance) = balance else {
        let current: Option<i64> = sqlx::query_scalar("SELECT balance_cents FROM wallets WHERE workspace_id = $1")
            .bind(workspace_id)
            .fetch_optional(&mut *tx)
            .await?;
        return Ok(match current {
            Some(balance_cents) => Moved::InsufficientFunds { balance_cents },
            None => Moved::NoWallet,
        });
    };
    let inserted: Option<Entry> = sqlx::query_as(&format!(
        "INSERT INTO ledger_entries (id, workspace_id, kind, amount_cents, balance_after_cents, reason, idempotency_key, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (workspace_id, idempotency_key) DO NOTHING
         RETURNING {ENTRY_COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(workspace_id)
    .bind(kind.as_str())
    .bind(amount_cents)
    .bind(balance)
    .bind(reason)
    .bind(key)
    .bind(by)
    .fetch_optional(&mut *tx)
    .await?;
    match inserted {
        Some(entry) => {
            tx.commit().await?;
            Ok(Moved::New(entry))
        }
        None => {
            // The same key won a race a moment ago: undo this movement, answer that one.
            tx.rollback().await?;
            let mut tx = db.begin().await?;
            let existing = by_key(&mut tx, workspace_id, key).await?.ok_or(sqlx::Error::RowNotFound)?;
            Ok(replay(existing))
        }
    }
}

/// What other parts (the AI worker) call to bill a workspace: once per key.
pub async fn charge(
    db: &PgPool,
    workspace_id: Uuid,
    cents: i64,
    key: &str,
    reason: &str,
) -> Result<Moved, sqlx::Error> {
    apply(db, workspace_id, Kind::Debit, cents, key, reason, None).await
}

/// The welcome credit, once per person: inside the transaction that creates `workspace_id`
/// (whose wallet is new, so nothing else moves it), if `user_id` was never welcomed before.
/// Returns whether it was credited.
pub async fn welcome_in(
    tx: &mut Transaction<'_, Postgres>,
    user_id: Uuid,
    workspace_id: Uuid,
    cents: i64,
) -> Result<bool, sqlx::Error> {
    if cents <= 0 {
        return Ok(false);
    }
    let first: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO welcome_credits (user_id, workspace_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING user_id",
    )
    .bind(user_id)
    .bind(workspace_id)
    .fetch_optional(&mut **tx)
    .await?;
    if first.is_none() {
        return Ok(false);
    }
    let balance: i64 = sqlx::query_scalar(
        "UPDATE wallets SET balance_cents = balance_cents + $2, updated_at = now() WHERE workspace_id = $1
         RETURNING balance_cents",
    )
    .bind(workspace_id)
    .bind(cents)
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO ledger_entries (id, workspace_id, kind, amount_cents, balance_after_cents, reason, idempotency_key)
         VALUES ($1, $2, 'credit', $3, $4, 'welcome credit', $5)",
    )
    .bind(Uuid::now_v7())
    .bind(workspace_id)
    .bind(cents)
    .bind(balance)
    .bind(format!("welcome:user:{user_id}"))
    .execute(&mut **tx)
    .await?;
    Ok(true)
}
