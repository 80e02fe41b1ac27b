//! Calendly: connect once (a personal access token, or OAuth when the app is configured), then
//! ask the assistant to check the calendar, find a free slot, or schedule a meeting. Access
//! tokens are refreshed before they expire, and on a 401; the rotated refresh token is stored
//! each time. Tokens are sealed at rest and never logged.

pub mod client;
pub mod free;
pub mod tools;

use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde_json::Value;
use uuid::Uuid;

pub use client::{Calendly, CalendlyError};

use crate::{
    adapters::postgres::{
        calendly::{self as store, Account},
        onboarding,
    },
    ai::{
        connectors::{Answer, Connector, Ctx},
        router::Intent,
    },
    app::App,
    error::Error,
};

pub fn client(app: &App) -> Calendly {
    Calendly::new(&app.config.calendly_base_url)
}

/// Connects with a personal access token, validated with `GET /users/me`.
pub async fn connect_with_token(app: &App, user_id: Uuid, token: &str) -> Result<Account, CalendlyError> {
    let me = client(app).me(token).await?;
    let account = account_from(user_id, "token", &me, token.to_owned(), None, None)?;
    store::save(&app.db, &app.keyring, &account).await.map_err(Error::from)?;
    Ok(account)
}

fn account_from(
    user_id: Uuid,
    kind: &str,
    me: &Value,
    access_token: String,
    refresh_token: Option<String>,
    expires_at: Option<DateTime<Utc>>,
) -> Result<Account, CalendlyError> {
    let s = |k: &str| me[k].as_str().map(str::to_owned);
    Ok(Account {
        user_id,
        kind: kind.into(),
        user_uri: s("uri").ok_or_else(|| CalendlyError::Unexpected("no user uri".into()))?,
        name: s("name"),
        email: s("email"),
        scheduling_url: s("scheduling_url"),
        access_token,
        refresh_token,
        expires_at,
    })
}

/// The start of an OAuth flow: where to send the browser, and the nonce that browser must keep
/// (in an HttpOnly cookie) and show again at the callback.
pub struct OAuthStart {
    pub url: String,
    pub browser_nonce: String,
}

/// PKCE's S256 challenge of a verifier (RFC 7636 §4.2).
fn code_challenge(verifier: &str) -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    URL_SAFE_NO_PAD.encode(crate::tokens::hash(verifier))
}

/// Where to send the browser to authorise Mathia, with a fresh single-use `state` bound to the
/// user and to the browser, and a PKCE challenge.
pub async fn oauth_start(app: &App, user_id: Uuid) -> Result<Option<OAuthStart>, sqlx::Error> {
    let Some((client_id, _, redirect)) = &app.config.calendly_oauth else { return Ok(None) };
    let state = crate::tokens::random_token();
    let browser_nonce = crate::tokens::random_token();
    // 43 characters of base64url: within RFC 7636's 43 to 128 unreserved characters.
    let code_verifier = crate::tokens::random_token();
    let new = store::NewState { state: &state, user_id, browser_nonce: &browser_nonce, code_verifier: &code_verifier };
    store::put_state(&app.db, &app.keyring, &new, app.clock.now()).await?;
    let challenge = code_challenge(&code_verifier);
    let url = reqwest::Url::parse_with_params(
        &format!("{}/oauth/authorize", app.config.calendly_auth_url.trim_end_matches('/')),
        &[
            ("client_id", client_id.as_str()),
            ("response_type", "code"),
            ("redirect_uri", redirect.as_str()),
            ("state", state.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    )
    .expect("a valid URL");
    Ok(Some(OAuthStart { url: url.to_string(), browser_nonce }))
}

/// The OAuth callback: spends the state (single use, bound to who started it and to the
/// browser that did, whose nonce is `browser_nonce`), trades the code with its PKCE verifier.
pub async fn oauth_callback(app: &App, code: &str, state: &str, browser_nonce: Option<&str>) -> crate::Result<Uuid> {
    let Some((client_id, secret, redirect)) = &app.config.calendly_oauth else {
        return Err(Error::not_found("oauth_not_configured", "Calendly OAuth is not configured"));
    };
    let refused = || {
        Error::invalid(
            "this sign-in link is invalid, was already used or was started in another browser; start again from Mathia",
        )
    };
    let browser_nonce = browser_nonce.ok_or_else(refused)?;
    let (user_id, code_verifier) =
        store::take_state(&app.db, &app.keyring, state, browser_nonce, app.clock.now()).await?.ok_or_else(refused)?;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect.as_str()),
        ("client_id", client_id.as_str()),
        ("client_secret", secret.as_str()),
        ("code_verifier", code_verifier.as_str()),
    ];
    let api = client(app);
    let tokens = api.token(&app.config.calendly_auth_url, &form).await?;
    let access = tokens["access_token"].as_str().ok_or(CalendlyError::Unexpected("no token".into()))?;
    let me = api.me(access).await?;
    let account = account_from(user_id, "oauth", &me, access.to_owned(), refresh_of(&tokens), expiry_of(app, &tokens))?;
    store::save(&app.db, &app.keyring, &account).await?;
    Ok(user_id)
}

