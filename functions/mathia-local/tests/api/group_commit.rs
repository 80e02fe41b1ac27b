//! Group commit: messages arriving together are stored in one statement, and each sender
//! still gets exactly its own answer — stored with the next `seq`, refused, or a duplicate.

use std::collections::{HashMap, HashSet};

use chrono::{Duration, Utc};
use futures::future::join_all;
use mathia::{
    adapters::postgres::{
        messages::{self, Cursor, NewMessage, Stored},
        moderation,
    },
    domain::MessageKind,
};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::TestApp;

fn draft(room_id: Uuid, author: Uuid, body: &str, client_msg_id: &str) -> NewMessage {
    NewMessage {
        room_id,
        kind: MessageKind::User,
        author_id: Some(author),
        body: body.to_owned(),
        client_msg_id: Some(client_msg_id.to_owned()),
        require_member: Some(author),
        at: Utc::now(),
        reply_to: None,
        stopped: false,
        attachment_id: None,
    }
}

fn seq_of(stored: &Stored) -> i64 {
    match stored {
        Stored::New(m) => m.seq,
        other => panic!("expected a stored message, got {other:?}"),
    }
}

enum LockWaiter {
    Find,
    Terminate,
}

/// Waits (5 s at most) until a backend of this test's database waits on a lock, and with
/// `Terminate` ends it as a shutdown would. False if none came.
async fn lock_waiter(db: &sqlx::PgPool, what: LockWaiter) -> bool {
    let sql = match what {
        LockWaiter::Find => {
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        }
        LockWaiter::Terminate => {
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'"
        }
    };
    for _ in 0..200 {
        let found: i64 = sqlx::query_scalar(sql).fetch_one(db).await.unwrap();
        if found > 0 {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    false
}

#[tokio::test]
async fn one_batch_answers_each_message_on_its_own() {
    let t = TestApp::spawn().await;
    let app = &t.local.app;
    let (ana, bob, cleo, dan) =
        (t.register("Ana").await, t.register("Bob").await, t.register("Cleo").await, t.register("Dan").await);
    let room_a = t.create_room(&ana, "a").await;
    let room_b = t.create_room(&ana, "b").await;
    t.bring_in(&ana, room_a.id, &bob).await;
    t.bring_in(&ana, room_a.id, &dan).await;
    let now = Utc::now();
    moderation::mute(&app.db, room_a.id, dan.id, now + Duration::minutes(5), "test", now).await.unwrap();
    let earlier =
        match messages::store_one(&app.db, &app.keyring, draft(room_a.id, ana.id, "earlier", "dup")).await.unwrap() {
            Stored::New(m) => m,
            other => panic!("{other:?}"),
        };
    assert_eq!(earlier.seq, 1);

    let drafts = vec![
        draft(room_a.id, ana.id, "first", "1"),
        draft(room_a.id, bob.id, "second", "2"),
        draft(room_b.id, ana.id, "elsewhere", "3"),
        draft(room_a.id, cleo.id, "not a member", "4"),
        draft(room_a.id, dan.id, "muted", "5"),
        draft(room_a.id, ana.id, "resent", "dup"),
        draft(room_a.id, ana.id, "third", "6"),
        draft(Uuid::new_v4(), ana.id, "no such room", "7"),
    ];
    let stored = messages::store(&app.db, &app.keyring, &drafts).await.unwrap();
    assert_eq!(stored.len(), drafts.len());
    assert_eq!(seq_of(&stored[0]), 2);
    assert_eq!(seq_of(&stored[1]), 3);
    assert_eq!(seq_of(&stored[2]), 1, "each room has its own sequence");
    assert!(matches!(stored[3], Stored::NotMember));
    assert!(matches!(stored[4], Stored::NotMember), "a muted member is refused");
    assert!(matches!(stored[5], Stored::Duplicate(id) if id == earlier.id));
    assert_eq!(seq_of(&stored[6]), 4, "no seq is spent on a refused message");
    assert!(matches!(stored[7], Stored::NotMember));
    let Stored::New(bobs) = &stored[1] else { unreachable!() };
    assert_eq!(bobs.author.as_ref().unwrap().display_name, bob.name);
    assert_eq!(bobs.body, "second");
    assert_eq!(bobs.client_msg_id.as_deref(), Some("2"));

    // What the batch answered is what was stored, sealed and readable again.
    let page = messages::page(&app.db, &app.keyring, room_a.id, Cursor::Latest, 50).await.unwrap();
    let history: Vec<(i64, &str)> = page.messages.iter().map(|m| (m.seq, m.body.as_str())).collect();
    assert_eq!(history, [(1, "earlier"), (2, "first"), (3, "second"), (4, "third")]);
    // Reading some of them back by id (as moderation does) keeps to the room asked for.
    let ids: Vec<Uuid> = [6, 2, 0]
        .iter()
        .map(|&i| match &stored[i] {
            Stored::New(m) => m.id,
            other => panic!("{other:?}"),
        })
        .collect();
    let read = messages::to_moderate(&app.db, &app.keyring, Some(room_a.id), &ids).await.unwrap();
    let read: Vec<(i64, &str)> = read.iter().map(|m| (m.seq, m.body.as_str())).collect();
    assert_eq!(read, [(2, "first"), (4, "third")], "the other room's message is left out, the rest in seq order");
    // Without a room (quiet rooms' gathered batch), each message is read in its own room.
    let all = messages::to_moderate(&app.db, &app.keyring, None, &ids).await.unwrap();
    let mut all: Vec<(Uuid, Uuid)> = all.iter().map(|m| (m.id, m.room_id)).collect();
    all.sort();
    let mut want: Vec<(Uuid, Uuid)> = [6, 2, 0]
        .iter()
        .map(|&i| match &stored[i] {
            Stored::New(m) => (m.id, m.room_id),
            other => panic!("{other:?}"),
        })
        .collect();
    want.sort();
    assert_eq!(all, want);
    let room_seq: i64 = sqlx::query_scalar("SELECT last_seq FROM rooms WHERE id = $1")
        .bind(room_a.id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(room_seq, 4);
}

/// `messages` has no foreign keys to `rooms` and `users` (migration 0019): the statement that
/// stores a message is what keeps it to a room that exists and, for a person's message, to a
/// member. Messages from nobody (the assistant, system notices) are held to the first, alone or
/// in a batch beside a person's.
#[tokio::test]
async fn only_a_room_that_exists_and_its_members_get_messages() {
    let t = TestApp::spawn().await;
    let app = &t.local.app;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "a").await;
    let (no_room, nobody) = (Uuid::new_v4(), Uuid::new_v4());
    let now = Utc::now();
    let ai = |room_id| NewMessage { kind: MessageKind::Ai, ..NewMessage::system(room_id, "an answer", now) };

    for lone in [NewMessage::system(no_room, "a notice", now), ai(no_room)] {
        let stored = messages::store_one(&app.db, &app.keyring, lone).await.unwrap();
        assert!(matches!(stored, Stored::NotMember), "{stored:?}");
    }
    let drafts = vec![
        NewMessage::system(no_room, "a notice", now),
        draft(room.id, nobody, "from no one registered", "1"),
        draft(no_room, ana.id, "into no room", "2"),
        ai(room.id),
        draft(room.id, ana.id, "hello", "3"),
    ];
    let stored = messages::store(&app.db, &app.keyring, &drafts).await.unwrap();
    for (i, s) in stored.iter().enumerate() {
        match i {
            0..=2 => assert!(matches!(s, Stored::NotMember), "draft {i}: {s:?}"),
            _ => assert!(matches!(s, Stored::New(_)), "draft {i}: {s:?}"),
        }
    }

    let (in_no_room, by_nobody): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE room_id = $1), count(*) FILTER (WHERE author_id = $2) FROM messages",
    )
    .bind(no_room)
    .bind(nobody)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!((in_no_room, by_nobody), (0, 0));
    let page = messages::page(&app.db, &app.keyring, room.id, Cursor::Latest, 50).await.unwrap();
    let history: Vec<(i64, &str)> = page.messages.iter().map(|m| (m.seq, m.body.as_str())).collect();
    assert_eq!(history, [(1, "an answer"), (2, "hello")], "no seq was spent on a refused message");
}

