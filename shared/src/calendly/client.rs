//! Calendly API v2 over reqwest (base URL configurable). Errors are the ones people hit, each
//! with a plain answer; tokens never reach a log.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

#[derive(Debug, Clone, thiserror::Error)]
pub enum CalendlyError {
    #[error("Calendly did not accept the token (it was revoked or has expired); please reconnect Calendly.")]
    Unauthorized,
    #[error("Your Calendly plan does not allow that (Calendly answered 403).")]
    Forbidden,
    #[error("Calendly is rate limiting us; try again in {0} seconds.")]
    RateLimited(u64),
    #[error("Calendly is not answering right now; please try again later.")]
    Down,
    #[error("Calendly answered something unexpected ({0}).")]
    Unexpected(String),
    /// Mathia's own side failed (storing the account, …).
    #[error(transparent)]
    Ours(#[from] crate::error::Error),
}

/// What a Calendly failure means to whoever asked Mathia.
impl From<CalendlyError> for crate::error::Error {
    fn from(e: CalendlyError) -> Self {
        match e {
            CalendlyError::Unauthorized => Self::invalid_field("personal_access_token", e.to_string()),
            CalendlyError::Forbidden => Self::forbidden("calendly_forbidden", e.to_string()),
            CalendlyError::RateLimited(s) => {
                Self::RateLimited { retry_after: Duration::from_secs(s), message: e.to_string() }
            }
            CalendlyError::Down | CalendlyError::Unexpected(_) => {
                tracing::warn!(error = %e, "Calendly failed");
                Self::Unavailable(crate::error::Dependency::Calendly)
            }
            CalendlyError::Ours(e) => e,
        }
    }
}

#[derive(Clone)]
pub struct Calendly {
    http: reqwest::Client,
    base: String,
}

fn check(status: reqwest::StatusCode, headers: &reqwest::header::HeaderMap) -> Result<(), CalendlyError> {
    match status.as_u16() {
        200..=299 => Ok(()),
        401 => Err(CalendlyError::Unauthorized),
        403 => Err(CalendlyError::Forbidden),
        429 => Err(CalendlyError::RateLimited(
            headers.get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(60),
        )),
        500..=599 => Err(CalendlyError::Down),
        other => Err(CalendlyError::Unexpected(format!("HTTP {other}"))),
    }
}

impl Calendly {
    pub fn new(base: &str) -> Self {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(15)).build().expect("an HTTP client");
        Self { http, base: base.trim_end_matches('/').to_owned() }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Value, CalendlyError> {
        let res = req.send().await.map_err(|_| CalendlyError::Down)?;
        check(res.status(), res.headers())?;
        res.json().await.map_err(|e| CalendlyError::Unexpected(e.without_url().to_string()))
    }

    pub async fn get(&self, token: &str, path: &str, query: &[(&str, String)]) -> Result<Value, CalendlyError> {
        self.send(self.http.get(format!("{}{path}", self.base)).bearer_auth(token).query(query)).await
    }

    pub async fn post(&self, token: &str, path: &str, body: Value) -> Result<Value, CalendlyError> {
        self.send(self.http.post(format!("{}{path}", self.base)).bearer_auth(token).json(&body)).await
    }

    /// `GET /users/me` → the `resource`.
    pub async fn me(&self, token: &str) -> Result<Value, CalendlyError> {
        Ok(self.get(token, "/users/me", &[]).await?["resource"].clone())
    }

    pub async fn scheduled_events(
        &self,
        token: &str,
        user: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Value>, CalendlyError> {
        let q = [
            ("user", user.to_owned()),
            ("min_start_time", from.to_rfc3339()),
            ("max_start_time", to.to_rfc3339()),
            ("status", "active".to_owned()),
            ("sort", "start_time:asc".to_owned()),
            ("count", "20".to_owned()),
        ];
        Ok(self.get(token, "/scheduled_events", &q).await?["collection"].as_array().cloned().unwrap_or_default())
    }

    pub async fn busy_times(
        &self,
        token: &str,
        user: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Value>, CalendlyError> {
        let q = [("user", user.to_owned()), ("start_time", from.to_rfc3339()), ("end_time", to.to_rfc3339())];
        Ok(self.get(token, "/user_busy_times", &q).await?["collection"].as_array().cloned().unwrap_or_default())
    }

    pub async fn event_types(&self, token: &str, user: &str) -> Result<Vec<Value>, CalendlyError> {
        let q = [("user", user.to_owned()), ("active", "true".to_owned())];
        Ok(self.get(token, "/event_types", &q).await?["collection"].as_array().cloned().unwrap_or_default())
    }

    pub async fn available_times(
        &self,
        token: &str,
        event_type: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Value>, CalendlyError> {
        let q =
            [("event_type", event_type.to_owned()), ("start_time", from.to_rfc3339()), ("end_time", to.to_rfc3339())];
        Ok(self.get(token, "/event_type_available_times", &q).await?["collection"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// A single-use scheduling link for an event type.
    pub async fn scheduling_link(&self, token: &str, event_type: &str) -> Result<String, CalendlyError> {
        let body = json!({ "max_event_count": 1, "owner": event_type, "owner_type": "EventType" });
        let res = self.post(token, "/scheduling_links", body).await?;
        res["resource"]["booking_url"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| CalendlyError::Unexpected("no booking_url".into()))
    }

    /// Books directly (the Scheduling API), where the plan allows it.
    pub async fn book(
        &self,
        token: &str,
        event_type: &str,
        start: &str,
        email: &str,
        tz: &str,
    ) -> Result<Value, CalendlyError> {
        let name = email.split('@').next().unwrap_or(email);
        let body = json!({ "event_type": event_type, "start_time": start, "invitee": { "email": email, "name": name, "timezone": tz } });
        Ok(self.post(token, "/invitees", body).await?["resource"].clone())
    }

    /// The OAuth token endpoint (authorization code or refresh).
    pub async fn token(&self, auth_base: &str, form: &[(&str, &str)]) -> Result<Value, CalendlyError> {
        let url = format!("{}/oauth/token", auth_base.trim_end_matches('/'));
        let res = self.http.post(url).form(form).send().await.map_err(|_| CalendlyError::Down)?;
        if res.status().as_u16() == 400 || res.status().as_u16() == 401 {
            return Err(CalendlyError::Unauthorized);
        }
        check(res.status(), res.headers())?;
        res.json().await.map_err(|e| CalendlyError::Unexpected(e.without_url().to_string()))
    }
}
