//! API Gateway's WebSocket API, played on its own origin: a client opens `/{stage}?…`, and each
//! `$connect`, `$default` and `$disconnect` becomes an event in API Gateway's JSON shape handed
//! to `ws-connect`, `ws-message` and `ws-disconnect`. The functions answer clients through the
//! management API (`/{stage}/@connections/{id}`: POST, GET, DELETE; 410 for a gone
//! connection), which accepts only requests signed with the functions' credentials.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{
        ConnectInfo, OriginalUri, Path, State, WebSocketUpgrade,
        ws::{Message, WebSocket},
    },
    http::{HeaderMap, HeaderValue, Method, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
};
use base64::Engine;
use chrono::{DateTime, Utc};
use futures::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{Emulator, sigv4};

/// API Gateway's largest WebSocket message (128 KiB).
const MAX_MESSAGE: usize = 128 * 1024;

/// What the management API did, for the bench and the tests.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ManagementStats {
    pub post: u64,
    pub get: u64,
    pub delete: u64,
    /// Calls answered 410: the connection was gone.
    pub gone: u64,
    /// Calls refused for their signature.
    pub forbidden: u64,
}

enum Outgoing {
    Frame(Message),
    Close,
}

struct Connection {
    outbox: mpsc::UnboundedSender<Outgoing>,
    /// Told when DeleteConnection lets go of the socket: API Gateway ends it (and runs
    /// `$disconnect`) whether or not the client answers the close.
    deleted: Arc<tokio::sync::Notify>,
    connected_at: DateTime<Utc>,
    last_active: DateTime<Utc>,
    source_ip: String,
    user_agent: String,
}

/// The sockets the emulated API holds.
#[derive(Default)]
pub struct Connections {
    open: Mutex<HashMap<String, Connection>>,
    pub stats: Mutex<ManagementStats>,
}

impl Connections {
    pub fn count(&self) -> usize {
        self.open.lock().expect("connections lock").len()
    }
}

pub fn router(emulator: Arc<Emulator>) -> Router {
    Router::new()
        .route("/{stage}", get(upgrade))
        .route("/{stage}/@connections/{id}", get(management_get).post(management_post).delete(management_delete))
        .with_state(emulator)
}

/// An id shaped like API Gateway's (16 characters of base64, `=` included).
fn connection_id() -> String {
    base64::engine::general_purpose::URL_SAFE.encode(rand::random::<[u8; 11]>())
}

fn request_time(at: DateTime<Utc>) -> String {
    at.format("%d/%b/%Y:%H:%M:%S %z").to_string()
}

impl Emulator {
    fn ws_context(&self, route: &str, event_type: &str, connection: &str, connected_at: DateTime<Utc>) -> Value {
        let now = Utc::now();
        json!({
            "routeKey": route,
            "eventType": event_type,
            "extendedRequestId": uuid::Uuid::new_v4().to_string(),
            "requestTime": request_time(now),
            "messageDirection": "IN",
            "stage": self.stage,
            "connectedAt": connected_at.timestamp_millis(),
            "requestTimeEpoch": now.timestamp_millis(),
            "requestId": uuid::Uuid::new_v4().to_string(),
            "domainName": self.ws_domain,
            "connectionId": connection,
            "apiId": self.api_id,
        })
    }
}

fn header_maps(headers: &HeaderMap) -> (Value, Value) {
    let mut single = serde_json::Map::new();
    let mut multi: serde_json::Map<String, Value> = serde_json::Map::new();
    for (name, value) in headers {
        let Ok(value) = value.to_str() else { continue };
        // API Gateway spells header names as the client sent them; hyper has lowered them.
        let name = name.as_str().to_owned();
        single.insert(name.clone(), json!(value));
        multi.entry(name).or_insert_with(|| json!([])).as_array_mut().expect("an array").push(json!(value));
    }
    (Value::Object(single), Value::Object(multi))
}

