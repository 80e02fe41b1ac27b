//! Accounts and sessions: register, login, logout, me, and one-time WebSocket tickets.

use std::{
    net::SocketAddr,
    sync::{Arc, OnceLock},
    time::Duration,
};

use argon2::{
    Argon2,
    password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash},
};
use axum::{
    extract::{ConnectInfo, FromRequestParts, State},
    http::{StatusCode, request::Parts},
};
use lambda_http::request::RequestContext;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    error::{ApiError, ApiResult},
    extract::{AuthUser, Json},
};
use crate::{
    adapters::{
        postgres::{users, violated_constraint},
        redis::{RateDecision, SocketTicket},
    },
    app::{App, HashSlots},
    domain::{DisplayName, Email, Password, User},
    realtime::{end_session, issue_ticket, mark_session_ended, sockets_open},
    sessions,
    tokens::{hash_hex, random_token},
};

/// Runs Argon2 work on the blocking pool, a bounded number at a time, fairly between client
/// addresses (`HashSlots`). Each hash holds 19 MiB while it runs: unbounded, a burst of sign-ups
/// or logins takes that much per request at once, and the allocator keeps it afterwards (100
/// sign-ups left the server at 800 MiB). The cores are the limit on how fast hashes finish
/// anyway. The slot is held until the work ends, even when the request has gone away.
async fn argon2_work<T: Send + 'static>(
    hashing: &Arc<HashSlots>,
    address: &ClientAddress,
    work: impl FnOnce() -> T + Send + 'static,
) -> ApiResult<T> {
    let slot = hashing.acquire(address.0.as_deref().unwrap_or("")).await.map_err(|refused| {
        tracing::warn!(?refused, "sign-in refused: the Argon2 queue is full");
        ApiError { retry_after_s: Some(1), ..ApiError::unavailable("sign-in") }
    })?;
    tokio::task::spawn_blocking(move || {
        let done = work();
        drop(slot);
        done
    })
    .await
    .map_err(|e| crate::Error::internal(e).into())
}

async fn hash_password(hashing: &Arc<HashSlots>, address: &ClientAddress, password: Password) -> ApiResult<String> {
    argon2_work(hashing, address, move || {
        Argon2::default()
            .hash_password(password.expose().as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))
    })
    .await?
    .map_err(ApiError::from)
}

/// Checks a password against a stored hash; with no hash it still does the work, so a wrong
/// e-mail takes as long as a wrong password.
async fn verify_password(
    hashing: &Arc<HashSlots>,
    address: &ClientAddress,
    password: String,
    stored: Option<String>,
) -> ApiResult<bool> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    argon2_work(hashing, address, move || {
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
              (status = 409, description = "`email_taken`"),
              (status = 503, description = "`unavailable`: too many sign-ins at once from this address or in all; see `Retry-After`")))]
pub async fn register(
    State(app): State<App>,
    address: ClientAddress,
    Json(body): Json<RegisterBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let email = Email::parse(&body.email)?;
    let display_name = DisplayName::parse(&body.display_name)?;
    let password = Password::parse(&body.password)?;
    let hash = hash_password(&app.hashing, &address, password).await?;
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
    responses((status = 200, description = "`{token, user}`"), (status = 401, description = "`invalid_credentials`"),
              (status = 429, description = "`rate_limited`: too many wrong passwords for the account or address"),
              (status = 503, description = "`unavailable`: too many sign-ins at once; see `Retry-After`")))]
pub async fn login(
    State(app): State<App>,
    address: ClientAddress,
    Json(body): Json<LoginBody>,
) -> ApiResult<Json<Value>> {
    let throttles = login_throttles(&app, body.email.trim(), &address);
    refuse_when_throttled(&app, &throttles).await?;
    let row = users::by_email(&app.db, body.email.trim()).await?;
    let stored = row.as_ref().map(|r| r.password_hash.clone());
    if body.password.len() > 1024 || !verify_password(&app.hashing, &address, body.password, stored).await? {
        note_failure(&app, &throttles).await;
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", "wrong e-mail or password"));
    }
    let user = User::from(row.expect("verified users exist"));
    let token = start_session(&app, &user).await?;
    Ok(Json(json!({ "token": token, "user": user })))
}

/// Wrong passwords are counted per account and per client address over a sliding minute.
const LOGIN_WINDOW: Duration = Duration::from_secs(60);

/// Where a request came from, for the login throttle and the Argon2 queue: the socket's peer
/// (`mathia-local`), or the source address API Gateway saw (Lambda); None when neither is known.
pub struct ClientAddress(Option<String>);

impl ClientAddress {
    pub fn ip(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() {
            return Ok(Self(Some(peer.ip().to_string())));
        }
        Ok(Self(match parts.extensions.get::<RequestContext>() {
            Some(RequestContext::ApiGatewayV2(context)) => context.http.source_ip.clone(),
            Some(RequestContext::ApiGatewayV1(context)) => context.identity.source_ip.clone(),
            _ => None,
        }))
    }
}

/// The throttles a login counts against: `(Redis subject, failures allowed per minute)`. The
/// account is named by a hash of its lower-cased e-mail, so keys carry no address.
fn login_throttles(app: &App, email: &str, address: &ClientAddress) -> Vec<(String, u32)> {
    let mut throttles =
        vec![(format!("login:acct:{}", hash_hex(&email.to_lowercase())), app.config.login_failures_per_account)];
    if let ClientAddress(Some(ip)) = address {
        throttles.push((format!("login:addr:{ip}"), app.config.login_failures_per_address));
    }
    throttles
}

