//! The WebSocket routes: `$connect` (`on_connect`), `$default` (`on_message`) and
//! `$disconnect` (`on_disconnect`), exactly as API Gateway invokes them. A frame is parsed here,
//! handed to its feature (`chat`, `ai`), and a failure becomes an `error` event.

use std::{collections::HashSet, pin::Pin};

use tracing::Instrument;

use crate::{
    access,
    adapters::postgres::users,
    ai,
    app::App,
    chat::{self, post::Post},
    domain::ConnectionId,
    error::Error,
    ports::ConnectionInfo,
    protocol::{ClientAction, ServerEvent, WsError, WsErrorCode, frame_ref, parse_frame},
    realtime::{forget_connection, send_event},
};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConnectError {
    #[error("missing, used or expired ticket")]
    Unauthorized,
    #[error("a dependency is unavailable")]
    Unavailable,
}

/// `$connect`: spends the one-time ticket and registers the connection.
#[tracing::instrument(skip(app, ticket), fields(%connection))]
pub async fn on_connect(app: &App, connection: &ConnectionId, ticket: Option<&str>) -> Result<(), ConnectError> {
    let ticket = ticket.filter(|t| !t.is_empty() && t.len() <= 128).ok_or(ConnectError::Unauthorized)?;
    let user_id = app.redis.take_ticket(&crate::tokens::hash_hex(ticket)).await.map_err(|e| {
        tracing::warn!(error = %e, "cannot check ticket");
        ConnectError::Unavailable
    })?;
    let user_id = user_id.ok_or(ConnectError::Unauthorized)?;
    let user = users::by_id(&app.db, user_id)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "cannot load user");
            ConnectError::Unavailable
        })?
        .ok_or(ConnectError::Unauthorized)?;
    app.connections
        .register(ConnectionInfo {
            id: connection.clone(),
            user_id,
            display_name: user.display_name,
            rooms: HashSet::new(),
            connected_at: app.clock.now(),
            endpoint: app.own_endpoint.clone(),
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "cannot register connection");
            ConnectError::Unavailable
        })?;
    tracing::info!(%user_id, "connected");
    Ok(())
}

/// `$disconnect`: forgets the connection and tells its rooms.
#[tracing::instrument(skip(app), fields(%connection))]
pub async fn on_disconnect(app: &App, connection: &ConnectionId) {
    if let Some(info) = forget_connection(app, connection).await {
        tracing::info!(user_id = %info.user_id, "disconnected");
    }
}

/// `$default`: one client frame. Every failure becomes an `error` event to this connection;
/// the connection stays open.
pub async fn on_message(app: &App, connection: &ConnectionId, raw: &str) {
    if let Some(rest) = on_message_pipelined(app, connection, raw).await {
        rest.await;
    }
}

/// What is left of a frame once its message has its place in the room's order and in the
/// writer's queue: the commit, the `ack` and the fan-out.
pub type FrameRest = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// [`on_message`] for a gateway that reads a socket's frames one after another: returns once
/// a new message is queued for storage, in frame order, and hands back the rest, to be run
/// while the next frames are read. A sender's messages are then stored in the order sent
/// without each waiting for the commit of the one before.
#[tracing::instrument(skip(app, raw), fields(%connection, bytes = raw.len()))]
pub async fn on_message_pipelined(app: &App, connection: &ConnectionId, raw: &str) -> Option<FrameRest> {
    let conn = match app.connections.get(connection).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            tracing::warn!("frame from an unknown connection");
            return None;
        }
        Err(e) => {
            tracing::error!(error = %e, "registry unavailable");
            return None;
        }
    };
    match dispatch(app, &conn, raw).await {
        Ok(rest) => rest,
        Err(err) => {
            report(app, &conn, err).await;
            None
        }
    }
}

async fn report(app: &App, conn: &ConnectionInfo, err: WsError) {
    if err.code == WsErrorCode::Internal {
        tracing::error!("frame failed with an internal error");
    }
    send_event(app, conn.into(), &ServerEvent::Error(err)).await;
}

/// A binary frame: not part of the protocol, answered like any malformed frame.
pub async fn on_binary_frame(app: &App, connection: &ConnectionId) {
    let err = WsError::bad_request("frames must be JSON text, not binary");
    if let Ok(Some(conn)) = app.connections.get(connection).await {
        send_event(app, (&conn).into(), &ServerEvent::Error(err)).await;
    }
}

/// Runs one frame. A `new_message` returns once it is queued, with the rest of its work.
async fn dispatch(app: &App, conn: &ConnectionInfo, raw: &str) -> Result<Option<FrameRest>, WsError> {
    let after_store = crate::wiring::after_store();
    let with_ref = |e: Error| WsError::from(e).with_ref(frame_ref_of(raw).as_deref());
    let done = match parse_frame(raw)? {
        ClientAction::NewMessage { room_id, body, client_msg_id, reply_to } => {
            let post = Post { room_id, body: &body, client_msg_id: &client_msg_id, reply_to, attachment: None };
            let queued = chat::post::queue(app, conn, post).await.map_err(with_ref)?;
            let frame_ref = frame_ref_of(raw);
            let (app, conn) = (app.clone(), conn.clone());
            let rest = async move {
                if let Err(e) = queued.finish(&app, &conn, after_store).await {
                    report(&app, &conn, WsError::from(e).with_ref(frame_ref.as_deref())).await;
                }
            };
            return Ok(Some(Box::pin(rest.in_current_span())));
        }
        ClientAction::Ping => {
            send_event(app, conn.into(), &ServerEvent::Pong).await;
            Ok(())
        }
        ClientAction::JoinRoom { room_id } => chat::presence::join(app, conn, room_id).await,
        ClientAction::LeaveRoom { room_id } => chat::presence::leave(app, conn, room_id).await,
        ClientAction::Typing { room_id, typing } => chat::presence::typing(app, conn, room_id, typing).await,
        ClientAction::FileMessage { room_id, file_id, client_msg_id, caption } => {
            chat::post::file(app, conn, room_id, file_id, &client_msg_id, caption.as_deref(), after_store)
                .await
                .map_err(with_ref)?;
            Ok(())
        }
        ClientAction::EditMessage { room_id, message_id, body } => {
            chat::change::edit(app, conn.user_id, room_id, message_id, &body, after_store).await
        }
        ClientAction::DeleteMessage { room_id, message_id } => {
            chat::change::delete(app, conn.user_id, room_id, message_id, after_store).await
        }
        ClientAction::React { room_id, message_id, emoji, on } => {
            chat::change::react(app, conn.user_id, room_id, message_id, &emoji, on).await
        }
        ClientAction::StopAi { room_id, stream_id } => match access::require_member(app, room_id, conn.user_id).await {
            Ok(()) => ai::request_stop(app, room_id, &stream_id).await,
            Err(e) => Err(e),
        },
    };
    done.map(|()| None).map_err(WsError::from)
}

fn frame_ref_of(raw: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(raw).ok().and_then(|v| frame_ref(&v).map(str::to_owned))
}