fn refresh_of(tokens: &Value) -> Option<String> {
    tokens["refresh_token"].as_str().map(str::to_owned)
}

fn expiry_of(app: &App, tokens: &Value) -> Option<DateTime<Utc>> {
    tokens["expires_in"].as_i64().map(|s| app.clock.now() + Duration::seconds(s))
}

/// Trades the refresh token for new tokens, storing the rotated refresh token.
async fn refresh(app: &App, account: &mut Account) -> Result<(), CalendlyError> {
    let (Some((client_id, secret, _)), Some(refresh_token)) =
        (&app.config.calendly_oauth, account.refresh_token.clone())
    else {
        return Err(CalendlyError::Unauthorized);
    };
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token.as_str()),
        ("client_id", client_id.as_str()),
        ("client_secret", secret.as_str()),
    ];
    let tokens = client(app).token(&app.config.calendly_auth_url, &form).await?;
    account.access_token = tokens["access_token"].as_str().ok_or(CalendlyError::Unauthorized)?.to_owned();
    account.refresh_token = refresh_of(&tokens).or(Some(refresh_token));
    account.expires_at = expiry_of(app, &tokens);
    store::save(&app.db, &app.keyring, account).await.map_err(Error::from)?;
    tracing::info!(user_id = %account.user_id, "calendly token refreshed");
    Ok(())
}

/// The user's account with a usable access token (refreshed when it is about to expire).
pub async fn account(app: &App, user_id: Uuid) -> Result<Option<Account>, CalendlyError> {
    let Some(mut account) = store::get(&app.db, &app.keyring, user_id).await.map_err(Error::from)? else {
        return Ok(None);
    };
    if account.kind == "oauth" && account.expires_at.is_some_and(|at| at - app.clock.now() < Duration::seconds(60)) {
        refresh(app, &mut account).await?;
    }
    Ok(Some(account))
}

/// Runs a Calendly call; on a 401 with OAuth, refreshes once and tries again.
pub async fn call<T, F, Fut>(app: &App, account: &mut Account, f: F) -> Result<T, CalendlyError>
where
    F: Fn(Calendly, String) -> Fut,
    Fut: std::future::Future<Output = Result<T, CalendlyError>>,
{
    match f(client(app), account.access_token.clone()).await {
        Err(CalendlyError::Unauthorized) if account.kind == "oauth" => {
            refresh(app, account).await?;
            f(client(app), account.access_token.clone()).await
        }
        other => other,
    }
}

/// Upcoming events of the next `days` days.
pub async fn upcoming(app: &App, account: &mut Account, days: i64) -> Result<Vec<Value>, CalendlyError> {
    let (from, to) = (app.clock.now(), app.clock.now() + Duration::days(days));
    let uri = account.user_uri.clone();
    call(app, account, |c, t| {
        let uri = uri.clone();
        async move { c.scheduled_events(&t, &uri, from, to).await }
    })
    .await
}

fn local(at: &str, tz: Tz) -> String {
    DateTime::parse_from_rfc3339(at)
        .map(|d| d.with_timezone(&tz).format("%a %-d %b %H:%M").to_string())
        .unwrap_or_else(|_| at.to_owned())
}

