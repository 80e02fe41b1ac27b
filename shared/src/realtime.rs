//! Sending events to connections, rooms and users, forgetting connections that are gone (their
//! departures written down so a process cut off midway leaves them to the scheduler), and
//! the socket tickets and logout marks a handshake is checked against.

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use futures::{StreamExt, future::join_all};
use uuid::Uuid;

use crate::{
    adapters::redis::{RedisDown, SocketTicket, TakenTicket},
    app::App,
    domain::ConnectionId,
    limits,
    ports::{ConnectionInfo, Frame, PushError, Recipient, RegistryError, RoomConnection},
    protocol::{PresenceStatus, ServerEvent},
};

/// Sends to one connection; a gone connection is noted for the scheduler ([`note_gone`]).
pub async fn push_to(app: &App, to: Recipient<'_>, frame: &Frame) -> bool {
    push_checked(app, to, frame, false).await
}

/// How long after its `$connect` registered it a connection may not be open yet: API Gateway
/// opens it once `$connect` has answered (within its 29 s integration timeout), and a push
/// before that is answered 410, as for a closed one (the emulated gateway and `mathia-local`'s
/// do the same before the socket is attached).
pub const STILL_OPENING: chrono::Duration = chrono::Duration::seconds(30);

/// [`push_to`], for a connection that may still be opening ([`STILL_OPENING`]): a 410 then is not
/// taken as gone. Noted, the connection was skipped by this process's pushes for a minute and
/// forgotten by the scheduler, so a socket that opened while a read marker was pushed to its
/// person's sockets never heard an answer.
async fn push_checked(app: &App, to: Recipient<'_>, frame: &Frame, opening: bool) -> bool {
    if app.gone.is_gone(to.id, Instant::now()) {
        return false;
    }
    match app.push.send(to, frame).await {
        // Its `$disconnect` forgets it if it never opens.
        Err(PushError::Gone) if opening => false,
        result => settle(app, to.id, result).await,
    }
}

/// After a push: a gone connection noted (once per process, see
/// [`crate::gone::GoneConnections`]), a failure logged; true when it was sent.
async fn settle(app: &App, connection: &ConnectionId, result: Result<(), PushError>) -> bool {
    match result {
        Ok(()) => true,
        Err(PushError::Gone) => {
            if app.gone.first_report(connection, Instant::now()) {
                note_gone(app, connection).await;
            }
            false
        }
        Err(PushError::Other(e)) => {
            tracing::debug!(%connection, "push failed");
            tracing::warn!(error = %e, "push failed");
            false
        }
    }
}

/// How long a connection a push found gone is left to its own `$disconnect` before the
/// scheduler forgets it ([`settle_departures`]).
pub const GONE_LEFT_TO_ITS_DISCONNECT: chrono::Duration = chrono::Duration::seconds(5);

/// A push found a connection gone: Redis notes it, and the scheduler forgets it (telling its
/// rooms) if it is still registered [`GONE_LEFT_TO_ITS_DISCONNECT`] later. It is not forgotten
/// here: its `$disconnect` normally comes within a second, and forgetting tells its rooms, whose
/// pushes find the others gone when a room empties at once, each forgotten in turn in the same
/// call; a function answering one departure worked through the whole room's, a room's size in
/// pushes for each, and was stopped at its timeout.
async fn note_gone(app: &App, connection: &ConnectionId) {
    let at_ms = app.clock.now().timestamp_millis();
    if let Err(e) = app.redis.connection_gone(connection.as_str(), at_ms).await {
        tracing::warn!(error = %e, "cannot note a gone connection; its $disconnect or the sweep forgets it");
    }
}

pub async fn send_event(app: &App, to: Recipient<'_>, event: &ServerEvent) -> bool {
    push_to(app, to, &Frame::json(event)).await
}

/// Sends to every connection subscribed to a room, optionally skipping one user's.
pub async fn push_to_room(app: &App, room_id: Uuid, event: &ServerEvent, except_user: Option<Uuid>) {
    let connections = match app.connections.in_room(room_id).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(%room_id, error = %e, "cannot list the room's connections");
            return;
        }
    };
    push_to_connections(app, &connections, event, except_user).await;
}

