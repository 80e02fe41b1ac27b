//! Extractors whose rejections speak the protocol's error shape, and the signed-in user.

use axum::{
    extract::{FromRequest, FromRequestParts},
    http::{header, request::Parts},
};

use super::error::ApiError;
use crate::{adapters::postgres::users, app::App, domain::User};

#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// The user behind a valid `Authorization: Bearer <token>`.
pub struct AuthUser {
    pub user: User,
    pub token: String,
    pub onboarded: bool,
}

impl AuthUser {
    /// Chatting (rooms, invites) waits until onboarding is done.
    pub fn require_onboarded(&self) -> Result<(), ApiError> {
        if self.onboarded {
            Ok(())
        } else {
            Err(ApiError::forbidden("onboarding_incomplete", "finish onboarding (profile, goals, workspace) first"))
        }
    }
}

impl FromRequestParts<App> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("sign in first (no Authorization header)"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 256)
            .ok_or_else(|| ApiError::unauthorized("the Authorization header must be `Bearer <token>`"))?;
        let (user, onboarded) = users::session_user(&app.db, token, app.clock.now()).await?.ok_or_else(|| {
            ApiError::new(axum::http::StatusCode::UNAUTHORIZED, "invalid_token", "the session has ended; sign in again")
        })?;
        Ok(Self { user, token: token.to_owned(), onboarded })
    }
}