fn query_maps(raw: Option<&str>) -> (Value, Value) {
    let mut single = serde_json::Map::new();
    let mut multi: serde_json::Map<String, Value> = serde_json::Map::new();
    for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        single.insert(k.to_string(), json!(v));
        multi.entry(k.to_string()).or_insert_with(|| json!([])).as_array_mut().expect("an array").push(json!(v));
    }
    if single.is_empty() { (Value::Null, Value::Null) } else { (Value::Object(single), Value::Object(multi)) }
}

fn status_of(answer: &[u8]) -> u16 {
    serde_json::from_slice::<Value>(answer)
        .ok()
        .and_then(|v| v.get("statusCode").and_then(Value::as_u64))
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or(200)
}

async fn upgrade(
    State(emu): State<Arc<Emulator>>,
    Path(stage): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if stage != emu.stage {
        return (StatusCode::FORBIDDEN, Json(json!({"message": "Forbidden"}))).into_response();
    }
    let id = connection_id();
    let connected_at = Utc::now();
    let (headers_json, multi_headers) = header_maps(&headers);
    let (query, multi_query) = query_maps(uri.query());
    let mut context = emu.ws_context("$connect", "CONNECT", &id, connected_at);
    let user_agent = headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    context["identity"] = json!({ "sourceIp": peer.ip().to_string(), "userAgent": user_agent });
    let mut event = json!({
        "headers": headers_json,
        "multiValueHeaders": multi_headers,
        "requestContext": context,
        "isBase64Encoded": false,
    });
    if !query.is_null() {
        event["queryStringParameters"] = query;
        event["multiValueQueryStringParameters"] = multi_query;
    }
    match emu.invoke("ws-connect", &event).await {
        Ok(answer) if (200..300).contains(&status_of(&answer)) => {}
        Ok(answer) => {
            let status = StatusCode::from_u16(status_of(&answer)).unwrap_or(StatusCode::FORBIDDEN);
            return (status, Json(json!({"message": "Forbidden"}))).into_response();
        }
        Err(_) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"message": "Internal server error"})))
                .into_response();
        }
    }
    let source_ip = peer.ip().to_string();
    ws.max_message_size(MAX_MESSAGE).on_upgrade(move |socket| run(emu, id, connected_at, source_ip, user_agent, socket))
}

async fn run(
    emu: Arc<Emulator>,
    id: String,
    connected_at: DateTime<Utc>,
    source_ip: String,
    user_agent: String,
    socket: WebSocket,
) {
    let (tx, mut outbox) = mpsc::unbounded_channel();
    let deleted = Arc::new(tokio::sync::Notify::new());
    let connection = Connection {
        outbox: tx,
        deleted: deleted.clone(),
        connected_at,
        last_active: connected_at,
        source_ip,
        user_agent,
    };
    emu.sockets.open.lock().expect("connections lock").insert(id.clone(), connection);
    let (mut sink, mut stream) = socket.split();
    let writer = tokio::spawn(async move {
        while let Some(out) = outbox.recv().await {
            match out {
                Outgoing::Frame(frame) => {
                    if sink.send(frame).await.is_err() {
                        return;
                    }
                }
                Outgoing::Close => break,
            }
        }
        let _ = sink.send(Message::Close(None)).await;
    });
    // Frames of one connection are handed to `ws-message` one after another.
    let mut close_code = 1005;
    let mut closed_by_server = false;
    loop {
        let incoming = tokio::select! {
            incoming = stream.next() => incoming,
            _ = deleted.notified() => None,
        };
        let Some(incoming) = incoming else { break };
        let (body, base64) = match incoming {
            Ok(Message::Text(text)) => (text.as_str().to_owned(), false),
            Ok(Message::Binary(bytes)) => (base64::engine::general_purpose::STANDARD.encode(&bytes), true),
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            Ok(Message::Close(frame)) => {
                close_code = frame.map(|f| f.code).unwrap_or(1005);
                break;
            }
            Err(_) => {
                close_code = 1006;
                break;
            }
        };
        if let Some(c) = emu.sockets.open.lock().expect("connections lock").get_mut(&id) {
            c.last_active = Utc::now();
        } else {
            // DeleteConnection: the gateway let go of it.
            closed_by_server = true;
            break;
        }
        let mut context = emu.ws_context("$default", "MESSAGE", &id, connected_at);
        context["messageId"] = json!(uuid::Uuid::new_v4().to_string());
        let event = json!({ "requestContext": context, "body": body, "isBase64Encoded": base64 });
        let _ = emu.invoke("ws-message", &event).await;
    }
    if emu.sockets.open.lock().expect("connections lock").remove(&id).is_none() {
        closed_by_server = true;
    }
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), writer).await;
    let mut context = emu.ws_context("$disconnect", "DISCONNECT", &id, connected_at);
    context["disconnectStatusCode"] = json!(if closed_by_server { 1000 } else { close_code });
    context["disconnectReason"] = json!(if closed_by_server { "Connection closed by server" } else { "" });
    let event = json!({ "requestContext": context, "isBase64Encoded": false });
    let _ = emu.invoke("ws-disconnect", &event).await;
}