/// Sends to a room's connections as the caller read them, except `except_user`'s: for a caller
/// that read who is in the room for a reason of its own (presence), so the room is read once.
pub async fn push_to_connections(
    app: &App,
    connections: &[RoomConnection],
    event: &ServerEvent,
    except_user: Option<Uuid>,
) {
    let frame = Frame::json(event);
    let mut to: Vec<Recipient<'_>> =
        connections.iter().filter(|c| Some(c.user_id) != except_user).map(Recipient::from).collect();
    app.gone.drop_gone(&mut to, |c| c.id, Instant::now());
    // One call for the whole room: sockets held here get the frame under one lock.
    let results = app.push.send_many(&to, &frame).await;
    join_all(to.iter().zip(results).filter(|(_, r)| r.is_err()).map(|(c, r)| settle(app, c.id, r))).await;
}

/// Sends to every connection of a user; false when they have none (they are offline). One
/// registered moments ago may not be open yet ([`push_checked`]); a room's connections have
/// joined it with a frame, so they were open.
pub async fn push_to_user(app: &App, user_id: Uuid, event: &ServerEvent) -> bool {
    let connections = match app.connections.of_user(user_id).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(%user_id, error = %e, "cannot list the user's connections");
            return false;
        }
    };
    let frame = Frame::json(event);
    let now = app.clock.now();
    let delivered =
        join_all(connections.iter().map(|c| push_checked(app, c.into(), &frame, now - c.connected_at < STILL_OPENING)))
            .await;
    delivered.into_iter().any(|ok| ok)
}

/// Stores a system message (reminders, mutes) and sends it to the room, in stored order.
pub async fn post_system_message(app: &App, room_id: Uuid, body: &str) -> crate::Result<()> {
    use crate::adapters::postgres::messages::{self, NewMessage, Stored};
    let _in_order = app.room_order.lock(room_id).await;
    let new = NewMessage::system(room_id, body, app.clock.now());
    if let Stored::New(message) = messages::store_one(&app.db, &app.keyring, new).await? {
        push_to_room(app, room_id, &ServerEvent::NewMessage { room_id, message: *message }, None).await;
    }
    Ok(())
}

/// Ends a session's sockets (a logout): each connection opened with that session is closed
/// (API Gateway's DeleteConnection, or the local gateway's close) and forgotten, so frames still
/// in flight from it find no connection and do nothing.
pub async fn end_session(app: &App, user_id: Uuid, session: &str) {
    let connections = match app.connections.of_user(user_id).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(%user_id, error = %e, "cannot list the user's connections");
            return;
        }
    };
    // Forgotten before closed: a gateway that attaches a socket after registering it looks the
    // socket up once attached, so one this close misses (not yet attached) finds itself gone.
    for c in connections.iter().filter(|c| c.session.as_deref() == Some(session)) {
        forget_connection(app, &c.id).await;
        if let Err(PushError::Other(e)) = app.push.close(c.into()).await {
            tracing::warn!(error = %e, "cannot close a logged-out socket");
        }
    }
}

/// Marks a session ended, before it is revoked and its sockets are listed ([`end_session`]): in
/// Redis, where taking a ticket fetched with it refuses it, and in a registry that keeps marks.
/// A handshake that registers a socket while the logout runs then sees the mark
/// ([`session_ended`]). The marks outlive any ticket fetched with the session, with room for a
/// ticket request that was slow to store its ticket. With Redis down the logout goes on: no
/// ticket can be taken then either.
pub async fn mark_session_ended(app: &App, session: &str) {
    let ttl = app.config.ticket_ttl + Duration::from_secs(60);
    app.connections.mark_session_ended(session, ttl).await;
    if let Err(e) = app.redis.end_session_tickets(session, ttl).await {
        tracing::warn!(error = %e, "cannot mark the session's tickets ended; revoking it anyway");
    }
}

/// Keeps a one-time socket ticket (by its hash) for `ttl`: in memory in the process that also
/// takes it (`mathia-local`), in Redis where another process will (the Lambda functions, the
/// emulated gateways).
pub async fn issue_ticket(
    app: &App,
    ticket_hash: String,
    ticket: SocketTicket,
    ttl: Duration,
) -> Result<(), RedisDown> {
    match &app.tickets {
        Some(tickets) => {
            tickets.put(ticket_hash, ticket, ttl);
            Ok(())
        }
        None => app.redis.put_session_ticket(&ticket_hash, &ticket, ttl).await,
    }
}

