//! `mathia-local`: Mathia in one process. It serves `static/`, the HTTP API and the WebSocket
//! at `/ws` on one port, and stands in for API Gateway: each socket gets a connection id, and
//! its open, frames and close are routed to the very `$connect` / `$default` / `$disconnect`
//! handlers the Lambda functions run. Frames to sockets go out through the `LocalPush` port.
//!
//! Like API Gateway it also serves the management API (`POST/GET/DELETE /@connections/{id}`)
//! for the sockets it holds, so with the AWS backend several instances reach each other's
//! sockets through the same `Push` adapter Lambda uses. Like API Gateway's, it wants a SigV4
//! signature made with the process's own AWS credentials (the ones its `Push` signs with); with
//! the local backend nothing needs it and it refuses every call. It runs the queue workers (on its
//! in-process queues, or by polling SQS) and the scheduler on a timer.

pub mod admin;
mod bounded;
pub mod emulate;
pub mod headers;
mod serve;
mod socket;
mod workers;

pub use emulate::sigv4::Expected as ManagementCredentials;
pub use serve::MIN_BODY_RATE;

use std::{
    future::Future,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{OriginalUri, Path, Query, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::get,
    serve::ListenerExt,
};
use futures::{SinkExt, StreamExt};
use mathia::{
    App, Config,
    adapters::local::{CloseReason, LocalPush},
    config::Backend,
    domain::ConnectionId,
    handlers::{
        http::error::ApiError,
        ws::{
            Admission, ConnectError, FrameBudget, on_binary_frame, on_connect, on_disconnect, on_message_pipelined,
            on_throttled,
        },
    },
    ports::{Clock, Frame},
    wiring::{Consumers, gateway_app},
};
use serde::Deserialize;
use tokio::{
    net::TcpListener,
    sync::{Semaphore, watch},
};
use tokio_tungstenite::tungstenite::{
    Message, Utf8Bytes,
    protocol::{CloseFrame, WebSocketConfig},
};
use tower_http::services::{ServeDir, ServeFile};

/// Frames above this close the socket; frames between 32 KiB and this get `too_large`.
const MAX_SOCKET_MESSAGE: usize = 1024 * 1024;

/// The running pieces of the local mode.
#[derive(Clone)]
pub struct Local {
    pub app: App,
    pub push: LocalPush,
    /// The credentials the management API's callers must sign with (SigV4); None refuses every
    /// call. With the AWS backend, the process's own AWS credentials.
    pub management: Option<ManagementCredentials>,
    /// Each socket's frame budget: (frames a second, burst).
    pub frame_budget: (u32, u32),
    consumers: Arc<Mutex<Option<Consumers>>>,
}

#[derive(Clone)]
struct Gateway {
    app: App,
    push: LocalPush,
    shutdown: watch::Receiver<bool>,
    management: Option<Arc<ManagementCredentials>>,
    frame_budget: (u32, u32),
}

impl Local {
    /// Connects to Postgres (creating and migrating the database) and wires the adapters the
    /// configuration asks for. `own_endpoint` is this process's base URL, used by the AWS
    /// backend so other instances can reach its sockets.
    pub async fn start(
        config: Config,
        own_endpoint: Option<String>,
        clock: Option<Arc<dyn Clock>>,
    ) -> anyhow::Result<Self> {
        let management = management_credentials(&config);
        let frame_budget = (config.ws_frames_per_s, config.ws_frame_burst);
        let parts = gateway_app(config, own_endpoint, clock).await?;
        Ok(Self {
            app: parts.app,
            push: parts.sockets,
            management,
            frame_budget,
            consumers: Arc::new(Mutex::new(Some(parts.consumers))),
        })
    }

    /// Like `start`, with the in-process defaults.
    pub async fn connect(config: Config) -> anyhow::Result<Self> {
        Self::start(config, None, None).await
    }

    /// The whole site: API, WebSocket gateway, management API, static files.
    pub fn router(&self, shutdown: watch::Receiver<bool>) -> Router {
        let gateway = Gateway {
            app: self.app.clone(),
            push: self.push.clone(),
            shutdown,
            management: self.management.clone().map(Arc::new),
            frame_budget: self.frame_budget,
        };
        let static_dir = &self.app.config.static_dir;
        let files = ServeDir::new(static_dir).fallback(ServeFile::new(static_dir.join("index.html")));
        let gateway_routes = Router::new()
            .route("/ws", get(ws_upgrade))
            .route("/@connections/{id}", get(management_get).post(management_post).delete(management_delete))
            .with_state(gateway);
        let site = mathia::handlers::http::router(self.app.clone()).merge(gateway_routes).fallback_service(files);
        let config = &self.app.config;
        // Presigned S3 URLs (uploads, downloads) point at the endpoint, or at the bucket's host.
        let files_origin = config.files_bucket.as_ref().map(|bucket| match &config.aws.endpoint_url {
            Some(endpoint) => headers::origin(endpoint).unwrap_or_default(),
            None => format!("https://{bucket}.s3.{}.amazonaws.com", config.aws.region),
        });
        headers::secure(site, config.ws_url.as_deref(), files_origin.filter(|o| !o.is_empty()))
    }

    /// Serves until `signal` resolves, then closes every socket and returns. The queue workers
    /// and the scheduler run alongside.
    pub async fn serve(
        self,
        listener: TcpListener,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (tx, rx) = watch::channel(false);
        if let Some(consumers) = self.consumers.lock().expect("consumers lock").take() {
            workers::spawn(self.app.clone(), consumers, rx.clone());
        }
        workers::spawn_scheduler(self.app.clone(), rx.clone());
        let router = self.router(rx);
        let config = &self.app.config;
        let bounds = bounded::Bounds {
            connections: config
                .max_connections
                .unwrap_or_else(|| bounded::connections_for(bounded::raise_open_files())),
            per_address: config.connections_per_address,
            idle: config.idle_timeout,
        };
        tracing::info!(limit = bounds.connections, per_address = bounds.per_address, "connections held at once");
        // Frames are small and often back to back (an `ack`, then the `new_message`): with
        // Nagle's algorithm the second waits for the client's delayed ACK, ~40 ms.
        let listener = bounded::Bounded::new(listener, bounds).tap_io(|held| {
            if let Err(e) = held.get_ref().set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
        });
        // The peer's address reaches handlers (the login throttle counts per address).
        serve::serve(listener, router, config.header_timeout, async move {
            signal.await;
            let _ = tx.send(true);
        })
        .await;
        Ok(())
    }
}

/// With the AWS backend, the credentials this process's own `Push` signs with
/// (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`): other instances sign with the same ones. With
/// the local backend frames never travel through the management API, so it takes none.
fn management_credentials(config: &Config) -> Option<ManagementCredentials> {
    if config.backend != Backend::Aws {
        return None;
    }
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
        (Some(access_key_id), Some(secret_access_key)) => {
            Some(ManagementCredentials { access_key_id, secret_access_key })
        }
        _ => {
            tracing::warn!(
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY unset: the management API refuses every call, so other \
                 instances cannot reach this one's sockets"
            );
            None
        }
    }
}

