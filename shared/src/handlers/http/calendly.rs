//! Connecting Calendly and the panel's data.

use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    error::{ApiError, ApiResult},
    extract::{AuthUser, Json, Query},
};
use crate::{
    adapters::postgres::calendly as store,
    app::App,
    calendly::{self, CalendlyError},
    domain::Invalid,
    error::Error,
};

fn calendly_error(e: CalendlyError) -> ApiError {
    Error::from(e).into()
}

fn status_of(account: Option<&store::Account>) -> Value {
    match account {
        Some(a) => json!({
            "connected": true,
            "kind": a.kind,
            "user": { "name": a.name, "email": a.email },
            "scheduling_url": a.scheduling_url,
        }),
        None => json!({ "connected": false }),
    }
}

#[utoipa::path(get, path = "/api/calendly/status", tag = "calendly",
    responses((status = 200, description = "`{connected, user?, scheduling_url?}`")))]
pub async fn status(State(app): State<App>, auth: AuthUser) -> ApiResult<Json<Value>> {
    let account = store::get(&app.db, &app.keyring, auth.user.id).await?;
    let mut answer = status_of(account.as_ref());
    answer["oauth_available"] = json!(app.config.calendly_oauth.is_some());
    Ok(Json(answer))
}

#[derive(Deserialize)]
pub struct ConnectBody {
    personal_access_token: String,
}

#[utoipa::path(post, path = "/api/calendly/connect", tag = "calendly",
    responses((status = 200, description = "connected: the status"), (status = 400, description = "Calendly refused the token")))]
pub async fn connect(State(app): State<App>, auth: AuthUser, Json(body): Json<ConnectBody>) -> ApiResult<Json<Value>> {
    let token = body.personal_access_token.trim();
    if token.is_empty() || token.len() > 4096 {
        return Err(Invalid::new(
            "personal_access_token",
            "paste the token from Calendly → Integrations → API & Webhooks",
        )
        .into());
    }
    let account = calendly::connect_with_token(&app, auth.user.id, token).await.map_err(calendly_error)?;
    tracing::info!(user_id = %auth.user.id, "calendly connected by token");
    Ok(Json(status_of(Some(&account))))
}

#[utoipa::path(delete, path = "/api/calendly", tag = "calendly", responses((status = 204, description = "disconnected")))]
pub async fn disconnect(State(app): State<App>, auth: AuthUser) -> ApiResult<StatusCode> {
    store::delete(&app.db, auth.user.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/calendly/events", tag = "calendly",
    responses((status = 200, description = "upcoming events of the next 7 days"), (status = 409, description = "`calendly_not_connected`")))]
pub async fn events(State(app): State<App>, auth: AuthUser) -> ApiResult<Json<Vec<Value>>> {
    let mut account = calendly::account(&app, auth.user.id)
        .await
        .map_err(calendly_error)?
        .ok_or_else(|| ApiError::conflict("calendly_not_connected", "connect Calendly first"))?;
    let events = calendly::upcoming(&app, &mut account, 7).await.map_err(calendly_error)?;
    Ok(Json(
        events
            .iter()
            .map(|e| json!({ "name": e["name"], "start_time": e["start_time"], "end_time": e["end_time"], "location": e["location"] }))
            .collect(),
    ))
}

/// The cookie that binds an OAuth flow to the browser that started it: HttpOnly (no script
/// reads it), SameSite=Lax (sent on Calendly's top-level redirect back, not on cross-site
/// subrequests), only for the OAuth paths, and as long as a state lives.
const OAUTH_COOKIE: &str = "mathia_calendly_oauth";
const OAUTH_COOKIE_PATH: &str = "/api/calendly/oauth";

fn oauth_cookie(app: &App, value: &str, max_age_s: u32) -> HeaderValue {
    let secure = app.config.calendly_oauth.as_ref().is_some_and(|(_, _, redirect)| redirect.starts_with("https://"));
    let cookie = format!(
        "{OAUTH_COOKIE}={value}; HttpOnly; SameSite=Lax; Path={OAUTH_COOKIE_PATH}; Max-Age={max_age_s}{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&cookie).expect("a URL-safe token makes a valid header")
}

/// The OAuth cookie's value, from any `Cookie` header of the request.
fn browser_nonce(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == OAUTH_COOKIE && !value.is_empty())
        .map(|(_, value)| value.to_owned())
}

