//! The WebSocket routes: `$connect` (`on_connect`), `$default` (`on_message`) and
//! `$disconnect` (`on_disconnect`), exactly as API Gateway invokes them. A frame is parsed here,
//! handed to its feature (`chat`, `ai`), and a failure becomes an `error` event.

use std::{
    collections::HashSet,
    pin::Pin,
    time::{Duration, Instant},
};

use tracing::Instrument;

use crate::{
    access,
    adapters::{
        postgres::users,
        redis::{FrameDecision, TakenTicket},
    },
    ai,
    app::App,
    chat::{self, post::Post},
    domain::ConnectionId,
    error::Error,
    ports::ConnectionInfo,
    protocol::{ClientAction, ServerEvent, WsError, WsErrorCode, frame_ref, parse_frame},
    realtime::{forget_connection, send_event, session_ended, sockets_open, take_ticket},
};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConnectError {
    #[error("missing, used or expired ticket")]
    Unauthorized,
    #[error("a dependency is unavailable")]
    Unavailable,
    /// The person already has `MATHIA_SOCKETS_PER_PERSON` sockets open.
    #[error("too many sockets open for this person")]
    TooManySockets,
}

/// `$connect`: spends the one-time ticket and registers the connection, with the session the
/// ticket was fetched with (a logout closes that session's sockets), unless the person already
/// has as many sockets open as one may (`MATHIA_SOCKETS_PER_PERSON`). A ticket whose session has
/// ended since is refused: by its logout's mark (`realtime::take_ticket`), by the ticket's own
/// expiry (never past the session's) for the session's end. The ticket carries the display name, so a handshake reads
/// no database; only a ticket an older build stored is checked in Postgres.
#[tracing::instrument(level = "debug", skip(app, ticket), fields(%connection))]
pub async fn on_connect(app: &App, connection: &ConnectionId, ticket: Option<&str>) -> Result<(), ConnectError> {
    let ticket = ticket.filter(|t| !t.is_empty() && t.len() <= 128).ok_or(ConnectError::Unauthorized)?;
    let taken = take_ticket(app, &crate::tokens::hash_hex(ticket)).await.map_err(|e| {
        tracing::warn!(error = %e, "cannot check ticket");
        ConnectError::Unavailable
    })?;
    let TakenTicket { user_id, session, display_name } = taken.ok_or(ConnectError::Unauthorized)?;
    let display_name = match (display_name, &session) {
        (Some(name), Some(_)) => name,
        // Stored by an older build: the user, and the session still live, in one query.
        _ => users::connecting(&app.db, user_id, session.as_deref(), app.clock.now())
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "cannot check the user and session");
                ConnectError::Unavailable
            })?
            .ok_or(ConnectError::Unauthorized)?,
    };
    app.connections
        .register(ConnectionInfo {
            id: connection.clone(),
            user_id,
            display_name,
            rooms: HashSet::new(),
            connected_at: app.clock.now(),
            endpoint: app.own_endpoint.clone(),
            session: session.clone(),
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "cannot register connection");
            ConnectError::Unavailable
        })?;
    // A logout that began after the ticket was taken listed the session's sockets before this
    // one was registered. It marked the session ended before listing, so looking again now,
    // registered, closes the gap: either the logout's list has this socket, or this sees the mark.
    let ended = match session.as_deref() {
        Some(session) => session_ended(app, session).await,
        None => Ok(false),
    };
    let refused = match ended {
        Ok(false) => too_many_sockets(app, user_id).await.then_some(ConnectError::TooManySockets),
        Ok(true) => Some(ConnectError::Unauthorized),
        Err(e) => {
            tracing::warn!(error = %e, "cannot check the session");
            Some(ConnectError::Unavailable)
        }
    };
    if let Some(refused) = refused {
        if let Err(e) = app.connections.remove(connection).await {
            tracing::error!(error = %e, "cannot remove a refused connection");
        }
        return Err(refused);
    }
    tracing::info!(%user_id, "connected");
    Ok(())
}

/// Whether a person has more sockets open than one may, this one included. Counted once it is
/// registered, so that two handshakes at once cannot both slip under the bound (both may be
/// refused instead, and the client tries again). A registry that cannot answer does not refuse.
async fn too_many_sockets(app: &App, user_id: uuid::Uuid) -> bool {
    let open = sockets_open(app, user_id).await.unwrap_or(0);
    if open > app.config.sockets_per_person {
        tracing::warn!(%user_id, open, "socket refused: too many open");
    }
    open > app.config.sockets_per_person
}

/// `$disconnect`: forgets the connection and tells its rooms.
#[tracing::instrument(level = "debug", skip(app), fields(%connection))]
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
#[tracing::instrument(level = "debug", skip(app, raw), fields(%connection, bytes = raw.len()))]
pub async fn on_message_pipelined(app: &App, connection: &ConnectionId, raw: &str) -> Option<FrameRest> {
    let conn = match app.connections.get(connection).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            // A socket being closed (logout, overflow) may still have frames in flight.
            tracing::debug!("frame from an unknown connection");
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

/// A socket's frame budget, held by the gateway that reads it: a token bucket of `burst` frames
/// refilled at `per_s` a second. Every frame counts (any action, malformed or binary ones too).
#[derive(Debug, Clone)]
pub struct FrameBudget {
    per_s: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
    told_at: Option<Instant>,
}

/// What to do with one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Serve,
    /// Drop it; when `tell`, answer `rate_limited` (at most once per [`FrameBudget::TELL_EVERY`],
    /// so the refusals are not a flood of their own).
    Refuse {
        retry_after: Duration,
        tell: bool,
    },
}