/// The refusal of a management call not signed with the expected credentials (403, as API
/// Gateway answers), or None when it may go on.
fn refusal(gw: &Gateway, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Option<Response> {
    let refuse = |kind: &'static str, message: String| {
        let mut response = (StatusCode::FORBIDDEN, Json(serde_json::json!({ "message": message }))).into_response();
        response.headers_mut().insert("x-amzn-errortype", HeaderValue::from_static(kind));
        Some(response)
    };
    let Some(expected) = &gw.management else {
        return refuse("ForbiddenException", "Forbidden".into());
    };
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    match emulate::sigv4::verify(expected, method, path, headers, body) {
        Ok(()) => None,
        Err(emulate::sigv4::Rejected::Missing) => {
            refuse("MissingAuthenticationTokenException", emulate::sigv4::Rejected::Missing.to_string())
        }
        Err(e) => refuse("ForbiddenException", e.to_string()),
    }
}

/// API Gateway's management API for the sockets this process holds: POST sends a frame.
async fn management_post(
    State(gw): State<Gateway>,
    Path(id): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = refusal(&gw, &Method::POST, &uri, &headers, &body) {
        return refused;
    }
    match gw.push.deliver(&ConnectionId::new(id), &Frame::from_bytes(body)) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(_) => gone(),
    }
}

