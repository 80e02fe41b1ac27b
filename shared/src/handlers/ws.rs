//! The WebSocket routes: `$connect` (`on_connect`), `$default` (`on_message`) and
//! `$disconnect` (`on_disconnect`), exactly as API Gateway invokes them.

use std::{collections::HashSet, pin::Pin, time::Duration};

use tracing::Instrument;
use uuid::Uuid;

use crate::{
    adapters::{
        postgres::{
            self,
            group_commit::PendingWrite,
            messages::{self, Cursor, MessageDraft, Stored},
            onboarding::{self, Step},
            users,
        },
        redis::RateDecision,
    },
    ai,
    app::App,
    domain::{ClientMsgId, ConnectionId, MessageBody, MessageKind, OnlineUser},
    ports::ConnectionInfo,
    protocol::{ClientAction, PresenceStatus, ServerEvent, WsError, WsErrorCode, frame_ref, parse_frame},
    realtime::{announce_if_gone, forget_connection, push_to_room, send_event},
    room_order::Turn,
};

/// How many messages `room_joined` carries.
pub const JOIN_HISTORY: i64 = 50;
const TYPING_THROTTLE: Duration = Duration::from_millis(1000);
const RATE_WINDOW: Duration = Duration::from_secs(60);

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
    let done = match parse_frame(raw)? {
        ClientAction::NewMessage { room_id, body, client_msg_id, reply_to } => {
            let frame_ref = frame_ref_of(raw);
            let queued = queue_message(app, conn, room_id, &body, &client_msg_id, reply_to, None)
                .await
                .map_err(|e| e.with_ref(frame_ref.as_deref()))?;
            let (app, conn) = (app.clone(), conn.clone());
            let rest = async move {
                if let Err(e) = queued.finish(&app, &conn).await {
                    report(&app, &conn, e.with_ref(frame_ref.as_deref())).await;
                }
            };
            return Ok(Some(Box::pin(rest.in_current_span())));
        }
        ClientAction::Ping => {
            send_event(app, conn.into(), &ServerEvent::Pong).await;
            Ok(())
        }
        ClientAction::JoinRoom { room_id } => join_room(app, conn, room_id).await,
        ClientAction::LeaveRoom { room_id } => leave_room(app, conn, room_id).await,
        ClientAction::Typing { room_id, typing } => on_typing(app, conn, room_id, typing).await,
        ClientAction::FileMessage { room_id, file_id, client_msg_id, caption } => {
            file_message(app, conn, room_id, file_id, &client_msg_id, caption.as_deref())
                .await
                .map_err(|e| e.with_ref(frame_ref_of(raw).as_deref()))
        }
        ClientAction::EditMessage { room_id, message_id, body } => {
            edit_message(app, conn, room_id, message_id, &body).await
        }
        ClientAction::DeleteMessage { room_id, message_id } => delete_message(app, conn, room_id, message_id).await,
        ClientAction::React { room_id, message_id, emoji, on } => {
            react(app, conn, room_id, message_id, &emoji, on).await
        }
        ClientAction::StopAi { room_id, stream_id } => {
            if !is_member(app, room_id, conn.user_id).await? {
                return Err(not_member(app, room_id, conn.user_id).await);
            }
            ai::request_stop(app, room_id, &stream_id).await
        }
    };
    done.map(|()| None)
}

/// `file_message`: validates the uploaded bytes (size, real type), then posts the message.
async fn file_message(
    app: &App,
    conn: &ConnectionInfo,
    room_id: Uuid,
    file_id: Uuid,
    client_msg_id: &str,
    caption: Option<&str>,
) -> Result<(), WsError> {
    use crate::adapters::postgres::files as file_rows;
    if !is_member(app, room_id, conn.user_id).await? {
        return Err(not_member(app, room_id, conn.user_id).await);
    }
    let file = file_rows::get(&app.db, file_id)
        .await
        .map_err(db_error)?
        .filter(|f| f.room_id == room_id && f.uploader_id == conn.user_id)
        .ok_or_else(|| WsError::bad_request("no upload of yours with that file_id in this room"))?;
    match file.status.as_str() {
        "rejected" => return Err(WsError::bad_request("that file was rejected")),
        "ready" => {}
        _ => {
            let bytes = match app.files.read(file_id, room_id).await {
                Ok(bytes) => bytes,
                Err(crate::files::StoreError::Missing) => {
                    return Err(WsError::bad_request("the file was never uploaded: PUT it to upload_url first"));
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot read an upload");
                    return Err(WsError::unavailable("file storage"));
                }
            };
            match crate::files::sniff(&file.name, &bytes) {
                Ok(content_type) => {
                    if let Err(e) = app.files.accept(file_id).await {
                        tracing::error!(error = %e, "cannot accept an upload");
                        return Err(WsError::unavailable("file storage"));
                    }
                    file_rows::mark_ready(&app.db, file_id, content_type, bytes.len() as i64).await.map_err(db_error)?
                }
                Err(reason) => {
                    let _ = app.files.delete(file_id).await;
                    file_rows::mark_rejected(&app.db, file_id).await.map_err(db_error)?;
                    return Err(WsError::bad_request(format!("file rejected: {reason}")));
                }
            }
        }
    }
    let body = caption.map(str::trim).filter(|c| !c.is_empty()).unwrap_or(&file.name).to_owned();
    queue_message(app, conn, room_id, &body, client_msg_id, None, Some(file_id)).await?.finish(app, conn).await
}

