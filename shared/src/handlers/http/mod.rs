//! The HTTP API (PROTOCOL.md) as one axum `Router`: served by `lambda_http::run` on Lambda and
//! by `axum::serve` in `mathia-local` — the same router either way.

mod auth;
pub mod error;
pub mod extract;
mod health;
mod rooms;

use axum::{
    Router,
    routing::{get, post},
};

pub use auth::random_token;
use error::ApiError;

use crate::app::App;

pub fn router(app: App) -> Router {
    Router::new()
        .route("/api/auth/register", post(auth::register))
        .route("/api/auth/login", post(auth::login))
        .route("/api/auth/logout", post(auth::logout))
        .route("/api/me", get(auth::me))
        .route("/api/ws-ticket", post(auth::ws_ticket))
        .route("/api/rooms", get(rooms::list).post(rooms::create))
        .route("/api/rooms/{id}/join", post(rooms::join))
        .route(
            "/api/rooms/{id}/leave",
            post(rooms::leave).delete(rooms::leave),
        )
        .route("/api/rooms/{id}/messages", get(rooms::history))
        .route("/api/rooms/{id}/invites", post(rooms::create_invite))
        .route("/api/invites/{code}/accept", post(rooms::accept_invite))
        .route("/healthz", get(health::healthz))
        .route(
            "/api/{*rest}",
            get(unknown).post(unknown).put(unknown).delete(unknown),
        )
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(app)
}

async fn unknown() -> ApiError {
    ApiError::not_found("not_found", "no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "that method is not allowed here",
    )
}