/// The moderation read stays prepared: a connection plans it once. The plan it caches while
/// `messages` is nearly empty must not be a scan of the whole table once the table has grown.
#[tokio::test]
async fn the_moderation_read_never_scans_the_whole_table() {
    let t = TestApp::spawn().await;
    let app = &t.local.app;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "a").await;
    let mut conn = app.db.acquire().await.unwrap();
    let read = "SELECT id FROM messages_to_moderate($1)";
    // Enough calls on a table of no user message for Postgres to settle on one cached plan.
    for _ in 0..8 {
        let none: Vec<Uuid> = sqlx::query_scalar(read).bind(vec![Uuid::new_v4()]).fetch_all(&mut *conn).await.unwrap();
        assert!(none.is_empty());
    }
    let drafts: Vec<NewMessage> = (0..300).map(|i| draft(room.id, ana.id, "hello there", &i.to_string())).collect();
    let stored = messages::store(&app.db, &app.keyring, &drafts).await.unwrap();
    let ids: Vec<Uuid> = stored[..3]
        .iter()
        .map(|s| match s {
            Stored::New(m) => m.id,
            other => panic!("{other:?}"),
        })
        .collect();

    // This connection's scans of `messages`, counted before and after the read within one
    // transaction (the counters may also hold earlier transactions' scans not yet reported).
    let scans = "SELECT seq_scan, COALESCE(idx_scan, 0) FROM pg_stat_xact_user_tables WHERE relname = 'messages'";
    sqlx::query("BEGIN").execute(&mut *conn).await.unwrap();
    let before: (i64, i64) = sqlx::query_as(scans).fetch_one(&mut *conn).await.unwrap();
    let mut found: Vec<Uuid> = sqlx::query_scalar(read).bind(&ids).fetch_all(&mut *conn).await.unwrap();
    let after: (i64, i64) = sqlx::query_as(scans).fetch_one(&mut *conn).await.unwrap();
    sqlx::query("ROLLBACK").execute(&mut *conn).await.unwrap();
    found.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(found, want);
    assert_eq!(after.0 - before.0, 0, "the cached plan scanned the whole table");
    assert!(after.1 > before.1, "the read went through an index");
}