/// Takes a ticket ([`issue_ticket`]): the first caller within its time gets what it was issued
/// with; every later one None, and so does a ticket whose session was marked ended
/// ([`mark_session_ended`]) since it was issued.
pub async fn take_ticket(app: &App, ticket_hash: &str) -> Result<Option<TakenTicket>, RedisDown> {
    let Some(tickets) = &app.tickets else {
        return app.redis.take_session_ticket(ticket_hash).await;
    };
    let Some(SocketTicket { user_id, session, display_name }) = tickets.take(ticket_hash) else {
        return Ok(None);
    };
    if session_ended(app, &session).await? {
        return Ok(None);
    }
    Ok(Some(TakenTicket { user_id, session: Some(session), display_name: Some(display_name) }))
}

/// Whether a session was marked ended ([`mark_session_ended`]): asked of the registry when it
/// keeps the marks, otherwise of Redis.
pub async fn session_ended(app: &App, session: &str) -> Result<bool, RedisDown> {
    match app.connections.session_ended(session).await {
        Some(ended) => Ok(ended),
        None => app.redis.session_ended(session).await,
    }
}

/// Removes a connection from the registry and tells its rooms when its user is no longer there.
///
/// The departure is written down in Redis before the connection is removed and crossed off once
/// its rooms are told, so a process cut off in between (a Lambda stopped at its timeout) does not
/// leave the person listed as online: the scheduler tells what was left
/// ([`settle_departures`]).
pub async fn forget_connection(app: &App, connection: &ConnectionId) -> Option<ConnectionInfo> {
    let known = match app.connections.get(connection).await {
        Ok(Some(info)) => info,
        Ok(None) => return None,
        Err(e) => {
            tracing::debug!(%connection, "cannot read connection");
            tracing::error!(error = %e, "cannot read connection");
            return None;
        }
    };
    let (user_id, rooms) = (known.user_id, known.rooms.iter().copied().collect::<Vec<_>>());
    let at_ms = app.clock.now().timestamp_millis();
    if let Err(e) = app.redis.departure_begun(connection.as_str(), user_id, &rooms, at_ms).await {
        tracing::debug!(error = %e, "cannot write down a departure");
    }
    let removed = match app.connections.remove(connection).await {
        Ok(removed) => removed,
        Err(e) => {
            // Left written down: the scheduler forgets it again.
            tracing::debug!(%connection, "cannot remove connection");
            tracing::error!(error = %e, "cannot remove connection");
            return None;
        }
    };
    // Removed here, the rooms are told here; removed by another caller meanwhile, by that one.
    if let Some(info) = &removed {
        for room_id in &info.rooms {
            announce_if_gone(app, *room_id, info.user_id, &info.display_name).await;
        }
    }
    if let Err(e) = app.redis.departure_ended(connection.as_str(), user_id, &rooms).await {
        tracing::debug!(error = %e, "cannot cross off a departure");
    }
    removed
}

/// How long forgetting a connection may take before the scheduler takes its departure as cut
/// off: past the socket functions' timeout (30 s), where Lambda stops them. One still running in
/// a function with a longer timeout is told twice at worst.
pub const DEPARTURE_CUT_OFF_AFTER: chrono::Duration = chrono::Duration::seconds(60);

/// Gone connections, and cut-off departures, the scheduler takes in one tick (each).
const SETTLED_PER_TICK: usize = 500;

/// Gone connections, and cut-off departures, settled at once within a tick.
const SETTLING_AT_ONCE: usize = 16;

/// What [`settle_departures`] did in one tick.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    /// Connections a push found gone that were still registered, now forgotten.
    pub gone_forgotten: usize,
    /// Departures whose forgetting was cut off ([`forget_connection`]), taken back.
    pub cut_off: usize,
}