/// The author of a live message of the room, or `not_found`.
async fn message_author(app: &App, room_id: Uuid, message_id: Uuid) -> Result<Option<Uuid>, WsError> {
    messages::author_of(&app.db, room_id, message_id)
        .await
        .map_err(db_error)?
        .ok_or_else(|| WsError::new(WsErrorCode::NotFound, "no such message in this room"))
}

async fn edit_message(
    app: &App,
    conn: &ConnectionInfo,
    room_id: Uuid,
    message_id: Uuid,
    body: &str,
) -> Result<(), WsError> {
    let body = MessageBody::parse(body).map_err(|e| WsError::bad_request(e.to_string()))?;
    if !is_member(app, room_id, conn.user_id).await? {
        return Err(not_member(app, room_id, conn.user_id).await);
    }
    if message_author(app, room_id, message_id).await? != Some(conn.user_id) {
        return Err(WsError::new(WsErrorCode::Forbidden, "you can only edit your own messages"));
    }
    let _in_order = app.room_order.lock(room_id).await;
    messages::edit(&app.db, &app.keyring, room_id, message_id, body.as_str(), app.clock.now())
        .await
        .map_err(db_error)?;
    let message = messages::get(&app.db, &app.keyring, room_id, message_id)
        .await
        .map_err(db_error)?
        .ok_or_else(WsError::internal)?;
    push_to_room(app, room_id, &ServerEvent::MessageEdited { room_id, message }, None).await;
    Ok(())
}

async fn delete_message(app: &App, conn: &ConnectionInfo, room_id: Uuid, message_id: Uuid) -> Result<(), WsError> {
    if !is_member(app, room_id, conn.user_id).await? {
        return Err(not_member(app, room_id, conn.user_id).await);
    }
    let author = message_author(app, room_id, message_id).await?;
    if author != Some(conn.user_id) && !owns_room_workspace(app, room_id, conn.user_id).await? {
        return Err(WsError::new(WsErrorCode::Forbidden, "you can only delete your own messages"));
    }
    let _in_order = app.room_order.lock(room_id).await;
    if messages::delete(&app.db, room_id, message_id, app.clock.now()).await.map_err(db_error)? {
        push_to_room(app, room_id, &ServerEvent::MessageDeleted { room_id, message_id }, None).await;
    }
    Ok(())
}

async fn owns_room_workspace(app: &App, room_id: Uuid, user_id: Uuid) -> Result<bool, WsError> {
    Ok(crate::access::in_room_workspace(app, room_id, user_id).await.map_err(db_error)?.may_moderate())
}

/// Emoji reactions: one grapheme-ish token, a few characters at most.
const MAX_EMOJI_BYTES: usize = 32;

async fn react(
    app: &App,
    conn: &ConnectionInfo,
    room_id: Uuid,
    message_id: Uuid,
    emoji: &str,
    on: bool,
) -> Result<(), WsError> {
    let emoji = emoji.trim();
    if emoji.is_empty() || emoji.len() > MAX_EMOJI_BYTES || emoji.chars().any(char::is_whitespace) {
        return Err(WsError::bad_request("emoji: one emoji, please"));
    }
    if !is_member(app, room_id, conn.user_id).await? {
        return Err(not_member(app, room_id, conn.user_id).await);
    }
    message_author(app, room_id, message_id).await?;
    let reactions = messages::react(&app.db, message_id, conn.user_id, emoji, on).await.map_err(db_error)?;
    let event =
        ServerEvent::Reaction { room_id, message_id, user_id: conn.user_id, emoji: emoji.to_owned(), on, reactions };
    push_to_room(app, room_id, &event, None).await;
    Ok(())
}