/// 410 the way API Gateway says it, so the AWS SDK reads a `GoneException`.
fn gone(emu: &Emulator) -> Response {
    emu.sockets.stats.lock().expect("stats lock").gone += 1;
    crate::gone()
}

/// The refusal of a request not signed with the functions' credentials (403, as API Gateway
/// answers), or `None` when it may go on.
fn refusal(
    emu: &Emulator,
    stage: &str,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<Response> {
    if stage != emu.stage {
        return Some((StatusCode::FORBIDDEN, Json(json!({"message": "Forbidden"}))).into_response());
    }
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    sigv4::verify(&emu.credentials, method, path, headers, body).err().map(|e| {
        emu.sockets.stats.lock().expect("stats lock").forbidden += 1;
        let kind =
            if e == sigv4::Rejected::Missing { "MissingAuthenticationTokenException" } else { "ForbiddenException" };
        let mut response = (StatusCode::FORBIDDEN, Json(json!({ "message": e.to_string() }))).into_response();
        response.headers_mut().insert("x-amzn-errortype", HeaderValue::from_static(kind));
        response
    })
}

async fn management_post(
    State(emu): State<Arc<Emulator>>,
    Path((stage, id)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = refusal(&emu, &stage, &Method::POST, &uri, &headers, &body) {
        return refused;
    }
    emu.sockets.stats.lock().expect("stats lock").post += 1;
    let frame = match std::str::from_utf8(&body) {
        Ok(text) => Message::Text(text.into()),
        Err(_) => Message::Binary(body),
    };
    let sent = emu
        .sockets
        .open
        .lock()
        .expect("connections lock")
        .get(&id)
        .map(|c| c.outbox.send(Outgoing::Frame(frame)).is_ok());
    match sent {
        Some(true) => StatusCode::OK.into_response(),
        _ => gone(&emu),
    }
}

async fn management_get(
    State(emu): State<Arc<Emulator>>,
    Path((stage, id)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = refusal(&emu, &stage, &Method::GET, &uri, &headers, b"") {
        return refused;
    }
    emu.sockets.stats.lock().expect("stats lock").get += 1;
    let info = emu.sockets.open.lock().expect("connections lock").get(&id).map(|c| {
        json!({
            "connectedAt": c.connected_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "lastActiveAt": c.last_active.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "identity": { "sourceIp": c.source_ip, "userAgent": c.user_agent },
        })
    });
    match info {
        Some(info) => Json(info).into_response(),
        None => gone(&emu),
    }
}

async fn management_delete(
    State(emu): State<Arc<Emulator>>,
    Path((stage, id)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = refusal(&emu, &stage, &Method::DELETE, &uri, &headers, b"") {
        return refused;
    }
    emu.sockets.stats.lock().expect("stats lock").delete += 1;
    let removed = emu.sockets.open.lock().expect("connections lock").remove(&id);
    match removed {
        Some(c) => {
            let _ = c.outbox.send(Outgoing::Close);
            c.deleted.notify_one();
            StatusCode::NO_CONTENT.into_response()
        }
        None => gone(&emu),
    }
}