#[tokio::test]
async fn the_same_message_twice_in_one_batch_is_stored_once() {
    let t = TestApp::spawn().await;
    let app = &t.local.app;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "a").await;
    let drafts = vec![
        draft(room.id, ana.id, "hello", "same"),
        draft(room.id, ana.id, "hello", "same"),
        draft(room.id, ana.id, "after", "next"),
    ];
    let stored = messages::store(&app.db, &app.keyring, &drafts).await.unwrap();
    let Stored::New(first) = &stored[0] else { panic!("{:?}", stored[0]) };
    assert!(matches!(stored[1], Stored::Duplicate(id) if id == first.id));
    assert_eq!(seq_of(&stored[2]), first.seq + 1, "no gap in seq");
    assert_eq!(t.message_count().await, 2);
}

#[tokio::test]
async fn messages_arriving_together_share_one_commit() {
    let t = TestApp::spawn().await;
    let app = &t.local.app;
    let ana = t.register("Ana").await;
    let mut rooms = Vec::new();
    for i in 0..12 {
        rooms.push(t.create_room(&ana, &format!("room {i}")).await.id);
    }
    let results =
        join_all(rooms.iter().map(|room| app.message_writer.insert(draft(*room, ana.id, "hi", &format!("{room}")))))
            .await;
    for stored in &results {
        assert_eq!(seq_of(stored.as_ref().unwrap()), 1);
    }
    // now() is the transaction's start: messages committed together carry the same time.
    let times: Vec<chrono::DateTime<Utc>> =
        sqlx::query_scalar("SELECT created_at FROM messages").fetch_all(&app.db).await.unwrap();
    assert_eq!(times.len(), rooms.len());
    let commits: HashSet<_> = times.into_iter().collect();
    assert!(commits.len() < rooms.len(), "12 messages queued at once took {} commits", commits.len());
}

