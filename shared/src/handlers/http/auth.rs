//! Accounts and sessions: register, login, logout, me, and one-time WebSocket tickets.

use std::sync::OnceLock;

use argon2::{
    Argon2,
    password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash},
};
use axum::{extract::State, http::StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use super::{
    error::{ApiError, ApiResult},
    extract::{AuthUser, Json},
};
use crate::{
    adapters::postgres::{users, violated_constraint},
    app::App,
    domain::{DisplayName, Email, Password, User},
    realtime::end_session,
    tokens::{hash_hex, random_token},
};

/// Runs Argon2 work on the blocking pool, a bounded number at a time. Each hash holds 19 MiB
/// while it runs: unbounded, a burst of sign-ups or logins takes that much per request at once,
/// and the allocator keeps it afterwards (100 sign-ups left the server at 800 MiB). The cores
/// are the limit on how fast hashes finish anyway.
async fn argon2_work<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    let slots = SLOTS.get_or_init(|| Semaphore::new(hashes_at_once()));
    let _slot = slots.acquire().await.expect("the semaphore is never closed");
    tokio::task::spawn_blocking(work).await
}

/// How many Argon2 hashes run at once: one per core.
fn hashes_at_once() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

async fn hash_password(password: Password) -> ApiResult<String> {
    argon2_work(move || {
        Argon2::default()
            .hash_password(password.expose().as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))
    })
    .await
    .map_err(crate::Error::internal)?
    .map_err(ApiError::from)
}

/// Checks a password against a stored hash; with no hash it still does the work, so a wrong
/// e-mail takes as long as a wrong password.
async fn verify_password(password: String, stored: Option<String>) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    argon2_work(move || {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| {
            DUMMY
                .get_or_init(|| Argon2::default().hash_password(b"not a real password").expect("hash").to_string())
                .clone()
        });
        let Ok(parsed) = PasswordHash::new(&stored) else {
            return false;
        };
        Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok() && known
    })
    .await
    .unwrap_or(false)
}

async fn start_session(app: &App, user: &User) -> ApiResult<String> {
    let token = random_token();
    let expires = app.clock.now() + app.config.session_ttl;
    users::create_session(&app.db, user.id, &token, expires).await?;
    Ok(token)
}

#[derive(Deserialize)]
pub struct RegisterBody {
    email: String,
    password: String,
    display_name: String,
}

#[utoipa::path(post, path = "/api/auth/register", tag = "auth", security(()),
    responses((status = 201, description = "`{token, user}`"), (status = 400, description = "a field is invalid"),
              (status = 409, description = "`email_taken`")))]
pub async fn register(State(app): State<App>, Json(body): Json<RegisterBody>) -> ApiResult<(StatusCode, Json<Value>)> {
    let email = Email::parse(&body.email)?;
    let display_name = DisplayName::parse(&body.display_name)?;
    let password = Password::parse(&body.password)?;
    let hash = hash_password(password).await?;
    let user = match users::create(&app.db, email.as_str(), display_name.as_str(), &hash).await {
        Ok(created) => created,
        Err(e) if violated_constraint(&e) == Some("users_email_key") => {
            return Err(ApiError {
                field: Some("email"),
                ..ApiError::conflict("email_taken", "that e-mail address already has an account")
            });
        }
        Err(e) => return Err(e.into()),
    };
    let token = start_session(&app, &user).await?;
    tracing::info!(user_id = %user.id, "registered");
    Ok((StatusCode::CREATED, Json(json!({ "token": token, "user": user }))))
}

#[derive(Deserialize)]
pub struct LoginBody {
    email: String,
    password: String,
}

#[utoipa::path(post, path = "/api/auth/login", tag = "auth", security(()),
    responses((status = 200, description = "`{token, user}`"), (status = 401, description = "`invalid_credentials`")))]
pub async fn login(State(app): State<App>, Json(body): Json<LoginBody>) -> ApiResult<Json<Value>> {
    let row = users::by_email(&app.db, body.email.trim()).await?;
    let stored = row.as_ref().map(|r| r.password_hash.clone());
    if body.password.len() > 1024 || !verify_password(body.password, stored).await {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", "wrong e-mail or password"));
    }
    let user = User::from(row.expect("verified users exist"));
    let token = start_session(&app, &user).await?;
    Ok(Json(json!({ "token": token, "user": user })))
}

#[utoipa::path(post, path = "/api/auth/logout", tag = "auth",
    responses((status = 204, description = "the token stops working")))]
pub async fn logout(State(app): State<App>, auth: AuthUser) -> ApiResult<StatusCode> {
    users::revoke_session(&app.db, &auth.token).await?;
    // The session's sockets end with it (tickets fetched with it are refused at the handshake).
    end_session(&app, auth.user.id, &hash_hex(&auth.token)).await;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/ws-ticket`: a one-time ticket to open the WebSocket with, valid for 60 s.
#[utoipa::path(post, path = "/api/ws-ticket", tag = "realtime",
    responses((status = 200, description = "`{ticket, expires_in_s}`: one-time, 60 s"),
              (status = 503, description = "Redis is down")))]
pub async fn ws_ticket(State(app): State<App>, auth: AuthUser) -> ApiResult<Json<Value>> {
    let ticket = random_token();
    let session = hash_hex(&auth.token);
    app.redis.put_session_ticket(&hash_hex(&ticket), auth.user.id, &session, app.config.ticket_ttl).await?;
    Ok(Json(json!({ "ticket": ticket, "expires_in_s": app.config.ticket_ttl.as_secs() })))
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{
            Arc,
            atomic::{AtomicUsize, Ordering},
        },
        time::Duration,
    };

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_argon2_work_runs_at_once_than_there_are_cores() {
        let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let jobs = (0..4 * hashes_at_once() + 2).map(|_| {
            let (running, most) = (running.clone(), most.clone());
            tokio::spawn(argon2_work(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(50));
                running.fetch_sub(1, Ordering::SeqCst);
            }))
        });
        for job in futures::future::join_all(jobs).await {
            job.unwrap().unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), hashes_at_once(), "more ran at once than allowed, or never that many");
    }
}