impl FrameBudget {
    /// Frames a second a socket may send, sustained.
    pub const PER_S: u32 = crate::config::WS_FRAMES_PER_S;
    /// Frames a socket may send at once.
    pub const BURST: u32 = crate::config::WS_FRAME_BURST;
    /// At most one `rate_limited` per socket in this window.
    pub const TELL_EVERY: Duration = Duration::from_secs(1);

    pub fn new(per_s: u32, burst: u32) -> Self {
        let (per_s, burst) = (f64::from(per_s.max(1)), f64::from(burst.max(1)));
        Self { per_s, burst, tokens: burst, last: Instant::now(), told_at: None }
    }

    pub fn admit(&mut self, now: Instant) -> Admission {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_s).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Admission::Serve;
        }
        let retry_after = Duration::from_secs_f64((1.0 - self.tokens) / self.per_s).max(Duration::from_millis(1));
        let tell = self.told_at.is_none_or(|at| now.saturating_duration_since(at) >= Self::TELL_EVERY);
        if tell {
            self.told_at = Some(now);
        }
        Admission::Refuse { retry_after, tell }
    }
}

impl Default for FrameBudget {
    fn default() -> Self {
        Self::new(Self::PER_S, Self::BURST)
    }
}

/// Spends one frame of the socket's budget where no process holds the socket (Lambda, where
/// each frame is an invocation): the same token bucket as [`FrameBudget`], kept in Redis per
/// connection. Losing Redis serves the frame, as losing the message rate limit does.
pub async fn admit_shared(app: &App, connection: &ConnectionId) -> Admission {
    let (per_s, burst) = (app.config.ws_frames_per_s, app.config.ws_frame_burst);
    match app.redis.frame_budget(connection.as_str(), per_s, burst, FrameBudget::TELL_EVERY).await {
        Ok(FrameDecision::Serve) => Admission::Serve,
        Ok(FrameDecision::Refuse { retry_after_ms, tell }) => {
            Admission::Refuse { retry_after: Duration::from_millis(retry_after_ms), tell }
        }
        Err(e) => {
            tracing::warn!(error = %e, "frame budget skipped");
            Admission::Serve
        }
    }
}

/// A frame over the socket's budget: `rate_limited` with when to try again.
pub async fn on_throttled(app: &App, connection: &ConnectionId, retry_after: Duration) {
    let err = WsError::from(Error::RateLimited {
        retry_after,
        message: "too many frames on this connection; slow down".into(),
    });
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
            // The frame's reference is its `client_msg_id`: the frame is not parsed again.
            let queued = chat::post::queue(app, conn, post)
                .await
                .map_err(|e| WsError::from(e).with_ref(Some(&client_msg_id)))?;
            let (app, conn) = (app.clone(), conn.clone());
            let rest = async move {
                if let Err(e) = queued.finish(&app, &conn, after_store).await {
                    report(&app, &conn, WsError::from(e).with_ref(Some(&client_msg_id))).await;
                }
            };
            return Ok(Some(Box::pin(rest.in_current_span())));
        }
        ClientAction::Ping => {
            send_event(app, conn.into(), &ServerEvent::Pong).await;
            Ok(())
        }
        ClientAction::JoinRoom { room_id } => {
            return chat::presence::join(app, conn, room_id)
                .await
                .map(|()| None)
                .map_err(|e| WsError::from(e).in_room(room_id));
        }
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
        ClientAction::PinMessage { room_id, message_id } => {
            chat::pins::pin(app, conn.user_id, room_id, message_id).await
        }
        ClientAction::UnpinMessage { room_id, message_id } => {
            chat::pins::unpin(app, conn.user_id, room_id, message_id).await
        }
        ClientAction::MarkRead { room_id, seq } => {
            chat::read::mark_read(app, conn.user_id, room_id, seq).await.map(drop)
        }
        ClientAction::StopAi { room_id, stream_id } => match access::require_member(app, room_id, conn.user_id).await {
            Ok(()) => ai::request_stop(app, room_id, &stream_id).await,
            Err(e) => Err(e),
        },
        ClientAction::Regenerate { room_id, message_id } => {
            ai::regenerate::request(app, conn.user_id, room_id, message_id).await
        }
    };
    done.map(|()| None).map_err(WsError::from)
}

fn frame_ref_of(raw: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(raw).ok().and_then(|v| frame_ref(&v).map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_serves_a_burst_refills_and_tells_once_a_second() {
        let start = Instant::now();
        let mut budget = FrameBudget::new(10, 3);
        budget.last = start;
        for _ in 0..3 {
            assert_eq!(budget.admit(start), Admission::Serve);
        }
        let Admission::Refuse { retry_after, tell: true } = budget.admit(start) else { panic!("over the burst") };
        assert_eq!(retry_after, Duration::from_millis(100));
        assert!(matches!(budget.admit(start + Duration::from_millis(50)), Admission::Refuse { tell: false, .. }));
        assert_eq!(budget.admit(start + Duration::from_millis(150)), Admission::Serve, "refilled");
        assert!(matches!(budget.admit(start + Duration::from_millis(150)), Admission::Refuse { tell: false, .. }));
        assert!(matches!(budget.admit(start + Duration::from_millis(1000)), Admission::Serve));
        let later = start + Duration::from_millis(1000);
        while budget.admit(later) == Admission::Serve {}
        // That refusal was told (a second after the first); the next ones in this second are not.
        assert!(matches!(budget.admit(later), Admission::Refuse { tell: false, .. }), "told already this second");
        assert!(matches!(budget.admit(later + Duration::from_millis(1)), Admission::Refuse { tell: false, .. }));
        let second_later = later + Duration::from_secs(1);
        while budget.admit(second_later) == Admission::Serve {}
        assert!(matches!(budget.admit(second_later), Admission::Refuse { tell: false, .. }));
    }
}
