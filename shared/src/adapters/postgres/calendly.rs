//! Calendly accounts (tokens sealed with the master key) and single-use OAuth states.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::keyring::{KeyringError, RoomKeyring};

/// A connected account, with its tokens opened.
#[derive(Clone)]
pub struct Account {
    pub user_id: Uuid,
    pub kind: String,
    pub user_uri: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub scheduling_url: Option<String>,
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account").field("user_id", &self.user_id).field("kind", &self.kind).finish_non_exhaustive()
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    user_id: Uuid,
    kind: String,
    user_uri: String,
    name: Option<String>,
    email: Option<String>,
    scheduling_url: Option<String>,
    access_nonce: Vec<u8>,
    access_sealed: Vec<u8>,
    refresh_nonce: Option<Vec<u8>>,
    refresh_sealed: Option<Vec<u8>>,
    expires_at: Option<DateTime<Utc>>,
}

pub async fn save(db: &PgPool, keyring: &RoomKeyring, a: &Account) -> Result<(), sqlx::Error> {
    let (access_nonce, access_sealed) = keyring.seal_secret(a.user_id, "calendly-access", a.access_token.as_bytes());
    let refresh = a.refresh_token.as_ref().map(|t| keyring.seal_secret(a.user_id, "calendly-refresh", t.as_bytes()));
    sqlx::query(
        "INSERT INTO calendly_accounts (user_id, kind, user_uri, name, email, scheduling_url, access_nonce, access_sealed,
                                        refresh_nonce, refresh_sealed, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (user_id) DO UPDATE SET kind = $2, user_uri = $3, name = $4, email = $5, scheduling_url = $6,
             access_nonce = $7, access_sealed = $8, refresh_nonce = $9, refresh_sealed = $10, expires_at = $11, updated_at = now()",
    )
    .bind(a.user_id)
    .bind(&a.kind)
    .bind(&a.user_uri)
    .bind(&a.name)
    .bind(&a.email)
    .bind(&a.scheduling_url)
    .bind(access_nonce)
    .bind(access_sealed)
    .bind(refresh.as_ref().map(|r| r.0.clone()))
    .bind(refresh.map(|r| r.1))
    .bind(a.expires_at)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn get(db: &PgPool, keyring: &RoomKeyring, user_id: Uuid) -> Result<Option<Account>, sqlx::Error> {
    let row: Option<Row> =
        sqlx::query_as("SELECT * FROM calendly_accounts WHERE user_id = $1").bind(user_id).fetch_optional(db).await?;
    let Some(r) = row else { return Ok(None) };
    let open = |purpose, nonce: &[u8], sealed: &[u8]| {
        keyring
            .open_secret(r.user_id, purpose, nonce, sealed)
            .map_err(|e: KeyringError| sqlx::Error::Protocol(e.to_string()))
    };
    let access_token = open("calendly-access", &r.access_nonce, &r.access_sealed)?;
    let refresh_token = match (&r.refresh_nonce, &r.refresh_sealed) {
        (Some(n), Some(s)) => Some(open("calendly-refresh", n, s)?),
        _ => None,
    };
    Ok(Some(Account {
        user_id: r.user_id,
        kind: r.kind,
        user_uri: r.user_uri,
        name: r.name,
        email: r.email,
        scheduling_url: r.scheduling_url,
        access_token,
        refresh_token,
        expires_at: r.expires_at,
    }))
}

pub async fn delete(db: &PgPool, user_id: Uuid) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM calendly_accounts WHERE user_id = $1").bind(user_id).execute(db).await?.rows_affected()
        == 1)
}

fn hash(state: &str) -> Vec<u8> {
    crate::tokens::hash(state)
}

/// A new OAuth state: who started it, the browser it was started in (the hash of the nonce in
/// that browser's cookie) and its PKCE verifier, sealed.
pub struct NewState<'a> {
    pub state: &'a str,
    pub user_id: Uuid,
    pub browser_nonce: &'a str,
    pub code_verifier: &'a str,
}

pub async fn put_state(
    db: &PgPool,
    keyring: &RoomKeyring,
    new: &NewState<'_>,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let (verifier_nonce, verifier_sealed) =
        keyring.seal_secret(new.user_id, "calendly-pkce", new.code_verifier.as_bytes());
    sqlx::query(
        "INSERT INTO calendly_oauth_states (state_hash, user_id, created_at, browser_hash, verifier_nonce, verifier_sealed)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(hash(new.state))
    .bind(new.user_id)
    .bind(now)
    .bind(hash(new.browser_nonce))
    .bind(verifier_nonce)
    .bind(verifier_sealed)
    .execute(db)
    .await?;
    Ok(())
}

/// Spends a state presented by the browser holding `browser_nonce`: its user and PKCE verifier
/// when it is known, bound to that browser, unused and fresh; None otherwise (and then it is
/// not spent: another browser's attempt does not use up the real one's).
pub async fn take_state(
    db: &PgPool,
    keyring: &RoomKeyring,
    state: &str,
    browser_nonce: &str,
    now: DateTime<Utc>,
) -> Result<Option<(Uuid, String)>, sqlx::Error> {
    let row: Option<(Uuid, Vec<u8>, Vec<u8>)> = sqlx::query_as(
        "UPDATE calendly_oauth_states SET used_at = $2
         WHERE state_hash = $1 AND browser_hash = $3 AND used_at IS NULL AND created_at > $2 - interval '10 minutes'
           AND verifier_nonce IS NOT NULL AND verifier_sealed IS NOT NULL
         RETURNING user_id, verifier_nonce, verifier_sealed",
    )
    .bind(hash(state))
    .bind(now)
    .bind(hash(browser_nonce))
    .fetch_optional(db)
    .await?;
    let Some((user_id, nonce, sealed)) = row else { return Ok(None) };
    let verifier = keyring
        .open_secret(user_id, "calendly-pkce", &nonce, &sealed)
        .map_err(|e: KeyringError| sqlx::Error::Protocol(e.to_string()))?;
    Ok(Some((user_id, verifier)))
}