/// A window of time named in a request: "tomorrow afternoon", "tomorrow at 3pm", … (local).
fn window(request: &str, tz: Tz, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let lower = request.to_lowercase();
    let local_now = now.with_timezone(&tz);
    let day =
        if lower.contains("tomorrow") { local_now.date_naive() + Duration::days(1) } else { local_now.date_naive() };
    let at = |h: u32| {
        day.and_hms_opt(h, 0, 0).and_then(|d| d.and_local_timezone(tz).single()).map(|d| d.with_timezone(&Utc))
    };
    let (start, end) = if lower.contains("afternoon") {
        (at(12), at(18))
    } else if lower.contains("morning") {
        (at(8), at(12))
    } else if let Ok(p) = crate::reminders::parse::parse(&format!("remind me to x {}", time_phrase(&lower)), tz, now) {
        (Some(p.due_at), Some(p.due_at + Duration::hours(1)))
    } else if lower.contains("tomorrow") {
        (at(8), at(18))
    } else {
        (Some(now + Duration::minutes(5)), Some(now + Duration::days(7)))
    };
    let start = start.unwrap_or(now).max(now + Duration::minutes(1));
    (start, end.unwrap_or(start + Duration::days(7)).max(start + Duration::minutes(30)))
}

/// The part of a request from its first time word on ("… free tomorrow at 3pm?" → "tomorrow at 3pm").
fn time_phrase(request: &str) -> String {
    let words: Vec<&str> = request.split_whitespace().collect();
    let start =
        words.iter().position(|w| ["tomorrow", "today", "at", "on", "next", "in"].contains(w)).unwrap_or(words.len());
    words[start..].join(" ").trim_end_matches('?').to_owned()
}

fn email_in(request: &str) -> Option<String> {
    request
        .split(|c: char| c.is_whitespace() || c == ',' || c == '?')
        .find(|w| w.contains('@') && w.contains('.') && !w.starts_with('@'))
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_owned())
}

/// What the assistant says when a Calendly request fails: Calendly's own failures in plain
/// words; ours are logged and not described.
fn apology(e: CalendlyError) -> String {
    match e {
        CalendlyError::Ours(e) => {
            e.log();
            "Something went wrong on my side while talking to Calendly; please try again in a moment.".into()
        }
        other => other.to_string(),
    }
}

pub struct CalendlyConnector;

const HOW_TO_CONNECT: &str = "Connect Calendly from the Calendly panel (right-hand side): paste a personal access token \
from Calendly → Integrations → API & Webhooks";

#[async_trait]
impl Connector for CalendlyConnector {
    fn name(&self) -> &'static str {
        "calendly"
    }

    fn intents(&self) -> &'static [Intent] {
        &[Intent::CheckCalendar, Intent::CheckAvailability, Intent::ScheduleMeeting, Intent::CalendlyConnect]
    }

    async fn answer(&self, ctx: &Ctx<'_>) -> crate::Result<Answer> {
        let app = ctx.app;
        let oauth = if app.config.calendly_oauth.is_some() { ", or use “Connect with Calendly”" } else { "" };
        let intent = crate::ai::router::route(ctx.request);
        if intent == Intent::CalendlyConnect {
            return Ok(Answer::Reply(format!("{HOW_TO_CONNECT}{oauth}.")));
        }
        let mut account = match account(app, ctx.asker_id).await {
            Ok(Some(a)) => a,
            Ok(None) => {
                return Ok(Answer::Reply(format!(
                    "Calendly isn't connected for you yet. {HOW_TO_CONNECT}{oauth}; then ask me again."
                )));
            }
            Err(e) => return Ok(Answer::Reply(apology(e))),
        };
        let tz = Tz::from_str(&onboarding::timezone(&app.db, ctx.asker_id).await?).unwrap_or(Tz::UTC);
        let reply = match intent {
            Intent::CheckCalendar => check_calendar(app, &mut account, tz).await,
            Intent::CheckAvailability => availability(app, &mut account, ctx.request, tz).await,
            _ => schedule(app, &mut account, ctx.request, tz).await,
        };
        Ok(Answer::Reply(reply.unwrap_or_else(apology)))
    }
}

async fn check_calendar(app: &App, account: &mut Account, tz: Tz) -> Result<String, CalendlyError> {
    let events = upcoming(app, account, 7).await?;
    if events.is_empty() {
        return Ok("📅 Nothing on your Calendly for the next 7 days.".into());
    }
    let lines: Vec<String> = events
        .iter()
        .map(|e| {
            format!(
                "- {} — {}",
                local(e["start_time"].as_str().unwrap_or(""), tz),
                e["name"].as_str().unwrap_or("event")
            )
        })
        .collect();
    Ok(format!("📅 Your next events ({tz}):\n{}", lines.join("\n")))
}

