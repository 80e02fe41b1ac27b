//! The site, as the deployed CloudFront distribution serves it: `static/` by default, and the
//! HTTP API (`/api/*`, plus `/healthz`) through API Gateway's HTTP API — each request an event
//! of payload format 2.0 handed to the `http-api` function. The WebSocket is on another origin.
//!
//! `/_emulator/invocations` and `/_emulator/stats` tell a test or a benchmark who served what;
//! `POST /_emulator/schedule` fires the scheduler's rule now.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Json, Router,
    body::{Body, Bytes},
    extract::{ConnectInfo, DefaultBodyLimit, OriginalUri, State},
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode},
    response::{IntoResponse, Response},
    routing::{any, get, post},
};
use base64::Engine;
use chrono::Utc;
use serde_json::{Value, json};
use tower_http::services::{ServeDir, ServeFile};

use super::{Emulator, runtime::InvokeError};

/// API Gateway's HTTP API payload limit.
const MAX_BODY: usize = 10 * 1024 * 1024;

pub fn router(emulator: Arc<Emulator>) -> Router {
    let static_dir = emulator.static_dir.clone();
    let files = ServeDir::new(&static_dir).fallback(ServeFile::new(static_dir.join("index.html")));
    Router::new()
        .route("/_emulator/invocations", get(invocations))
        .route("/_emulator/stats", get(stats))
        .route("/_emulator/schedule", post(schedule))
        .route("/api", any(http_api))
        .route("/api/{*rest}", any(http_api))
        .route("/healthz", any(http_api))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(emulator)
        .fallback_service(files)
}

async fn invocations(State(emu): State<Arc<Emulator>>) -> Json<Value> {
    let counts: serde_json::Map<String, Value> =
        emu.functions.iter().map(|(name, f)| ((*name).to_owned(), json!(f.stats().invocations))).collect();
    Json(Value::Object(counts))
}

async fn stats(State(emu): State<Arc<Emulator>>) -> Json<Value> {
    let functions: serde_json::Map<String, Value> =
        emu.functions.iter().map(|(name, f)| ((*name).to_owned(), json!(f.stats()))).collect();
    let management = emu.sockets.stats.lock().expect("stats lock").clone();
    Json(json!({
        "functions": functions,
        "management_api": management,
        "aws_calls": emu.aws_calls.calls(),
        "open_connections": emu.sockets.count(),
    }))
}

/// The scheduler's rule, fired now: 200 with what the tick did (`TickReport`), 502 when the
/// function failed.
async fn schedule(State(emu): State<Arc<Emulator>>) -> Response {
    match super::sources::fire_schedule(&emu).await {
        Ok(report) => ([(axum::http::header::CONTENT_TYPE, "application/json")], report).into_response(),
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

/// One HTTP request → one `http-api` invocation (payload format 2.0) → the response it returns.
async fn http_api(
    State(emu): State<Arc<Emulator>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = Utc::now();
    let mut header_json = serde_json::Map::new();
    let mut cookies = Vec::new();
    for (name, value) in &headers {
        let Ok(value) = value.to_str() else { continue };
        if name == "cookie" {
            cookies.extend(value.split(';').map(|c| json!(c.trim())));
            continue;
        }
        // HTTP APIs join repeated headers with commas.
        header_json
            .entry(name.as_str().to_owned())
            .and_modify(|v| *v = json!(format!("{},{value}", v.as_str().unwrap_or(""))))
            .or_insert_with(|| json!(value));
    }
    let raw_query = uri.query().unwrap_or("");
    let mut query = serde_json::Map::new();
    for (k, v) in form_urlencoded::parse(raw_query.as_bytes()) {
        query
            .entry(k.to_string())
            .and_modify(|old| *old = json!(format!("{},{v}", old.as_str().unwrap_or(""))))
            .or_insert_with(|| json!(v));
    }
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("localhost").to_owned();
    let (body_text, is_base64) = match std::str::from_utf8(&body) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => (base64::engine::general_purpose::STANDARD.encode(&body), true),
    };
    let mut event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": uri.path(),
        "rawQueryString": raw_query,
        "headers": header_json,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": emu.api_id,
            "domainName": host,
            "domainPrefix": host.split('.').next().unwrap_or(&host),
            "http": {
                "method": method.as_str(),
                "path": uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": peer.ip().to_string(),
                "userAgent": headers.get("user-agent").and_then(|h| h.to_str().ok()).unwrap_or(""),
            },
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": "$default",
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "timeEpoch": now.timestamp_millis(),
        },
        "isBase64Encoded": is_base64,
    });
    if !cookies.is_empty() {
        event["cookies"] = Value::Array(cookies);
    }
    if !query.is_empty() {
        event["queryStringParameters"] = Value::Object(query);
    }
    if !body.is_empty() {
        event["body"] = json!(body_text);
    }
    match emu.invoke("http-api", &event).await {
        Ok(answer) => proxy_response(&answer),
        Err(InvokeError::Timeout(_)) => message(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable"),
        Err(_) => message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
    }
}

fn message(status: StatusCode, text: &str) -> Response {
    (status, Json(json!({ "message": text }))).into_response()
}

/// A payload 2.0 response (`statusCode`, `headers`, `multiValueHeaders`, `cookies`, `body`,
/// `isBase64Encoded`) as an HTTP response; anything else is API Gateway's 500.
fn proxy_response(answer: &[u8]) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(answer) else {
        return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    let status = v
        .get("statusCode")
        .and_then(Value::as_u64)
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = match v.get("body").and_then(Value::as_str) {
        None => Vec::new(),
        Some(text) if v.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) => {
            base64::engine::general_purpose::STANDARD.decode(text).unwrap_or_default()
        }
        Some(text) => text.as_bytes().to_vec(),
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let out = response.headers_mut();
    let mut put = |name: &str, value: &str| {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::from_str(value)) {
            out.append(name, value);
        }
    };
    if let Some(headers) = v.get("headers").and_then(Value::as_object) {
        for (name, value) in headers {
            if let Some(value) = value.as_str() {
                put(name, value);
            }
        }
    }
    if let Some(headers) = v.get("multiValueHeaders").and_then(Value::as_object) {
        for (name, values) in headers {
            if v.get("headers").and_then(|h| h.get(name)).is_some() {
                continue;
            }
            for value in values.as_array().into_iter().flatten().filter_map(Value::as_str) {
                put(name, value);
            }
        }
    }
    for cookie in v.get("cookies").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
        put("set-cookie", cookie);
    }
    response
}
