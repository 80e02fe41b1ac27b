//! Being in a room: `join_room` (history, who is online, where you left off, missed reminders), `leave_room`, and
//! typing indicators.

use std::{collections::HashSet, time::Duration};

use uuid::Uuid;

use crate::{
    access,
    adapters::{
        postgres::{
            attention,
            messages::{self, Cursor},
            moderation,
        },
        redis::TypingLimits,
    },
    app::App,
    domain::OnlineUser,
    error::Error,
    ports::{ConnectionInfo, RoomConnection},
    protocol::{PresenceStatus, ServerEvent},
    realtime::{
        announce_if_gone, announce_presence, online_after, push_to_connections, push_to_room, read_presence, send_event,
    },
};

/// How many messages `room_joined` carries.
pub const JOIN_HISTORY: i64 = 50;

/// How many of the people online `room_joined` names (`online_count` says how many there are).
/// A hundred names of at most 60 characters weigh under 32 KiB, leaving the history page most of
/// the frame.
pub const ONLINE_LISTED: usize = 100;

/// Who `room_joined` lists as online, and how many people are: the joiner first, then the
/// others by name, each person once however many sockets they have, at most [`ONLINE_LISTED`].
fn online_list(joiner: &ConnectionInfo, here: &[RoomConnection]) -> (Vec<OnlineUser>, usize) {
    let mut seen = HashSet::with_capacity(here.len() + 1);
    seen.insert(joiner.user_id);
    let mut others: Vec<OnlineUser> = here
        .iter()
        .filter(|c| seen.insert(c.user_id))
        .map(|c| OnlineUser { user_id: c.user_id, display_name: c.display_name.clone() })
        .collect();
    let count = others.len() + 1;
    if others.len() >= ONLINE_LISTED {
        others.select_nth_unstable_by(ONLINE_LISTED - 1, by_name);
        others.truncate(ONLINE_LISTED - 1);
    }
    others.sort_unstable_by(by_name);
    let mut online = Vec::with_capacity(others.len() + 1);
    online.push(OnlineUser { user_id: joiner.user_id, display_name: joiner.display_name.clone() });
    online.extend(others);
    (online, count)
}

fn by_name(a: &OnlineUser, b: &OnlineUser) -> std::cmp::Ordering {
    a.display_name.cmp(&b.display_name).then(a.user_id.cmp(&b.user_id))
}

/// How a person's typing reaches a room. The web client sends a start at most every 2 s while
/// someone types and shows it for 5 s; 20 signals in 10 s is more than anyone typing sends, and
/// bounds what a client sending starts and stops in a loop costs a room of a thousand.
const TYPING: TypingLimits = TypingLimits {
    every: Duration::from_millis(1000),
    shown_for: Duration::from_secs(6),
    budget: 20,
    window: Duration::from_secs(10),
};
/// Name changes a person may make in a minute: each one is announced to every room their open
/// sockets are in.
pub const RENAMES_PER_MINUTE: u32 = 10;