async fn management_get(
    State(gw): State<Gateway>,
    Path(id): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = refusal(&gw, &Method::GET, &uri, &headers, b"") {
        return refused;
    }
    let id = ConnectionId::new(id);
    match gw.app.connections.get(&id).await {
        Ok(Some(info)) if gw.push.holds(&id) => Json(serde_json::json!({
            "connectedAt": info.connected_at,
            "identity": { "sourceIp": "127.0.0.1", "userAgent": "" },
            "lastActiveAt": info.connected_at,
        }))
        .into_response(),
        _ => gone(),
    }
}

async fn management_delete(
    State(gw): State<Gateway>,
    Path(id): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = refusal(&gw, &Method::DELETE, &uri, &headers, b"") {
        return refused;
    }
    if gw.push.close(&ConnectionId::new(id)) { StatusCode::NO_CONTENT.into_response() } else { gone() }
}

/// 410 the way API Gateway says it, so the AWS SDK reads a `GoneException`.
pub(crate) fn gone() -> Response {
    let mut response = (StatusCode::GONE, Json(serde_json::json!({ "message": "Gone" }))).into_response();
    response.headers_mut().insert("x-amzn-errortype", HeaderValue::from_static("GoneException"));
    response
}

#[derive(Deserialize)]
struct WsParams {
    ticket: Option<String>,
}

/// `$connect`: the ticket is checked before the upgrade, so a bad one is refused with 401.
async fn ws_upgrade(State(gw): State<Gateway>, Query(params): Query<WsParams>, ws: socket::Upgrade) -> Response {
    let connection = ConnectionId::generate();
    match on_connect(&gw.app, &connection, params.ticket.as_deref()).await {
        Ok(()) => {}
        Err(ConnectError::Unauthorized) => {
            return ApiError::new(StatusCode::UNAUTHORIZED, "invalid_ticket", "missing, used or expired ticket")
                .into_response();
        }
        Err(ConnectError::Unavailable) => {
            return ApiError::unavailable("the realtime service").into_response();
        }
        Err(ConnectError::TooManySockets) => return ApiError::too_many_sockets().into_response(),
    }
    let cleanup = gw.clone();
    let failed_connection = connection.clone();
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_SOCKET_MESSAGE))
        .max_frame_size(Some(MAX_SOCKET_MESSAGE))
        .read_buffer_size(READ_BUFFER);
    ws.on_upgrade(
        config,
        move || {
            tokio::spawn(async move { on_disconnect(&cleanup.app, &failed_connection).await });
        },
        move |socket| run_socket(gw, connection, socket),
    )
}

/// Each socket's read buffer, and the most read at once (tungstenite's default, 128 KiB, is
/// allocated and filled up front for every socket). A client's frames are small, and once a
/// longer frame's header is read tungstenite makes room for all of it; every byte here is held
/// by every idle socket (bench/RESULTS.md, "the socket's read buffer").
const READ_BUFFER: usize = 1024;

/// At most this many frames per socket write.
const WRITE_BATCH: usize = 64;

/// A socket's messages being committed and sent while its next frames are read; past this,
/// reading waits.
const MESSAGES_IN_FLIGHT: usize = 32;

