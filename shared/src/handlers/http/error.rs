//! `ApiError`: every HTTP failure as `{"error": {"code", "message", "field"?}}` with a fitting
//! status. Unexpected errors are logged with their cause and answered with a bare 500.

use axum::{
    Json,
    extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::{
    adapters::redis::RedisDown,
    domain::Invalid,
    error::{Dependency, Error},
};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<&'static str>,
    pub retry_after_s: Option<u64>,
    /// When a mute ends (`muted`).
    pub until: Option<chrono::DateTime<chrono::Utc>>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), field: None, retry_after_s: None, until: None }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 401 `invalid_token`: the bearer token's session is unknown, expired or logged out.
    pub fn session_ended() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_token", "the session has ended; sign in again")
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn unavailable(what: &str) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", format!("{what} is temporarily unavailable"))
    }

    /// 429 `too_many_sockets`: the person has as many sockets open as one may.
    pub fn too_many_sockets() -> Self {
        Self {
            retry_after_s: Some(10),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_sockets",
                "Mathia is open in too many tabs or devices; close one to connect here",
            )
        }
    }

    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "something went wrong on our side")
    }

    pub fn not_member() -> Self {
        Self::forbidden("not_member", "you are not a member of this room")
    }
}

/// The HTTP edge's translation of a feature's error; the cause of an internal one is logged
/// here and answered with a bare 500.
impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        e.log();
        match e {
            Error::Invalid { field, message } => Self { field, ..Self::bad_request(message) },
            Error::NotFound { code, message } => Self::not_found(code, message),
            Error::Forbidden { code, message } => Self::forbidden(code, message),
            Error::Conflict { code, message } => Self::conflict(code, message),
            Error::RateLimited { retry_after, message } => Self {
                retry_after_s: Some(retry_after.as_secs_f64().ceil().max(1.0) as u64),
                ..Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
            },
            Error::Muted { until, retry_after } => Self {
                retry_after_s: Some(retry_after.as_secs_f64().ceil().max(1.0) as u64),
                until: Some(until),
                ..Self::forbidden("muted", format!("you are muted in this room until {} UTC", until.format("%H:%M")))
            },
            Error::InsufficientFunds { message } => Self::conflict("insufficient_funds", message),
            Error::Unavailable(Dependency::Calendly) => {
                Self::new(StatusCode::BAD_GATEWAY, "calendly_unavailable", "Calendly did not answer; try again shortly")
            }
            Error::Unavailable(dependency) => Self::unavailable(&dependency.to_string()),
            Error::Internal(_) => Self::internal(),
        }
    }
}

/// `?` on what the adapters return: the adapters decide what their failure means.
macro_rules! through_feature_error {
    ($($from:ty),*) => {$(
        impl From<$from> for ApiError {
            fn from(e: $from) -> Self {
                Error::from(e).into()
            }
        }
    )*};
}
through_feature_error!(
    Invalid,
    sqlx::Error,
    RedisDown,
    anyhow::Error,
    crate::keyring::KeyringError,
    crate::ports::StoreError
);

/// A request body that arrived too slowly: the server that reads it ends it with this error
/// (in `mathia-local`, a body slower on average than its minimum rate once its grace is over).
#[derive(Debug, thiserror::Error)]
#[error("the request body arrived too slowly")]
pub struct BodyTooSlow;

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::MissingJsonContentType(_) => {
                Self::bad_request("send JSON with Content-Type: application/json")
            }
            JsonRejection::BytesRejection(r) => r.into(),
            other => Self::bad_request(other.body_text()),
        }
    }
}

/// A body that could not be read whole: too slow (408 `request_timeout`), or too large (413).
impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> Self {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&r);
        while let Some(e) = cause {
            if e.is::<BodyTooSlow>() {
                return Self::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "request_timeout",
                    "the request body arrived too slowly; send it again",
                );
            }
            cause = e.source();
        }
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", "the request body is too large")
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Self::bad_request(r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::bad_request(r.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(field) = self.field {
            error["field"] = json!(field);
        }
        if let Some(until) = self.until {
            error["until"] = json!(until);
        }
        let mut response = (self.status, Json(json!({ "error": error }))).into_response();
        if let Some(s) = self.retry_after_s {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
