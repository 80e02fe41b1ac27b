//! Being in a room: `join_room` (history, who is online, where you left off, missed reminders), `leave_room`, and
//! typing indicators.

use std::time::Duration;

use uuid::Uuid;

use crate::{
    access,
    adapters::postgres::{
        attention,
        messages::{self, Cursor},
        moderation,
    },
    app::App,
    domain::OnlineUser,
    error::Error,
    ports::ConnectionInfo,
    protocol::{PresenceStatus, ServerEvent},
    realtime::{announce_if_gone, push_to_room, send_event},
};

/// How many messages `room_joined` carries.
pub const JOIN_HISTORY: i64 = 50;
const TYPING_THROTTLE: Duration = Duration::from_millis(1000);
/// Name changes a person may make in a minute: each one is announced to every room their open
/// sockets are in.
pub const RENAMES_PER_MINUTE: u32 = 10;

/// Subscribes the connection to the room, sends it `room_joined`, and tells the room the person
/// is online when this is their first connection in it.
pub async fn join(app: &App, conn: &ConnectionInfo, room_id: Uuid) -> crate::Result<()> {
    access::require_member(app, room_id, conn.user_id).await?;
    let already_here = app.connections.in_room(room_id).await?.iter().any(|c| c.user_id == conn.user_id);
    app.connections.join(&conn.id, room_id).await?;
    let mut online: Vec<OnlineUser> = Vec::new();
    for c in app.connections.in_room(room_id).await? {
        if !online.iter().any(|o| o.user_id == c.user_id) {
            online.push(OnlineUser { user_id: c.user_id, display_name: c.display_name });
        }
    }
    // The whole event stays under the frame limit: who is online takes its share first.
    let online_bytes = serde_json::to_vec(&online).map_or(0, |v| v.len());
    let budget = messages::PAGE_MAX_BYTES.saturating_sub(online_bytes);
    let page = messages::page_within(&app.db, &app.keyring, room_id, Cursor::Latest, JOIN_HISTORY, budget).await?;
    // The counts go with the page: up to its newest message (the page always holds the newest,
    // so an empty page is an empty room). Anything later reaches this connection as
    // `new_message`, since it was subscribed before the page was read.
    let newest = page.messages.iter().map(|m| m.seq).max().unwrap_or(0);
    let standing = attention::standing_until(&app.db, conn.user_id, room_id, Some(newest)).await?;
    let event = ServerEvent::RoomJoined {
        room_id,
        messages: page.messages,
        online,
        has_more: page.more,
        last_read_seq: standing.map_or(0, |s| s.last_read_seq),
        unread_count: standing.map_or(0, |s| s.unread_count),
        mention_count: standing.map_or(0, |s| s.mention_count),
    };
    send_event(app, conn.into(), &event).await;
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

pub async fn leave(app: &App, conn: &ConnectionInfo, room_id: Uuid) -> crate::Result<()> {
    if !conn.rooms.contains(&room_id) {
        return Ok(());
    }
    app.connections.leave(&conn.id, room_id).await?;
    announce_if_gone(app, room_id, conn.user_id, &conn.display_name).await;
    Ok(())
}

/// Tells the room someone started or stopped typing. Repeated starts are throttled so a chatty
/// client cannot flood the room; a stop always goes through and re-arms the next start. Without
/// Redis, unthrottled.
pub async fn typing(app: &App, conn: &ConnectionInfo, room_id: Uuid, typing: bool) -> crate::Result<()> {
    if !conn.rooms.contains(&room_id) {
        return Err(Error::not_member());
    }
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

/// A person changed their display name: their open sockets carry the new one from now on (in
/// `typing` and `presence_update`), and each room those sockets are in hears `presence_update`
/// `online` with it, so who is online shows the new name at once. Not the rooms where the person
/// is muted: a muted person does not change the room (they see the new name when they next
/// join). The name is already saved; a registry or push failure only delays what others see.
pub async fn renamed(app: &App, user_id: Uuid, display_name: &str) {
    let rooms = match app.connections.rename(user_id, display_name).await {
        Ok(rooms) => rooms,
        Err(e) => {
            tracing::warn!(error = %e, "cannot rename open connections");
            return;
        }
    };
    let now = app.clock.now();
    for room_id in rooms {
        match moderation::muted_until(&app.db, room_id, user_id, now).await {
            Ok(None) => {}
            Ok(Some(_)) => continue,
            Err(e) => {
                tracing::warn!(%room_id, error = %e, "cannot check a mute; the rename is not announced there");
                continue;
            }
        }
        let event = ServerEvent::PresenceUpdate {
            room_id,
            user_id,
            display_name: display_name.to_owned(),
            status: PresenceStatus::Online,
        };
        push_to_room(app, room_id, &event, None).await;
    }
}