fn frame_ref_of(raw: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(raw).ok().and_then(|v| frame_ref(&v).map(str::to_owned))
}

fn db_error(e: impl Into<sqlx::Error>) -> WsError {
    let e = e.into();
    if postgres::is_unavailable(&e) {
        tracing::warn!(error = %e, "Postgres unavailable");
        WsError::unavailable("storage")
    } else {
        tracing::error!(error = ?e, "database error");
        WsError::internal()
    }
}

/// `not_member`, or `onboarding_incomplete` when that is why (only people who finished
/// onboarding are in rooms, so the hot path never asks).
async fn not_member(app: &App, room_id: Uuid, user_id: Uuid) -> WsError {
    match onboarding::step(&app.db, user_id).await {
        Ok(step) if step != Step::Done => WsError::new(
            WsErrorCode::OnboardingIncomplete,
            "finish onboarding (profile, goals, workspace) before chatting",
        ),
        _ => WsError::not_member(room_id),
    }
}

async fn is_member(app: &App, room_id: Uuid, user_id: Uuid) -> Result<bool, WsError> {
    crate::access::is_room_member(app, room_id, user_id).await.map_err(db_error)
}

async fn join_room(app: &App, conn: &ConnectionInfo, room_id: Uuid) -> Result<(), WsError> {
    if !is_member(app, room_id, conn.user_id).await? {
        return Err(not_member(app, room_id, conn.user_id).await);
    }
    let already_here = app
        .connections
        .in_room(room_id)
        .await
        .map_err(|_| WsError::unavailable("the connection registry"))?
        .iter()
        .any(|c| c.user_id == conn.user_id);
    app.connections.join(&conn.id, room_id).await.map_err(|_| WsError::unavailable("the connection registry"))?;
    let page = messages::page(&app.db, &app.keyring, room_id, Cursor::Latest, JOIN_HISTORY).await.map_err(db_error)?;
    let mut online: Vec<OnlineUser> = Vec::new();
    for c in app.connections.in_room(room_id).await.map_err(|_| WsError::unavailable("the connection registry"))? {
        if !online.iter().any(|o| o.user_id == c.user_id) {
            online.push(OnlineUser { user_id: c.user_id, display_name: c.display_name });
        }
    }
    send_event(app, conn.into(), &ServerEvent::RoomJoined { room_id, messages: page.messages, online }).await;
    crate::reminders::deliver_missed(app, conn.user_id, &conn.id, conn.endpoint.as_deref()).await;
    if !already_here {
        let event = ServerEvent::PresenceUpdate {
            room_id,
            user_id: conn.user_id,
            display_name: conn.display_name.clone(),
            status: PresenceStatus::Online,
        };
        push_to_room(app, room_id, &event, Some(conn.user_id)).await;
    }
    Ok(())
}

async fn leave_room(app: &App, conn: &ConnectionInfo, room_id: Uuid) -> Result<(), WsError> {
    if !conn.rooms.contains(&room_id) {
        return Ok(());
    }
    app.connections.leave(&conn.id, room_id).await.map_err(|_| WsError::unavailable("the connection registry"))?;
    announce_if_gone(app, room_id, conn.user_id, &conn.display_name).await;
    Ok(())
}

async fn on_typing(app: &App, conn: &ConnectionInfo, room_id: Uuid, typing: bool) -> Result<(), WsError> {
    if !conn.rooms.contains(&room_id) {
        return Err(WsError::not_member(room_id));
    }
    // Repeated starts are throttled so a chatty client cannot flood the room; a stop always
    // goes through and re-arms the next start. Without Redis, unthrottled.
    let throttle = if typing {
        app.redis.typing_allowed(conn.user_id, room_id, TYPING_THROTTLE).await
    } else {
        app.redis.typing_stopped(conn.user_id, room_id).await.map(|()| true)
    };
    match throttle {
        Ok(false) => return Ok(()),
        Ok(true) => {}
        Err(e) => tracing::warn!(error = %e, "typing throttle skipped"),
    }
    let event = ServerEvent::Typing { room_id, user_id: conn.user_id, display_name: conn.display_name.clone(), typing };
    push_to_room(app, room_id, &event, Some(conn.user_id)).await;
    Ok(())
}