/// Over real sockets: senders in several rooms fire without waiting; every message is acked
/// once, and every room sees its own messages in order, with no gap.
#[tokio::test]
async fn busy_rooms_keep_their_order_and_lose_nothing() {
    const ROOMS: usize = 5;
    const PER_ROOM: usize = 25;
    let t = TestApp::spawn().await;
    let mut pairs = Vec::new();
    for (i, name) in ["Ana", "Bob", "Cleo", "Dan", "Eve"].iter().enumerate().take(ROOMS) {
        let owner = t.register(name).await;
        let listener = t.register(&format!("{name}s")).await;
        let room = t.create_room(&owner, &format!("busy {i}")).await;
        t.bring_in(&owner, room.id, &listener).await;
        let (sender, _) = t.ws_in_room(&owner, room.id).await;
        let (receiver, _) = t.ws_in_room(&listener, room.id).await;
        pairs.push((room.id, sender, receiver));
    }
    for (room_id, sender, _) in &mut pairs {
        for n in 0..PER_ROOM {
            sender
                .send(json!({"action": "new_message", "room_id": room_id, "body": format!("m{n}"), "client_msg_id": format!("c{n}")}))
                .await;
        }
    }
    // A resend of a message already sent gets the same id back, not a second message.
    let (room_0, sender_0, _) = &mut pairs[0];
    sender_0.send(json!({"action": "new_message", "room_id": room_0, "body": "m0", "client_msg_id": "c0"})).await;

    for (i, (_, sender, receiver)) in pairs.iter_mut().enumerate() {
        let expected_acks = if i == 0 { PER_ROOM + 1 } else { PER_ROOM };
        let mut acks: HashMap<String, Vec<String>> = HashMap::new();
        for _ in 0..expected_acks {
            let ack = sender.recv_type("ack").await;
            acks.entry(ack["client_msg_id"].as_str().unwrap().to_owned())
                .or_default()
                .push(ack["message_id"].as_str().unwrap().to_owned());
        }
        assert_eq!(acks.len(), PER_ROOM);
        if i == 0 {
            assert_eq!(acks["c0"].len(), 2);
            assert_eq!(acks["c0"][0], acks["c0"][1], "the resend is acked with the first message's id");
        }
        for n in 0..PER_ROOM {
            let message = receiver.recv_type("new_message").await;
            assert_eq!(message["message"]["seq"], n as i64 + 1);
            assert_eq!(message["message"]["body"], format!("m{n}"));
            assert_eq!(message["message"]["id"].as_str().unwrap(), acks[&format!("c{n}")][0]);
        }
    }
    assert_eq!(t.message_count().await, (ROOMS * PER_ROOM) as i64);
}

/// While a room's batch is in flight (here: held up by a lock on the room's row), the room's
/// next message waits for it, and another room's message does not.
#[tokio::test]
async fn a_rooms_next_message_waits_for_its_batch_in_flight_and_other_rooms_do_not() {
    let t = TestApp::spawn().await;
    let app = &t.local.app;
    let ana = t.register("Ana").await;
    let (x, y) = (t.create_room(&ana, "x").await.id, t.create_room(&ana, "y").await.id);
    let mut blocker = app.db.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM rooms WHERE id = $1 FOR UPDATE").bind(x).execute(&mut *blocker).await.unwrap();

    let first = tokio::spawn(app.message_writer.submit(draft(x, ana.id, "x1", "x1")).outcome());
    assert!(lock_waiter(&app.db, LockWaiter::Find).await, "the first batch never reached the room's lock");
    let second = tokio::spawn(app.message_writer.submit(draft(x, ana.id, "x2", "x2")).outcome());
    let other = app.message_writer.submit(draft(y, ana.id, "y1", "y1")).outcome();
    let other = tokio::time::timeout(std::time::Duration::from_secs(10), other)
        .await
        .expect("another room's message went through")
        .unwrap();
    assert_eq!(seq_of(&other), 1);
    assert!(!second.is_finished() && !first.is_finished(), "room x went on while its batch was held");

    blocker.rollback().await.unwrap();
    assert_eq!(seq_of(&first.await.unwrap().unwrap()), 1);
    assert_eq!(seq_of(&second.await.unwrap().unwrap()), 2);
}