async fn availability(app: &App, account: &mut Account, request: &str, tz: Tz) -> Result<String, CalendlyError> {
    let (from, to) = window(request, tz, app.clock.now());
    let uri = account.user_uri.clone();
    let busy = call(app, account, |c, t| {
        let uri = uri.clone();
        async move { c.busy_times(&t, &uri, from, to).await }
    })
    .await?;
    let when =
        format!("{} – {}", from.with_timezone(&tz).format("%a %-d %b %H:%M"), to.with_timezone(&tz).format("%H:%M"));
    if busy.is_empty() {
        Ok(format!("✅ You're free {when} ({tz})."))
    } else {
        let slots: Vec<String> = busy
            .iter()
            .map(|b| {
                format!(
                    "{}–{}",
                    local(b["start_time"].as_str().unwrap_or(""), tz),
                    local(b["end_time"].as_str().unwrap_or(""), tz)
                )
            })
            .collect();
        Ok(format!("⛔ You're busy then ({tz}): {}.", slots.join(", ")))
    }
}

async fn schedule(app: &App, account: &mut Account, request: &str, tz: Tz) -> Result<String, CalendlyError> {
    let uri = account.user_uri.clone();
    let types = call(app, account, |c, t| {
        let uri = uri.clone();
        async move { c.event_types(&t, &uri).await }
    })
    .await?;
    if types.is_empty() {
        return Ok("You have no active Calendly event types; create one in Calendly first.".into());
    }
    let lower = request.to_lowercase();
    let chosen = if types.len() == 1 {
        types.first()
    } else {
        types.iter().find(|t| t["name"].as_str().is_some_and(|n| lower.contains(&n.to_lowercase())))
    };
    let Some(event_type) = chosen else {
        let names: Vec<&str> = types.iter().filter_map(|t| t["name"].as_str()).collect();
        return Ok(format!("Which kind of meeting? You have: {}. Ask again naming one.", names.join(", ")));
    };
    let type_uri = event_type["uri"].as_str().unwrap_or_default().to_owned();
    let (from, to) = window(request, tz, app.clock.now());
    let times = call(app, account, |c, t| {
        let type_uri = type_uri.clone();
        async move { c.available_times(&t, &type_uri, from, to).await }
    })
    .await?;
    let open: Vec<&Value> = times.iter().filter(|t| t["status"] == "available").collect();
    if open.is_empty() {
        return Ok(format!(
            "No free slot for “{}” then. Try another day?",
            event_type["name"].as_str().unwrap_or("that meeting")
        ));
    }
    let listed: Vec<String> = open.iter().take(3).map(|t| local(t["start_time"].as_str().unwrap_or(""), tz)).collect();
    if let Some(email) = email_in(request) {
        let start = open[0]["start_time"].as_str().unwrap_or_default().to_owned();
        let (email_c, tz_name) = (email.clone(), tz.name().to_owned());
        let booked = call(app, account, |c, t| {
            let (type_uri, start, email, tz_name) = (type_uri.clone(), start.clone(), email_c.clone(), tz_name.clone());
            async move { c.book(&t, &type_uri, &start, &email, &tz_name).await }
        })
        .await;
        match booked {
            Ok(_) => {
                return Ok(format!(
                    "✅ Booked “{}” with {email} on {} ({tz}).",
                    event_type["name"].as_str().unwrap_or("a meeting"),
                    listed[0]
                ));
            }
            Err(CalendlyError::Forbidden) => {} // the plan cannot book directly: fall back to a link
            Err(e) => return Err(e),
        }
    }
    let link = call(app, account, |c, t| {
        let type_uri = type_uri.clone();
        async move { c.scheduling_link(&t, &type_uri).await }
    })
    .await?;
    Ok(format!("Open times ({tz}): {}. Send this single-use link to book: {link}", listed.join(", ")))
}

#[cfg(test)]
mod tests {
    use chrono::Timelike;

    use super::*;

    #[test]
    fn emails_and_windows_are_found() {
        assert_eq!(
            email_in("schedule a meeting with ana@example.com tomorrow afternoon").as_deref(),
            Some("ana@example.com")
        );
        assert_eq!(email_in("book a call tomorrow"), None);
        let now = DateTime::parse_from_rfc3339("2026-11-25T13:00:00Z").unwrap().with_timezone(&Utc);
        let (from, to) = window("tomorrow afternoon", Tz::UTC, now);
        assert_eq!((from.hour(), to.hour()), (12, 18));
        let (from, _) = window("am i free tomorrow at 3pm?", Tz::UTC, now);
        assert_eq!(from.to_rfc3339(), "2026-11-26T15:00:00+00:00");
    }
}