/// A new message with its turn in the room and its place in the writer's queue.
struct QueuedMessage {
    room_id: Uuid,
    client_msg_id: ClientMsgId,
    at: chrono::DateTime<chrono::Utc>,
    turn: Turn,
    write: PendingWrite,
}

/// Checks a new message (validate → rate-limit) and queues it for storage behind the room's
/// earlier messages; [`QueuedMessage::finish`] does the rest (store encrypted → `ack` →
/// `new_message` to the room, in stored order).
async fn queue_message(
    app: &App,
    conn: &ConnectionInfo,
    room_id: Uuid,
    body: &str,
    client_msg_id: &str,
    reply_to: Option<Uuid>,
    attachment: Option<Uuid>,
) -> Result<QueuedMessage, WsError> {
    let body = MessageBody::parse(body).map_err(|e| WsError::bad_request(e.to_string()))?;
    let client_msg_id = ClientMsgId::parse(client_msg_id).map_err(|e| WsError::bad_request(e.to_string()))?;

    let now = app.clock.now();
    let now_ms = now.timestamp_millis();
    let subject = format!("msg:{}", conn.user_id);
    let event_id = Uuid::new_v4().to_string();
    match app.redis.rate_limit(&subject, now_ms, RATE_WINDOW, app.config.rate_limit_per_min, &event_id).await {
        Ok(RateDecision::Allowed) => {}
        Ok(RateDecision::Limited { retry_after_ms }) => {
            return Err(WsError {
                retry_after_ms: Some(retry_after_ms),
                ..WsError::new(
                    WsErrorCode::RateLimited,
                    format!("at most {} messages a minute; wait a moment", app.config.rate_limit_per_min),
                )
            });
        }
        // Losing the limiter must not stop the conversation.
        Err(e) => tracing::warn!(error = %e, "rate limit skipped"),
    }

    let mut turn = app.room_order.enter(room_id);
    turn.wait_queued_before().await;
    let write = app.message_writer.submit(MessageDraft {
        room_id,
        kind: MessageKind::User,
        author_id: Some(conn.user_id),
        body: body.into_inner(),
        client_msg_id: Some(client_msg_id.as_str().to_owned()),
        require_member: Some(conn.user_id),
        at: app.clock.now(),
        reply_to,
        stopped: false,
        attachment_id: attachment,
    });
    turn.mark_queued();
    Ok(QueuedMessage { room_id, client_msg_id, at: now, turn, write })
}

impl QueuedMessage {
    /// Waits for the commit, then, after the room's earlier messages, acknowledges the message
    /// and sends it to the room.
    async fn finish(self, app: &App, conn: &ConnectionInfo) -> Result<(), WsError> {
        let QueuedMessage { room_id, client_msg_id, at: now, mut turn, write } = self;
        let stored = write.outcome().await.map_err(db_error)?;
        match stored {
            // Refused by the insert: muted, or not a member — the rare path says which.
            Stored::NotMember => {
                drop(turn);
                match crate::adapters::postgres::moderation::muted_until(&app.db, room_id, conn.user_id, now)
                    .await
                    .map_err(db_error)?
                {
                    Some(until) => Err(WsError {
                        retry_after_ms: Some((until - now).num_milliseconds().max(1) as u64),
                        until: Some(until),
                        ..WsError::new(
                            WsErrorCode::Muted,
                            format!("you are muted in this room until {} UTC", until.format("%H:%M")),
                        )
                    }),
                    None => Err(not_member(app, room_id, conn.user_id).await),
                }
            }
            Stored::Duplicate(message_id) => {
                drop(turn);
                let ack = ServerEvent::Ack { client_msg_id: client_msg_id.into_inner(), message_id };
                send_event(app, conn.into(), &ack).await;
                Ok(())
            }
            Stored::New(message) => {
                tracing::info!(%room_id, seq = message.seq, "message stored");
                turn.wait_done_before().await;
                let ack = ServerEvent::Ack { client_msg_id: client_msg_id.into_inner(), message_id: message.id };
                send_event(app, conn.into(), &ack).await;
                let (message_id, asks_mathia) = (message.id, ai::mentions_mathia(&message.body));
                push_to_room(app, room_id, &ServerEvent::NewMessage { room_id, message: *message }, None).await;
                drop(turn);
                crate::moderation::buffer(app, room_id, message_id).await;
                if asks_mathia {
                    ai::request_reply(app, room_id, message_id, conn.user_id).await?;
                }
                Ok(())
            }
        }
    }
}
