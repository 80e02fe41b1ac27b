//! Extractors whose rejections speak the protocol's error shape, and the signed-in user.

use axum::{
    extract::{FromRequest, FromRequestParts, Request},
    http::{header, request::Parts},
};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::ApiError;
use crate::{
    app::App,
    domain::User,
    protocol::{NUL_REFUSED, has_nul},
    sessions,
};

/// A JSON body. Text holding NUL characters is refused here, once for every endpoint:
/// Postgres cannot store them, and no person types them.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(value) = axum::Json::<Value>::from_request(req, state).await?;
        if has_nul(&value) {
            return Err(ApiError::bad_request(NUL_REFUSED));
        }
        serde_json::from_value(value)
            .map(Json)
            .map_err(|e| ApiError::bad_request(format!("Failed to deserialize the JSON body: {e}")))
    }
}

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// A body read whole, as bytes (a body too slow or too large is refused in the protocol's shape).
pub struct Bytes(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for Bytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Ok(Self(axum::body::Bytes::from_request(req, state).await?))
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
    /// When the session ends (a socket ticket fetched with it does not outlive it).
    pub session_expires_at: DateTime<Utc>,
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
        let session = sessions::live(app, token).await?.ok_or_else(ApiError::session_ended)?;
        Ok(Self {
            user: session.user,
            token: token.to_owned(),
            onboarded: session.onboarded,
            session_expires_at: session.expires_at,
        })
    }
}