/// Over real sockets: two members send in one room without waiting, while system messages are
/// posted in between (they take the room's whole turn). A listener gets every message once,
/// `seq` 1..N in order, and each sender's messages in the order sent.
#[tokio::test]
async fn pipelined_senders_and_system_messages_share_one_order() {
    const EACH: usize = 30;
    const SYSTEM: usize = 6;
    let t = TestApp::spawn().await;
    let (ana, bob, cleo) = (t.register("Ana").await, t.register("Bob").await, t.register("Cleo").await);
    let room = t.create_room(&ana, "shared").await.id;
    t.bring_in(&ana, room, &bob).await;
    t.bring_in(&ana, room, &cleo).await;
    let (mut a, _) = t.ws_in_room(&ana, room).await;
    let (mut b, _) = t.ws_in_room(&bob, room).await;
    let (mut listener, _) = t.ws_in_room(&cleo, room).await;

    let app = t.local.app.clone();
    let system = tokio::spawn(async move {
        for n in 0..SYSTEM {
            mathia::realtime::post_system_message(&app, room, &format!("s{n}")).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        }
    });
    for n in 0..EACH {
        a.send(json!({"action": "new_message", "room_id": room, "body": format!("a{n}"), "client_msg_id": format!("a{n}")}))
            .await;
        b.send(json!({"action": "new_message", "room_id": room, "body": format!("b{n}"), "client_msg_id": format!("b{n}")}))
            .await;
    }
    system.await.unwrap();

    let total = 2 * EACH + SYSTEM;
    let mut by_sender: HashMap<char, Vec<usize>> = HashMap::new();
    for expected_seq in 1..=total {
        let event = listener.recv_type("new_message").await;
        assert_eq!(event["message"]["seq"], expected_seq as i64, "out of order or a gap");
        let body = event["message"]["body"].as_str().unwrap();
        let (who, n) = body.split_at(1);
        by_sender.entry(who.chars().next().unwrap()).or_default().push(n.parse().unwrap());
    }
    assert_eq!(by_sender[&'a'], (0..EACH).collect::<Vec<_>>());
    assert_eq!(by_sender[&'b'], (0..EACH).collect::<Vec<_>>());
    assert_eq!(by_sender[&'s'], (0..SYSTEM).collect::<Vec<_>>());
    for sender in [&mut a, &mut b] {
        for _ in 0..EACH {
            sender.recv_type("ack").await;
        }
    }
    assert_eq!(t.message_count().await, total as i64);
}

/// A write the server cuts off (its backend terminated, as in a shutdown) is answered with
/// `unavailable`, not `internal`; the socket stays open, and a resend stores the message once.
#[tokio::test]
async fn a_write_cut_off_by_the_server_is_unavailable_and_a_resend_stores_it_once() {
    let t = TestApp::spawn().await;
    let app = &t.local.app;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "x").await.id;
    let (mut ws, _) = t.ws_in_room(&ana, room).await;
    let frame = json!({"action": "new_message", "room_id": room, "body": "hello", "client_msg_id": "c1"});

    let mut blocker = app.db.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM rooms WHERE id = $1 FOR UPDATE").bind(room).execute(&mut *blocker).await.unwrap();
    ws.send(frame.clone()).await;
    assert!(lock_waiter(&app.db, LockWaiter::Terminate).await, "the write never reached the room's lock");
    let error = ws.recv_type("error").await;
    assert_eq!(error["code"], "unavailable", "{error}");
    assert_eq!(error["ref"], "c1");
    blocker.rollback().await.unwrap();
    assert_eq!(t.message_count().await, 0);

    ws.send(frame).await;
    let ack = ws.recv_type("ack").await;
    assert_eq!(ack["client_msg_id"], "c1");
    ws.send(json!({"action": "new_message", "room_id": room, "body": "hello", "client_msg_id": "c1"})).await;
    assert_eq!(ws.recv_type("ack").await["message_id"], ack["message_id"]);
    assert_eq!(t.message_count().await, 1);
}