/// The scheduler's part in departures, before it tells the untold presence changes. A
/// connection a push found gone and still registered is forgotten ([`note_gone`]). A departure
/// left written down (whoever forgot the connection was cut off, [`forget_connection`]) is
/// finished: a connection still registered is forgotten again; one already removed leaves its
/// rooms to [`tell_untold_presence`], which tells a room that heard the person arrive that they
/// left, if they are gone.
pub async fn settle_departures(app: &App) -> Settled {
    let now = app.clock.now();
    let mut settled = Settled::default();
    let gone =
        app.redis.take_gone_connections((now - GONE_LEFT_TO_ITS_DISCONNECT).timestamp_millis(), SETTLED_PER_TICK).await;
    let gone = taken_or_none(gone, "gone connections");
    // Side by side, a few at a time: each forget is a few registry calls and a presence
    // announcement, round trips that on AWS would make a tick of 500 take many seconds in a row.
    settled.gone_forgotten = futures::stream::iter(gone)
        .map(|connection| async move { forget_and_close(app, &ConnectionId::new(connection)).await })
        .buffer_unordered(SETTLING_AT_ONCE)
        .filter(|forgotten| std::future::ready(*forgotten))
        .count()
        .await;
    let cut_off =
        app.redis.take_cut_off_departures((now - DEPARTURE_CUT_OFF_AFTER).timestamp_millis(), SETTLED_PER_TICK).await;
    let cut_off = taken_or_none(cut_off, "cut-off departures");
    settled.cut_off = cut_off.len();
    let mut by_connection: std::collections::BTreeMap<String, Vec<(Uuid, Uuid)>> = Default::default();
    for (room_id, user_id, connection) in cut_off {
        by_connection.entry(connection).or_default().push((room_id, user_id));
    }
    futures::stream::iter(by_connection)
        .for_each_concurrent(SETTLING_AT_ONCE, |(connection, rooms)| async move {
            finish_cut_off(app, &ConnectionId::new(connection), rooms).await
        })
        .await;
    settled
}