#[utoipa::path(get, path = "/api/calendly/oauth/start", tag = "calendly",
    responses((status = 200, description = "`{url}` when asked for JSON; sets the flow's HttpOnly cookie"),
              (status = 302, description = "to Calendly's consent page"),
              (status = 404, description = "OAuth is not configured")))]
pub async fn oauth_start(State(app): State<App>, auth: AuthUser, headers: HeaderMap) -> ApiResult<Response> {
    let start = calendly::oauth_start(&app, auth.user.id).await?.ok_or_else(|| {
        ApiError::not_found("oauth_not_configured", "Calendly OAuth is not configured; paste a personal access token")
    })?;
    let wants_json =
        headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("application/json"));
    let mut res = if wants_json {
        axum::Json(json!({ "url": start.url })).into_response()
    } else {
        Redirect::to(&start.url).into_response()
    };
    res.headers_mut().append(header::SET_COOKIE, oauth_cookie(&app, &start.browser_nonce, 600));
    Ok(res)
}

#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// Calendly sends the browser here; the `state` says who started the flow, and the cookie that
/// it is the same browser.
#[utoipa::path(get, path = "/api/calendly/oauth/callback", tag = "calendly", security(()),
    responses((status = 302, description = "back to the app, `?calendly=connected` or `?calendly=error`"),
              (status = 400, description = "unknown, used or expired state, or another browser's")))]
pub async fn oauth_callback(State(app): State<App>, headers: HeaderMap, Query(q): Query<Callback>) -> Response {
    let mut res = match (q.code, q.state, q.error) {
        (Some(code), Some(state), None) => {
            match calendly::oauth_callback(&app, &code, &state, browser_nonce(&headers).as_deref()).await {
                Ok(user_id) => {
                    tracing::info!(%user_id, "calendly connected by OAuth");
                    Redirect::to("/?calendly=connected").into_response()
                }
                // Refused without spending the state: the cookie stays for the real callback.
                Err(e @ (Error::Invalid { .. } | Error::NotFound { .. })) => return ApiError::from(e).into_response(),
                Err(e) => {
                    tracing::warn!(error = %e, "calendly OAuth failed");
                    Redirect::to("/?calendly=error").into_response()
                }
            }
        }
        _ => Redirect::to("/?calendly=denied").into_response(),
    };
    // The flow is over: the browser forgets its nonce.
    res.headers_mut().append(header::SET_COOKIE, oauth_cookie(&app, "", 0));
    res
}

#[derive(Deserialize)]
pub struct FreeTimesQuery {
    days: Option<i64>,
    minutes: Option<i64>,
}

#[utoipa::path(get, path = "/api/rooms/{id}/free-times", tag = "calendly",
    params(("id" = String, Path, description = "room id"),
           ("days" = Option<i64>, Query, description = "how many days ahead, 1 to 7 (default 3)"),
           ("minutes" = Option<i64>, Query, description = "slot length: 15, 30, 45, 60, 90 or 120 (default 30)")),
    responses((status = 200, description = "`{timezone, minutes, from, to, slots: [{start, end}], members: [{id, display_name, calendly: connected|not_connected|unavailable}]}`"),
              (status = 400, description = "`bad_request` with `field` `days` or `minutes`"),
              (status = 403, description = "`not_member`"),
              (status = 409, description = "`calendly_not_connected`: connect Calendly first"),
              (status = 429, description = "`rate_limited` (the per-person limit)")))]
pub async fn free_times(
    State(app): State<App>,
    auth: AuthUser,
    super::extract::Path(room_id): super::extract::Path<uuid::Uuid>,
    Query(q): Query<FreeTimesQuery>,
) -> ApiResult<Json<calendly::free::FreeTimes>> {
    crate::access::require_member(&app, room_id, auth.user.id).await?;
    crate::limits::rate_limit(&app, auth.user.id, app.clock.now()).await?;
    let found =
        calendly::free::free_times(&app, room_id, auth.user.id, q.days.unwrap_or(3), q.minutes.unwrap_or(30)).await?;
    Ok(Json(found))
}
