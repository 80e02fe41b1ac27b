//! `mathia-local`: Mathia in one process. It serves `static/`, the HTTP API and the WebSocket
//! at `/ws` on one port, and stands in for API Gateway: each socket gets a connection id, and
//! its open, frames and close are routed to the very `$connect` / `$default` / `$disconnect`
//! handlers the Lambda functions run. Frames to sockets go out through the `LocalPush` port.

use std::{future::Future, time::Duration};

use axum::{
    Router,
    extract::{
        Query, State, WebSocketUpgrade,
        ws::{Message, Utf8Bytes, WebSocket},
    },
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use futures::{SinkExt, StreamExt};
use mathia::{
    App, Config,
    adapters::local::LocalPush,
    domain::ConnectionId,
    handlers::{
        http::error::ApiError,
        ws::{ConnectError, on_binary_frame, on_connect, on_disconnect, on_message},
    },
};
use serde::Deserialize;
use tokio::{net::TcpListener, sync::watch};
use tower_http::services::{ServeDir, ServeFile};

/// Frames above this close the socket; frames between 32 KiB and this get `too_large`.
const MAX_SOCKET_MESSAGE: usize = 1024 * 1024;

/// The running pieces of the local mode.
#[derive(Clone)]
pub struct Local {
    pub app: App,
    pub push: LocalPush,
}

#[derive(Clone)]
struct Gateway {
    app: App,
    push: LocalPush,
    shutdown: watch::Receiver<bool>,
}

impl Local {
    /// Connects to Postgres (creating and migrating the database) and builds the app with the
    /// in-process adapters.
    pub async fn connect(config: Config) -> anyhow::Result<Self> {
        let db = mathia::adapters::postgres::connect(&config.database_url).await?;
        let push = LocalPush::new();
        let app = App::builder(config, db)
            .push(std::sync::Arc::new(push.clone()))
            .build()?;
        Ok(Self { app, push })
    }

    /// The whole site: API, WebSocket gateway, static files.
    pub fn router(&self, shutdown: watch::Receiver<bool>) -> Router {
        let gateway = Gateway {
            app: self.app.clone(),
            push: self.push.clone(),
            shutdown,
        };
        let static_dir = &self.app.config.static_dir;
        let files =
            ServeDir::new(static_dir).fallback(ServeFile::new(static_dir.join("index.html")));
        mathia::handlers::http::router(self.app.clone())
            .merge(
                Router::new()
                    .route("/ws", get(ws_upgrade))
                    .with_state(gateway),
            )
            .fallback_service(files)
    }

    /// Serves until `signal` resolves, then closes every socket and returns.
    pub async fn serve(
        self,
        listener: TcpListener,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (tx, rx) = watch::channel(false);
        let router = self.router(rx);
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                signal.await;
                let _ = tx.send(true);
            })
            .await?;
        Ok(())
    }
}

#[derive(Deserialize)]
struct WsParams {
    ticket: Option<String>,
}

/// `$connect`: the ticket is checked before the upgrade, so a bad one is refused with 401.
async fn ws_upgrade(
    State(gw): State<Gateway>,
    Query(params): Query<WsParams>,
    ws: WebSocketUpgrade,
) -> Response {
    let connection = ConnectionId::generate();
    match on_connect(&gw.app, &connection, params.ticket.as_deref()).await {
        Ok(()) => {}
        Err(ConnectError::Unauthorized) => {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_ticket",
                "missing, used or expired ticket",
            )
            .into_response();
        }
        Err(ConnectError::Unavailable) => {
            return ApiError::unavailable("the realtime service").into_response();
        }
    }
    let cleanup = gw.clone();
    let failed_connection = connection.clone();
    ws.max_message_size(MAX_SOCKET_MESSAGE)
        .on_failed_upgrade(move |_| {
            tokio::spawn(async move { on_disconnect(&cleanup.app, &failed_connection).await });
        })
        .on_upgrade(move |socket| run_socket(gw, connection, socket))
}

async fn run_socket(mut gw: Gateway, connection: ConnectionId, socket: WebSocket) {
    let mut outbox = gw.push.attach(connection.clone());
    let (mut sink, mut stream) = socket.split();
    let writer = tokio::spawn(async move {
        while let Some(frame) = outbox.recv().await {
            let Ok(text) = Utf8Bytes::try_from(frame.bytes().clone()) else {
                continue;
            };
            if sink.send(Message::Text(text)).await.is_err() {
                return;
            }
        }
        // The outbox closed: this process let go of the socket.
        let _ = sink.send(Message::Close(None)).await;
    });
    loop {
        tokio::select! {
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(text))) => on_message(&gw.app, &connection, text.as_str()).await,
                Some(Ok(Message::Binary(_))) => on_binary_frame(&gw.app, &connection).await,
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
            },
            _ = gw.shutdown.changed() => break,
        }
    }
    gw.push.detach(&connection);
    on_disconnect(&gw.app, &connection).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
}