/// Finishes one departure that was cut off: a connection still registered is forgotten again,
/// whole; one already removed leaves its rooms to be told.
async fn finish_cut_off(app: &App, connection: &ConnectionId, rooms: Vec<(Uuid, Uuid)>) {
    match app.connections.get(connection).await {
        Ok(Some(_)) => {
            forget_and_close(app, connection).await;
        }
        Ok(None) => {
            for (room_id, user_id) in rooms {
                if let Err(e) = app.redis.presence_untold(room_id, user_id).await {
                    tracing::warn!(%room_id, error = %e, "cannot leave a cut-off departure to be told");
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read a connection whose departure was cut off"),
    }
}

/// What a take from Redis answered; nothing when Redis is down (the next tick takes it).
fn taken_or_none<T>(taken: Result<Vec<T>, RedisDown>, what: &str) -> Vec<T> {
    taken.unwrap_or_else(|e| {
        tracing::debug!(error = %e, what, "cannot take from Redis");
        Vec::new()
    })
}

/// Forgets a connection and closes its socket if it has one still; true when it was registered.
async fn forget_and_close(app: &App, connection: &ConnectionId) -> bool {
    let Some(info) = forget_connection(app, connection).await else {
        return false;
    };
    if let Err(PushError::Other(e)) = app.push.close((&info).into()).await {
        tracing::debug!(error = %e, "cannot close a forgotten socket");
    }
    true
}

/// Says `offline` to a room when the user has no connection left in it. Who is left is read
/// once: it answers whether the user is gone and is who hears it (a room of a thousand emptying
/// reads a million registry items, not two million).
pub async fn announce_if_gone(app: &App, room_id: Uuid, user_id: Uuid, display_name: &str) {
    let room = match read_presence(app, room_id).await {
        Ok(room) => room,
        Err(e) => {
            tracing::error!(%room_id, error = %e, "cannot list the room's connections");
            return;
        }
    };
    if !room.here.iter().any(|c| c.user_id == user_id) {
        announce_presence(app, &room, room_id, user_id, display_name, PresenceStatus::Offline).await;
    }
}

/// Who is in a room, read for a presence announcement, and the room's presence number taken
/// just before the read ([`read_presence`]).
pub struct RoomPresence {
    pub here: Vec<RoomConnection>,
    pub seq: Option<u64>,
}

/// Reads who is in a room to announce a change to it: the room's next presence number first
/// (Redis, `presence-seq`), then the registry. A change to the registry comes before the number
/// its announcement takes, so the read that took the highest number saw every change with a
/// lower one, and its count is right however the announcements overtake one another on the way
/// (each is sent by whichever handler or function made its change: a room emptying at once
/// showed five people left when an early count arrived last). Clients keep the count of the
/// highest number they heard. Without Redis there is no number, and a client takes each count as
/// it comes.
pub async fn read_presence(app: &App, room_id: Uuid) -> Result<RoomPresence, RegistryError> {
    let seq = match app.redis.presence_seq(room_id, app.clock.now().timestamp_millis()).await {
        Ok(seq) => Some(seq),
        Err(e) => {
            tracing::debug!(error = %e, "presence not numbered: Redis unavailable");
            None
        }
    };
    Ok(RoomPresence { here: app.connections.in_room(room_id).await?, seq })
}

/// How many sockets a person has open, as the connection registry says; None when it cannot say
/// (logged). The handshake and the ticket endpoint hold a person to `MATHIA_SOCKETS_PER_PERSON`
/// with it, and a registry that cannot answer refuses nobody.
pub async fn sockets_open(app: &App, user_id: Uuid) -> Option<usize> {
    match app.connections.of_user(user_id).await {
        Ok(open) => Some(open.len()),
        Err(e) => {
            tracing::warn!(error = %e, "cannot count the person's sockets");
            None
        }
    }
}

/// Presence changes of one person that a room hears in a minute. Each goes to everyone in the
/// room; a person who reconnects now and then makes two a time, a client leaving and joining in
/// a loop would make one per frame.
const PRESENCE_CHANGES_PER_MINUTE: u32 = 20;

/// Tells a room someone came or went, within [`PRESENCE_CHANGES_PER_MINUTE`] per person and room
/// (the per-person limiter, `limits`: in memory in `mathia-local`, in Redis on Lambda, open
/// without Redis). Past it an arrival is not told at once: Redis remembers it, and the scheduler
/// tells it once the budget allows if the person is still there ([`tell_untold_presence`]). A
/// departure whose arrival the room was told is told whatever the budget (Redis remembers which
/// arrivals were told), so nobody stays listed as online after they left: a room hears at most
/// one departure past the budget for each arrival within it. It goes to the room's connections
/// as the caller just read them ([`read_presence`]), with the number the read took. True when
/// it was told.
pub async fn announce_presence(
    app: &App,
    room: &RoomPresence,
    room_id: Uuid,
    user_id: Uuid,
    display_name: &str,
    status: PresenceStatus,
) -> bool {
    let counter = format!("presence:{room_id}");
    let now = app.clock.now();
    let within = limits::limit_per_minute(app, &counter, "presence changes", user_id, now, PRESENCE_CHANGES_PER_MINUTE)
        .await
        .is_ok();
    // Redis is asked between the read and the push only past the budget, so announcements
    // rarely wait there; those that overtake one another anyway are set right by their numbers
    // (`read_presence`).
    let owed = !within
        && status == PresenceStatus::Offline
        && app.redis.take_arrival_heard(room_id, user_id).await.unwrap_or_else(|e| {
            tracing::debug!(error = %e, "cannot tell whether the room heard the arrival");
            false
        });
    if !within && !owed {
        // The scheduler looks again: an arrival is told once the budget allows, and a departure
        // whose arrival the room turns out to have heard (kept just after this read, below) is
        // told then.
        if let Err(e) = app.redis.presence_untold(room_id, user_id).await {
            tracing::debug!(error = %e, "cannot remember an untold presence change");
        }
        return false;
    }
    let event = ServerEvent::PresenceUpdate {
        room_id,
        user_id,
        display_name: display_name.to_owned(),
        status,
        online_count: online_after(&room.here, user_id, status),
        presence_seq: room.seq,
    };
    push_to_connections(app, &room.here, &event, Some(user_id)).await;
    // What the room heard, kept after the push. A departure past the budget in the moment
    // between the two finds nothing to take, and is told by the scheduler's next tick
    // ([`tell_untold_presence`]); one within it is told anyway.
    let kept = match status {
        PresenceStatus::Online => app.redis.arrival_heard(room_id, user_id).await,
        PresenceStatus::Offline if within => app.redis.take_arrival_heard(room_id, user_id).await.map(drop),
        PresenceStatus::Offline => Ok(()),
    };
    if let Err(e) = kept {
        tracing::debug!(error = %e, "cannot keep what the room heard of the person");
    }
    true
}

/// Untold presence changes the scheduler takes in one tick.
const UNTOLD_PER_TICK: usize = 500;

/// What [`tell_untold_presence`] told in one tick.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Told {
    pub arrivals: usize,
    pub departures: usize,
}

/// Tells the presence changes that went untold past a person's budget (see
/// [`announce_presence`]), within the budget again, so one refused again waits for the next
/// tick. An arrival is told when the person is still in the room and the room has not heard them
/// arrive since. A departure is told when the person is gone and the room still has their
/// arrival as heard: it was kept just after their departure looked for it, so nobody stays
/// listed as online after they left. Run by the scheduler.
pub async fn tell_untold_presence(app: &App) -> Told {
    let untold = match app.redis.take_untold_presence(UNTOLD_PER_TICK).await {
        Ok(untold) => untold,
        Err(e) => {
            tracing::debug!(error = %e, "cannot take untold presence changes");
            return Told::default();
        }
    };
    let mut told = Told::default();
    for (room_id, user_id) in untold {
        match tell_untold(app, room_id, user_id).await {
            Ok(Some(PresenceStatus::Online)) => told.arrivals += 1,
            Ok(Some(PresenceStatus::Offline)) => told.departures += 1,
            Ok(None) => {}
            Err(e) => {
                // Back in the set for the next tick.
                tracing::warn!(%room_id, error = %e, "cannot tell an untold presence change yet");
                if let Err(e) = app.redis.presence_untold(room_id, user_id).await {
                    tracing::debug!(error = %e, "cannot remember an untold presence change");
                }
            }
        }
    }
    told
}

/// One untold change of one person in one room (see [`tell_untold_presence`]): what was told,
/// if anything.
async fn tell_untold(app: &App, room_id: Uuid, user_id: Uuid) -> crate::Result<Option<PresenceStatus>> {
    let heard = app.redis.arrival_was_heard(room_id, user_id).await?;
    let room = read_presence(app, room_id).await?;
    match (room.here.iter().find(|c| c.user_id == user_id), heard) {
        (Some(c), false) => {
            let name = c.display_name.clone();
            if !announce_presence(app, &room, room_id, user_id, &name, PresenceStatus::Online).await {
                return Ok(None);
            }
            // A departure between the read and the arrival remembered found nothing to tell,
            // and was refused if past the budget: told here, as one that came after would be.
            announce_if_gone(app, room_id, user_id, &name).await;
            Ok(Some(PresenceStatus::Online))
        }
        (None, true) => {
            // Their name as it is now (clients drop a departure by its `user_id`); owed whatever
            // the budget, since the room heard the arrival.
            let name = crate::adapters::postgres::users::by_id(&app.db, user_id).await?.map(|u| u.display_name);
            let told =
                announce_presence(app, &room, room_id, user_id, &name.unwrap_or_default(), PresenceStatus::Offline)
                    .await;
            Ok(told.then_some(PresenceStatus::Offline))
        }
        // Heard and still here, or gone and never heard: the room is right.
        _ => Ok(None),
    }
}

/// How many people are online in a room whose connections are `here`, once `user_id`'s change
/// to `status` is counted: each person once, the arrival counted and the departure not, whatever
/// a racing join or leave put in the registry between the change and the read.
pub fn online_after(here: &[RoomConnection], user_id: Uuid, status: PresenceStatus) -> usize {
    let mut people: HashSet<Uuid> = here.iter().map(|c| c.user_id).collect();
    match status {
        PresenceStatus::Online => people.insert(user_id),
        PresenceStatus::Offline => people.remove(&user_id),
    };
    people.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(id: usize, user_id: Uuid) -> RoomConnection {
        RoomConnection { id: ConnectionId::new(format!("c{id}")), user_id, display_name: "x".into(), endpoint: None }
    }

    #[test]
    fn counts_each_person_once_the_change_included() {
        let (ana, ben, cat) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let here = [conn(1, ana), conn(2, ben), conn(3, ana), conn(4, ben)];
        assert_eq!(online_after(&here, ana, PresenceStatus::Online), 2);
        // An arrival the read did not see yet is counted; a departure it still saw is not.
        assert_eq!(online_after(&here, cat, PresenceStatus::Online), 3);
        assert_eq!(online_after(&here, ben, PresenceStatus::Offline), 1);
        assert_eq!(online_after(&here, cat, PresenceStatus::Offline), 2);
        assert_eq!(online_after(&[], ana, PresenceStatus::Offline), 0);
    }
}