/// 429 `rate_limited` (with `Retry-After`) when the account or the address had too many wrong
/// passwords in the last minute — even for the right password, or guessing would go on until
/// it succeeds. Without Redis, logins are not throttled (the Argon2 queue still bounds them).
async fn refuse_when_throttled(app: &App, throttles: &[(String, u32)]) -> ApiResult<()> {
    let now_ms = app.clock.now().timestamp_millis();
    for (subject, limit) in throttles {
        match app.redis.throttled(subject, now_ms, LOGIN_WINDOW, *limit).await {
            Ok(RateDecision::Allowed) => {}
            Ok(RateDecision::Limited { retry_after_ms }) => {
                tracing::warn!(throttle = subject.split(':').nth(1), "login throttled");
                return Err(crate::Error::RateLimited {
                    retry_after: Duration::from_millis(retry_after_ms),
                    message: "too many wrong passwords; wait a minute and try again".into(),
                }
                .into());
            }
            Err(e) => tracing::warn!(error = %e, "login throttle skipped"),
        }
    }
    Ok(())
}

async fn note_failure(app: &App, throttles: &[(String, u32)]) {
    let now_ms = app.clock.now().timestamp_millis();
    for (subject, _) in throttles {
        if let Err(e) = app.redis.note_failure(subject, now_ms, LOGIN_WINDOW).await {
            tracing::warn!(error = %e, "login failure not counted");
        }
    }
}

#[utoipa::path(post, path = "/api/auth/logout", tag = "auth",
    responses((status = 204, description = "the token stops working")))]
pub async fn logout(State(app): State<App>, auth: AuthUser) -> ApiResult<StatusCode> {
    let session = hash_hex(&auth.token);
    // First, so a ticket fetched with the session — even one fetched while this runs — is
    // refused at the handshake, which reads only Redis. With Redis down the session is revoked
    // all the same: a client drops its token whatever the answer, so a logout must not leave the
    // session live.
    mark_session_ended(&app, &session).await;
    users::revoke_session(&app.db, &auth.token).await?;
    sessions::revoked(&app, &auth.token);
    // The session's sockets end with it.
    end_session(&app, auth.user.id, &session).await;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/ws-ticket`: a one-time ticket to open the WebSocket with, valid for 60 s (less when
/// the session ends sooner). It carries the user, the session and the display name, so the
/// handshake reads no database: `mathia-local` keeps it in memory, the functions in Redis
/// (`realtime::issue_ticket`).
#[utoipa::path(post, path = "/api/ws-ticket", tag = "realtime",
    responses((status = 200, description = "`{ticket, expires_in_s}`: one-time, 60 s or until the session ends"),
              (status = 429, description = "`too_many_sockets`: the person has `MATHIA_SOCKETS_PER_PERSON` sockets open; see `Retry-After`"),
              (status = 503, description = "Redis is down, where tickets are kept there")))]
pub async fn ws_ticket(State(app): State<App>, auth: AuthUser) -> ApiResult<Json<Value>> {
    let session_left = (auth.session_expires_at - app.clock.now()).to_std().unwrap_or_default();
    let ttl = app.config.ticket_ttl.min(session_left);
    if ttl.is_zero() {
        return Err(ApiError::session_ended());
    }
    // The handshake enforces the bound; refusing here too tells the client why (a browser
    // cannot read a refused handshake's status).
    if sockets_open(&app, auth.user.id).await.is_some_and(|open| open >= app.config.sockets_per_person) {
        return Err(ApiError::too_many_sockets());
    }
    let ticket = random_token();
    let carried =
        SocketTicket { user_id: auth.user.id, session: hash_hex(&auth.token), display_name: auth.user.display_name };
    issue_ticket(&app, hash_hex(&ticket), carried, ttl).await?;
    Ok(Json(json!({ "ticket": ticket, "expires_in_s": ttl.as_secs_f64().ceil() as u64 })))
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
        let hashing = Arc::new(HashSlots::new(2, 16, 128));
        let at_once = hashing.at_once();
        let jobs = (0..4 * at_once + 2).map(|i| {
            let (running, most, hashing) = (running.clone(), most.clone(), hashing.clone());
            let address = ClientAddress(Some(format!("192.0.2.{}", i % 3)));
            tokio::spawn(async move {
                argon2_work(&hashing, &address, move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(50));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            })
        });
        for job in futures::future::join_all(jobs).await {
            job.unwrap().unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), at_once, "more ran at once than allowed, or never that many");
    }

    /// A request that goes away mid-hash (the client hung up) does not free its slot before the
    /// hash ends: otherwise a client hanging up in a loop would run more hashes than cores.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hash_keeps_its_slot_until_it_ends_even_when_its_request_is_gone() {
        let hashing = Arc::new(HashSlots::new(1, 8, 64));
        let (started_tx, started) = std::sync::mpsc::channel();
        let (finish, finish_rx) = std::sync::mpsc::channel::<()>();
        let gone = tokio::spawn({
            let hashing = hashing.clone();
            async move {
                argon2_work(&hashing, &ClientAddress(None), move || {
                    started_tx.send(()).unwrap();
                    finish_rx.recv().unwrap();
                })
                .await
            }
        });
        tokio::task::spawn_blocking(move || started.recv().unwrap()).await.unwrap();
        gone.abort();
        assert!(gone.await.unwrap_err().is_cancelled());
        let next = tokio::spawn({
            let hashing = hashing.clone();
            async move { argon2_work(&hashing, &ClientAddress(None), || ()).await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!next.is_finished(), "another hash ran while the first still held the only slot");
        finish.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), next).await.unwrap().unwrap().unwrap();
    }
}
