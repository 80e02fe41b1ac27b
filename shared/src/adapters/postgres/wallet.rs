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

/// Who a welcome credit would go to, and what bounds it.
#[derive(Debug, Clone, Copy)]
pub struct Welcome<'a> {
    pub user_id: Uuid,
    pub workspace_id: Uuid,
    pub cents: i64,
    /// The client address the workspace was made from (`"unknown"` when there is none).
    pub address: &'a str,
    /// Credits to workspaces made from one address within [`WELCOME_WINDOW`] of `now`.
    pub per_address: u32,
    pub now: DateTime<Utc>,
}

/// The span over which welcome credits are counted per address; the scheduler clears an
/// address from its credit once it has passed ([`forget_welcome_addresses`]).
pub const WELCOME_WINDOW: chrono::Duration = chrono::Duration::hours(24);

/// What became of a welcome credit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Welcomed {
    Credited,
    /// This deployment gives no welcome credit (`welcome_credit_cents` is 0).
    NotOffered,
    /// This person was welcomed before (once per person, whatever workspaces they make).
    AlreadyWelcomed,
    /// Their address had its credits for the day.
    AddressSpent,
}

/// The welcome credit, once per person and at most `per_address` a day from one client address:
/// inside the transaction that creates `workspace_id` (whose wallet is new, so nothing else moves
/// it). Workspaces made from one address at the same moment take turns on a transaction-scoped
/// advisory lock on the address, so each counts the credits the others gave.
pub async fn welcome_in(tx: &mut Transaction<'_, Postgres>, w: Welcome<'_>) -> Result<Welcomed, sqlx::Error> {
    let Welcome { user_id, workspace_id, cents, address, per_address, now } = w;
    if cents <= 0 {
        return Ok(Welcomed::NotOffered);
    }
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('welcome:' || $1, 0))")
        .bind(address)
        .execute(&mut **tx)
        .await?;
    let given: i64 = sqlx::query_scalar("SELECT count(*) FROM welcome_credits WHERE address = $1 AND created_at > $2")
        .bind(address)
        .bind(now - WELCOME_WINDOW)
        .fetch_one(&mut **tx)
        .await?;
    if given >= i64::from(per_address) {
        return Ok(Welcomed::AddressSpent);
    }
    let first: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO welcome_credits (user_id, workspace_id, address, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT DO NOTHING RETURNING user_id",
    )
    .bind(user_id)
    .bind(workspace_id)
    .bind(address)
    .bind(now)
    .fetch_optional(&mut **tx)
    .await?;
    if first.is_none() {
        return Ok(Welcomed::AlreadyWelcomed);
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
    Ok(Welcomed::Credited)
}

/// Clears the client address from welcome credits older than [`WELCOME_WINDOW`]: past it the
/// address no longer counts, and it is not kept longer than it is needed. Returns how many.
pub async fn forget_welcome_addresses(db: &PgPool, now: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("UPDATE welcome_credits SET address = NULL WHERE address IS NOT NULL AND created_at <= $1")
        .bind(now - WELCOME_WINDOW)
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}