async fn run_socket(mut gw: Gateway, connection: ConnectionId, socket: socket::Socket) {
    let mut outbox = gw.push.attach(connection.clone());
    let mut closing = outbox.closing();
    // A logout between the handshake and the attach above forgot the connection, and its close
    // found nothing to close (it forgets before it closes): the socket ends here instead.
    if !matches!(gw.app.connections.get(&connection).await, Ok(Some(_))) {
        gw.push.close(&connection);
    }
    let (mut sink, mut stream) = socket.split();
    let mut writer = tokio::spawn(async move {
        let mut closing = outbox.closing();
        // One wait for the whole life of the socket: a `changed()` made afresh for every frame
        // registers and drops a waiter each time (bench/RESULTS.md, "Room size").
        let let_go = closing.changed();
        tokio::pin!(let_go);
        loop {
            // Whatever queued up meanwhile goes out in the same write: with TCP_NODELAY a flush
            // per frame would be a packet per frame under load.
            let first = tokio::select! {
                biased;
                // The process let go of the socket (closed, overloaded, detached): what is still
                // queued is dropped, the client reconnects and catches up.
                _ = &mut let_go => break,
                next = outbox.recv() => match next {
                    Some(frame) => frame,
                    None => break,
                },
            };
            let mut next = Some(first);
            let mut batched = 0;
            while let Some(frame) = next.take() {
                if let Ok(text) = Utf8Bytes::try_from(frame.bytes().clone()) {
                    for message in socket::text_frames(text) {
                        if sink.feed(message).await.is_err() {
                            return;
                        }
                    }
                }
                batched += 1;
                if batched < WRITE_BATCH {
                    next = outbox.try_recv();
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
        let reason = outbox.close_reason().unwrap_or(CloseReason::Closed);
        let close = CloseFrame { code: reason.code().into(), reason: Utf8Bytes::from_static(reason.text()) };
        let _ = sink.send(Message::Close(Some(close))).await;
    });
    // Frames are read and started one by one, so a sender's messages are queued for storage
    // in the order sent; each one's commit, ack and fan-out then run on their own. Every frame
    // spends the socket's budget first: a flood is dropped here, before it costs anyone else.
    //
    // The futures that serve a frame are boxed: a task is as big as the largest state it can be
    // in, and an idle socket's task would otherwise carry the whole of `new_message`'s state
    // (bench/RESULTS.md, "Idle sockets").
    let in_flight = Arc::new(Semaphore::new(MESSAGES_IN_FLIGHT));
    let mut budget = FrameBudget::new(gw.frame_budget.0, gw.frame_budget.1);
    loop {
        tokio::select! {
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(_) | Message::Binary(_))) if !admitted(&gw, &connection, &mut budget).await => {}
                Some(Ok(Message::Text(text))) => {
                    let permit = in_flight.clone().acquire_owned().await.expect("never closed");
                    if let Some(rest) = Box::pin(on_message_pipelined(&gw.app, &connection, text.as_str())).await {
                        tokio::spawn(async move {
                            rest.await;
                            drop(permit);
                        });
                    }
                }
                Some(Ok(Message::Binary(_))) => Box::pin(on_binary_frame(&gw.app, &connection)).await,
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
            },
            // The process let go of the socket: its frames are no longer served.
            _ = closing.changed() => break,
            _ = gw.shutdown.changed() => break,
        }
    }
    gw.push.detach(&connection);
    Box::pin(on_disconnect(&gw.app, &connection)).await;
    // A client that stopped reading cannot hold the writer (and the socket) forever.
    if tokio::time::timeout(WRITER_GRACE, &mut writer).await.is_err() {
        writer.abort();
    }
}

/// How long a closing socket's writer may take to send what it has and the close frame.
const WRITER_GRACE: Duration = Duration::from_secs(5);

/// Spends one frame of the socket's budget; false when it is over (answered with `rate_limited`
/// at most once a second, otherwise dropped quietly).
async fn admitted(gw: &Gateway, connection: &ConnectionId, budget: &mut FrameBudget) -> bool {
    match budget.admit(std::time::Instant::now()) {
        Admission::Serve => true,
        Admission::Refuse { retry_after, tell } => {
            if tell {
                Box::pin(on_throttled(&gw.app, connection, retry_after)).await;
            }
            false
        }
    }
}