/// Subscribes the connection to the room, sends it `room_joined`, and tells the room the person
/// is online when this is their first connection in it.
pub async fn join(app: &App, conn: &ConnectionInfo, room_id: Uuid) -> crate::Result<()> {
    crate::limits::history_page(app, conn.user_id, app.clock.now()).await?;
    access::require_member(app, room_id, conn.user_id).await?;
    let already_here = app.connections.in_room(room_id).await?.iter().any(|c| c.user_id == conn.user_id);
    app.connections.join(&conn.id, room_id).await?;
    // Who is here now, the joiner included: listed in `room_joined`, and told of the arrival.
    let room = read_presence(app, room_id).await?;
    let (online, online_count) = online_list(conn, &room.here);
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
        online_count,
        presence_seq: room.seq,
        has_more: page.more,
        last_read_seq: standing.map_or(0, |s| s.last_read_seq),
        unread_count: standing.map_or(0, |s| s.unread_count),
        mention_count: standing.map_or(0, |s| s.mention_count),
    };
    send_event(app, conn.into(), &event).await;
    crate::reminders::deliver_missed(app, conn.user_id, &conn.id, conn.endpoint.as_deref()).await;
    if !already_here {
        announce_presence(app, &room, room_id, conn.user_id, &conn.display_name, PresenceStatus::Online).await;
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

/// Tells the room someone started or stopped typing, within [`TYPING`]'s limits (a stop only
/// while the others see them typing), and not while they are muted. Without Redis, nothing is
/// sent.
pub async fn typing(app: &App, conn: &ConnectionInfo, room_id: Uuid, typing: bool) -> crate::Result<()> {
    if !conn.rooms.contains(&room_id) {
        return Err(Error::not_member());
    }
    match app.redis.typing_signal(conn.user_id, room_id, typing, &TYPING).await {
        Ok(true) => {}
        Ok(false) => return Ok(()),
        // Nothing but an indicator is lost: without its limits, typing is not sent at all.
        Err(e) => {
            tracing::debug!(error = %e, "typing not sent: Redis unavailable");
            return Ok(());
        }
    }
    // A muted person is silent in the room, their typing too (a stop still goes: it only
    // clears). Read only for a start that would go, so a flood costs no more reads than that.
    if typing && moderation::muted_until(&app.db, room_id, conn.user_id, app.clock.now()).await?.is_some() {
        return Ok(());
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
        let room = match read_presence(app, room_id).await {
            Ok(room) => room,
            Err(e) => {
                tracing::warn!(%room_id, error = %e, "cannot list the room's connections; the rename is not announced there");
                continue;
            }
        };
        let event = ServerEvent::PresenceUpdate {
            room_id,
            user_id,
            display_name: display_name.to_owned(),
            status: PresenceStatus::Online,
            online_count: online_after(&room.here, user_id, PresenceStatus::Online),
            presence_seq: room.seq,
        };
        push_to_connections(app, &room.here, &event, None).await;
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::domain::ConnectionId;

    fn joiner(name: &str) -> ConnectionInfo {
        ConnectionInfo {
            id: ConnectionId::new("c-joiner"),
            user_id: Uuid::now_v7(),
            display_name: name.into(),
            rooms: HashSet::new(),
            connected_at: Utc::now(),
            endpoint: None,
            session: None,
        }
    }

    fn here(id: usize, user_id: Uuid, name: &str) -> RoomConnection {
        RoomConnection { id: ConnectionId::new(format!("c{id}")), user_id, display_name: name.into(), endpoint: None }
    }

    #[test]
    fn lists_each_person_once_the_joiner_first() {
        let me = joiner("Zoe");
        let (ana, ben) = (Uuid::now_v7(), Uuid::now_v7());
        let conns = vec![
            here(1, ben, "Ben"),
            here(2, me.user_id, "Zoe"),
            here(3, ana, "Ana"),
            here(4, ben, "Ben"),
            here(5, me.user_id, "Zoe"),
        ];
        let (online, count) = online_list(&me, &conns);
        let names: Vec<&str> = online.iter().map(|o| o.display_name.as_str()).collect();
        assert_eq!(names, ["Zoe", "Ana", "Ben"]);
        assert_eq!(online[1].user_id, ana);
        assert_eq!(count, 3);
    }

    #[test]
    fn a_crowded_room_lists_a_hundred_and_counts_everyone() {
        let me = joiner(&"😀".repeat(60));
        let mut conns: Vec<RoomConnection> =
            (0..2_000).map(|i| here(i, Uuid::now_v7(), &format!("{i:04}{}", "😀".repeat(56)))).collect();
        conns.push(here(9_999, me.user_id, &me.display_name));
        conns.reverse();
        let (online, count) = online_list(&me, &conns);
        assert_eq!(count, 2_001);
        assert_eq!(online.len(), ONLINE_LISTED);
        assert_eq!(online[0].user_id, me.user_id);
        // The others first by name: 0000…, 0001…, up to 0098….
        for (i, person) in online[1..].iter().enumerate() {
            assert!(person.display_name.starts_with(&format!("{i:04}")), "{i}: {}", person.display_name);
        }
        // Names of 60 four-byte characters, the most a name weighs: what is left for the history
        // page is most of the frame.
        let bytes = serde_json::to_vec(&online).unwrap().len();
        assert!(bytes < 32 * 1024, "{bytes} bytes");
    }
}
