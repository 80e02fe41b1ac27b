//! Two people chatting in real time, in order, with acks, presence and typing.

use std::{sync::Arc, time::Duration};

use chrono::{TimeZone, Utc};
use mathia::adapters::{local::ManualClock, postgres::moderation};
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, TestUser, WsClient, wait_until},
    registry_faults::FaultyRegistry,
};

#[tokio::test]
async fn two_users_see_each_others_messages_in_stored_order_with_acks() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let ben = t.register("Ben").await;
    let room = t.create_room(&ana, "general").await;
    t.bring_in(&ana, room.id, &ben).await;

    let (mut a, joined) = t.ws_in_room(&ana, room.id).await;
    assert_eq!(joined["messages"], json!([]));
    assert_eq!(joined["online"].as_array().unwrap().len(), 1);
    let (mut b, joined) = t.ws_in_room(&ben, room.id).await;
    let online: Vec<&str> =
        joined["online"].as_array().unwrap().iter().map(|o| o["display_name"].as_str().unwrap()).collect();
    assert!(online.contains(&"Ana") && online.contains(&"Ben"), "{online:?}");
    let presence = a.recv_type("presence_update").await;
    assert_eq!(presence["status"], "online");
    assert_eq!(presence["user_id"], ben.id.to_string());
    assert_eq!(presence["room_id"], room.id.to_string());

    // Both send at once, interleaved.
    for i in 0..5 {
        a.send(json!({"action": "new_message", "room_id": room.id, "body": format!("ana {i}"), "client_msg_id": format!("a{i}")})).await;
        b.send(json!({"action": "new_message", "room_id": room.id, "body": format!("ben {i}"), "client_msg_id": format!("b{i}")})).await;
    }

    let mut seen = Vec::new();
    for ws in [&mut a, &mut b] {
        let mut acks = Vec::new();
        let mut messages: Vec<Value> = Vec::new();
        while messages.len() < 10 || acks.len() < 5 {
            let ev = ws.recv().await;
            match ev["type"].as_str().unwrap() {
                "ack" => acks.push(ev),
                "new_message" => messages.push(ev["message"].clone()),
                _ => {}
            }
        }
        // Each ack names the stored message with that client id.
        for ack in &acks {
            let m =
                messages.iter().find(|m| m["client_msg_id"] == ack["client_msg_id"]).expect("acked message delivered");
            assert_eq!(m["id"], ack["message_id"]);
        }
        let seqs: Vec<i64> = messages.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
        assert_eq!(seqs, (1..=10).collect::<Vec<_>>(), "delivered in stored order");
        seen.push(messages.iter().map(|m| m["body"].as_str().unwrap().to_owned()).collect::<Vec<_>>());
    }
    assert_eq!(seen[0], seen[1], "both saw the same order");
    // Each sender's own messages keep their order.
    let anas: Vec<_> = seen[0].iter().filter(|b| b.starts_with("ana")).cloned().collect();
    assert_eq!(anas, (0..5).map(|i| format!("ana {i}")).collect::<Vec<_>>());

    // The history a newcomer gets matches, oldest first, with authors.
    let (_c, joined) = t.ws_in_room(&ben, room.id).await;
    let bodies: Vec<_> =
        joined["messages"].as_array().unwrap().iter().map(|m| m["body"].as_str().unwrap().to_owned()).collect();
    assert_eq!(bodies, seen[0]);
    let first = &joined["messages"][0];
    assert_eq!(first["kind"], "user");
    assert!(first["author"]["display_name"] == "Ana" || first["author"]["display_name"] == "Ben");
}

#[tokio::test]
async fn resending_a_client_msg_id_is_acked_once_and_stored_once() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "general").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    let frame = json!({"action": "new_message", "room_id": room.id, "body": "once", "client_msg_id": "same"});
    a.send(frame.clone()).await;
    let first = a.recv_type("ack").await;
    a.recv_type("new_message").await;
    a.send(frame).await;
    let second = a.recv_type("ack").await;
    assert_eq!(first["message_id"], second["message_id"]);
    a.expect_nothing_but(&[], Duration::from_millis(300)).await;
    assert_eq!(t.message_count().await, 1);
}

#[tokio::test]
async fn typing_presence_and_ping_reach_the_right_people() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let ben = t.register("Ben").await;
    let room = t.create_room(&ana, "general").await;
    t.bring_in(&ana, room.id, &ben).await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    let (mut b, _) = t.ws_in_room(&ben, room.id).await;
    a.recv_type("presence_update").await;

    a.send(json!({"action": "typing", "room_id": room.id, "typing": true})).await;
    let typing = b.recv_type("typing").await;
    assert_eq!(typing["user_id"], ana.id.to_string());
    assert_eq!(typing["display_name"], "Ana");
    assert_eq!(typing["typing"], true);
    // A burst of "still typing" is throttled to one event…
    for _ in 0..5 {
        a.send(json!({"action": "typing", "room_id": room.id, "typing": true})).await;
    }
    a.send(json!({"action": "typing", "room_id": room.id, "typing": false})).await;
    assert_eq!(b.recv_type("typing").await["typing"], false, "repeats were dropped");
    // …but a stop re-arms it: the next start is delivered at once.
    a.send(json!({"action": "typing", "room_id": room.id, "typing": true})).await;
    assert_eq!(b.recv_type("typing").await["typing"], true);
    a.send(json!({"action": "typing", "room_id": room.id, "typing": false})).await;
    assert_eq!(b.recv_type("typing").await["typing"], false);
    // The typist does not hear themselves: nothing of the kind arrives before the `pong` to a
    // ping sent after the last typing frame (a socket's frames are answered in order).
    a.send(json!({"action": "ping"})).await;
    loop {
        let ev = a.recv().await;
        assert_ne!(ev["type"], "typing", "the typist heard themselves: {ev}");
        if ev["type"] == "pong" {
            break;
        }
    }

    // Leaving the room (or closing the socket) tells the others.
    b.send(json!({"action": "leave_room", "room_id": room.id})).await;
    let gone = a.recv_type("presence_update").await;
    assert_eq!(gone["status"], "offline");
    assert_eq!(gone["user_id"], ben.id.to_string());
    b.send(json!({"action": "join_room", "room_id": room.id})).await;
    b.recv_type("room_joined").await;
    assert_eq!(a.recv_type("presence_update").await["status"], "online");
    b.close().await;
    let gone = a.recv_type("presence_update").await;
    assert_eq!(gone["status"], "offline");

    // And after leaving the room for good, Ben no longer receives it.
    let (mut b2, _) = t.ws_in_room(&ben, room.id).await;
    let res = t.post(Some(&ben.token), &format!("/api/rooms/{}/leave", room.id), json!({})).await;
    assert_eq!(res.status(), 204);
    a.send(json!({"action": "new_message", "room_id": room.id, "body": "still there?", "client_msg_id": "x"})).await;
    a.recv_type("new_message").await;
    b2.expect_nothing_but(&["presence_update"], Duration::from_millis(300)).await;
}

/// Typing starts and stops sent in a loop: a stop goes to the room only while its sender is shown
/// typing, and at most 20 signals of one person go to a room in 10 s, so the loop costs a room what
/// someone typing costs it. Someone else's typing still goes through.
#[tokio::test]
async fn a_typing_loop_reaches_the_room_at_most_twenty_times() {
    let t = TestApp::spawn().await;
    let (ana, ben, room) = t.ana_and_ben().await;
    let (mut a, _) = t.ws_in_room(&ana, room).await;
    let (mut b, _) = t.ws_in_room(&ben, room).await;
    a.recv_type("presence_update").await;

    // A stop from someone not shown typing goes nowhere.
    a.send(json!({"action": "typing", "room_id": room, "typing": false})).await;
    a.assert_alive().await;
    b.none_of_before_pong(&["typing"]).await;

    let started = std::time::Instant::now();
    for i in 0..150 {
        a.send(json!({"action": "typing", "room_id": room, "typing": i % 2 == 0})).await;
    }
    // Ana's pong comes after all her frames were handled, and so after anything they sent Ben.
    a.assert_alive().await;
    b.send(json!({"action": "ping"})).await;
    let mut heard = Vec::new();
    loop {
        let ev = b.recv().await;
        match ev["type"].as_str() {
            Some("typing") => heard.push(ev["typing"].as_bool().unwrap()),
            Some("pong") => break,
            _ => {}
        }
    }
    // One window of 10 s, unless this machine took longer than that.
    let windows = 1 + started.elapsed().as_secs() as usize / 10;
    assert!(heard.len() <= 20 * windows, "Ben heard {} typing signals", heard.len());
    assert!(heard.len() >= 2 && heard[..2] == [true, false], "starts and stops alternate: {heard:?}");

    // Ben's typing is his own budget.
    b.send(json!({"action": "typing", "room_id": room, "typing": true})).await;
    let typing = a.recv_type("typing").await;
    assert_eq!((&typing["user_id"], &typing["typing"]), (&json!(ben.id), &json!(true)));

    // Muted, Ben can still stop (it only clears), but his typing no longer shows.
    let now = chrono::Utc::now();
    moderation::mute(&t.db().await, room, ben.id, now + chrono::Duration::minutes(10), "test", now)
        .await
        .unwrap()
        .expect("muted");
    b.send(json!({"action": "typing", "room_id": room, "typing": false})).await;
    assert_eq!(a.recv_type("typing").await["typing"], false);
    b.send(json!({"action": "typing", "room_id": room, "typing": true})).await;
    b.assert_alive().await;
    a.none_of_before_pong(&["typing"]).await;
}

/// Leaving and joining a room in a loop: each change would go to everyone in the room; a room
/// hears at most 20 of one person's in a minute. Someone else's comings and goings still go.
#[tokio::test]
async fn a_leave_and_join_loop_reaches_the_room_at_most_twenty_times() {
    let t = TestApp::spawn().await;
    let (ana, ben, room) = t.ana_and_ben().await;
    let (mut b, _) = t.ws_in_room(&ben, room).await;
    let started = std::time::Instant::now();
    let (mut a, _) = t.ws_in_room(&ana, room).await;
    let mut heard = vec![b.recv_type("presence_update").await["status"].as_str().unwrap().to_owned()];

    for _ in 0..60 {
        a.send(json!({"action": "leave_room", "room_id": room})).await;
        a.send(json!({"action": "join_room", "room_id": room})).await;
    }
    a.assert_alive().await;
    b.send(json!({"action": "ping"})).await;
    loop {
        let ev = b.recv().await;
        match ev["type"].as_str() {
            Some("presence_update") => {
                assert_eq!(ev["user_id"], json!(ana.id));
                heard.push(ev["status"].as_str().unwrap().to_owned());
            }
            Some("pong") => break,
            _ => {}
        }
    }
    // One window of a minute, unless this machine took longer than that: 121 changes, 20 heard.
    let windows = 1 + started.elapsed().as_secs() as usize / 60;
    assert!((20..=20 * windows).contains(&heard.len()), "Ben heard {heard:?}");
    assert!(heard.chunks(2).all(|c| c == ["online", "offline"]), "in turn: {heard:?}");

    // Ben's own comings and goings are his budget.
    b.send(json!({"action": "leave_room", "room_id": room})).await;
    let gone = a.recv_type("presence_update").await;
    assert_eq!((&gone["user_id"], &gone["status"]), (&json!(ben.id), &json!("offline")));
}

/// Ana and Ben in a room on a moved clock, Ana's presence budget spent but for one change: her
/// arrival took the first of her 20 a minute; half a minute later she left and came back until
/// the other 19 were spent, ending away, each heard by Ben; then her first arrival's slot freed.
struct OneChangeLeft {
    t: TestApp,
    ana: TestUser,
    room: uuid::Uuid,
    a: WsClient,
    b: WsClient,
}

impl OneChangeLeft {
    async fn new() -> Self {
        let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 25, 13, 0, 0).unwrap()));
        let t = TestApp::spawn_with_clock(clock.clone()).await;
        let (ana, ben, room) = t.ana_and_ben().await;
        let (mut b, _) = t.ws_in_room(&ben, room).await;
        let (mut a, _) = t.ws_in_room(&ana, room).await;
        assert_eq!(b.recv_presence_of(&ana).await, ("online".into(), 2));
        clock.advance(chrono::Duration::seconds(30));
        for _ in 0..9 {
            a.send(json!({"action": "leave_room", "room_id": room})).await;
            a.send(json!({"action": "join_room", "room_id": room})).await;
        }
        a.send(json!({"action": "leave_room", "room_id": room})).await;
        a.assert_alive().await;
        for i in 0..19 {
            let expected = if i % 2 == 0 { ("offline".into(), 1) } else { ("online".into(), 2) };
            assert_eq!(b.recv_presence_of(&ana).await, expected, "change {}", i + 2);
        }
        clock.advance(chrono::Duration::seconds(31));
        Self { t, ana, room, a, b }
    }

    /// What Ben heard next of Ana: her status and the room's count.
    async fn heard(&mut self) -> (String, u64) {
        self.b.recv_presence_of(&self.ana).await
    }
}

/// Past the budget an arrival is not announced, but a departure whose arrival was is: nobody
/// stays listed as online after they left, however the window's slots free up.
#[tokio::test]
async fn a_departure_is_told_when_its_arrival_was_whatever_the_budget() {
    let mut s = OneChangeLeft::new().await;
    // Her one change left: she comes back, told, and leaves past the budget, told too.
    s.a.send(json!({"action": "join_room", "room_id": s.room})).await;
    assert_eq!(s.heard().await, ("online".into(), 2));
    s.a.send(json!({"action": "leave_room", "room_id": s.room})).await;
    assert_eq!(s.heard().await, ("offline".into(), 1));

    // Then an arrival past the budget is not told, nor its departure.
    s.a.send(json!({"action": "join_room", "room_id": s.room})).await;
    s.a.send(json!({"action": "leave_room", "room_id": s.room})).await;
    s.a.assert_alive().await;
    s.b.none_of_before_pong(&["presence_update"]).await;
}

/// A departure past the budget in the moment between its arrival's announcement and Redis
/// keeping it as heard finds nothing owed; the scheduler's next tick tells it, so the person does
/// not stay listed as online.
#[tokio::test]
async fn a_departure_racing_its_arrival_being_kept_is_told_by_the_scheduler() {
    let mut s = OneChangeLeft::new().await;
    let app = &s.t.local.app.clone();
    s.a.send(json!({"action": "join_room", "room_id": s.room})).await;
    assert_eq!(s.heard().await, ("online".into(), 2));
    // The arrival is heard, but not yet kept as heard when she leaves past the budget.
    assert!(app.redis.take_arrival_heard(s.room, s.ana.id).await.unwrap());
    s.a.send(json!({"action": "leave_room", "room_id": s.room})).await;
    s.a.assert_alive().await;
    s.b.none_of_before_pong(&["presence_update"]).await;
    app.redis.arrival_heard(s.room, s.ana.id).await.unwrap();

    // Owed whatever the budget, so within the minute: told once.
    let report = mathia::workers::scheduler::tick(app).await;
    assert_eq!((report.departures_told, report.arrivals_told), (1, 0));
    assert_eq!(s.heard().await, ("offline".into(), 1));
    let report = mathia::workers::scheduler::tick(app).await;
    assert_eq!((report.departures_told, report.arrivals_told), (0, 0));
    s.b.none_of_before_pong(&["presence_update"]).await;
}

/// An arrival past the budget is not told at once; the scheduler tells it once the budget allows,
/// if the person is still there, so nobody present stays unlisted.
#[tokio::test]
async fn an_arrival_past_the_budget_is_told_once_the_budget_allows() {
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 25, 13, 0, 0).unwrap()));
    let t = TestApp::spawn_with_clock(clock.clone()).await;
    let (ana, ben, room) = t.ana_and_ben().await;
    let (mut b, _) = t.ws_in_room(&ben, room).await;
    let tick = || mathia::workers::scheduler::tick(&t.local.app);

    // Ana's 20 changes (she ends away), then a 21st, an arrival, untold.
    let (mut a, _) = t.ws_in_room(&ana, room).await;
    for _ in 0..9 {
        a.send(json!({"action": "leave_room", "room_id": room})).await;
        a.send(json!({"action": "join_room", "room_id": room})).await;
    }
    a.send(json!({"action": "leave_room", "room_id": room})).await;
    a.send(json!({"action": "join_room", "room_id": room})).await;
    a.assert_alive().await;
    for i in 0..20 {
        let ev = b.recv_type("presence_update").await;
        let expected = if i % 2 == 0 { "online" } else { "offline" };
        assert_eq!((&ev["user_id"], ev["status"].as_str().unwrap()), (&json!(ana.id), expected), "change {}", i + 1);
    }
    b.none_of_before_pong(&["presence_update"]).await;

    // Within the minute the budget still refuses it; past it, the scheduler tells it, once.
    assert_eq!(tick().await.arrivals_told, 0);
    b.none_of_before_pong(&["presence_update"]).await;
    clock.advance(chrono::Duration::seconds(61));
    assert_eq!(tick().await.arrivals_told, 1);
    let ev = b.recv_type("presence_update").await;
    assert_eq!((&ev["user_id"], &ev["status"], &ev["online_count"]), (&json!(ana.id), &json!("online"), &json!(2)));
    assert_eq!(tick().await.arrivals_told, 0);
    b.none_of_before_pong(&["presence_update"]).await;

    // An untold arrival of someone gone since is not told, nor their untold departure: the room
    // never listed them.
    let ev = {
        a.send(json!({"action": "leave_room", "room_id": room})).await;
        b.recv_type("presence_update").await
    };
    assert_eq!((&ev["status"], &ev["online_count"]), (&json!("offline"), &json!(1)));
    for _ in 0..10 {
        a.send(json!({"action": "join_room", "room_id": room})).await;
        a.send(json!({"action": "leave_room", "room_id": room})).await;
    }
    a.assert_alive().await;
    // Ben last heard her leave (the 20th change); the 21st and 22nd went untold.
    let mut last = None;
    b.send(json!({"action": "ping"})).await;
    loop {
        let ev = b.recv().await;
        match ev["type"].as_str() {
            Some("presence_update") => last = Some(ev["status"].clone()),
            Some("pong") => break,
            _ => {}
        }
    }
    assert_eq!(last, Some(json!("offline")));
    clock.advance(chrono::Duration::seconds(61));
    let report = tick().await;
    assert_eq!((report.arrivals_told, report.departures_told), (0, 0));
    b.none_of_before_pong(&["presence_update"]).await;
}

/// Each `presence_update` says how many people are online in the room after the change, each
/// person once whatever their sockets. A client sets its count from it, so a departure heard
/// twice (two sockets of one person closing at once may each find the person gone) or a change
/// past the room's budget, not announced, does not leave its count wrong.
#[tokio::test]
async fn presence_says_how_many_are_online_after_each_change() {
    let t = TestApp::spawn().await;
    let (ana, ben, room) = t.ana_and_ben().await;
    let cat = t.register("Cat").await;
    t.bring_in(&ana, room, &cat).await;
    let (mut a, joined) = t.ws_in_room(&ana, room).await;
    assert_eq!(joined["online_count"], 1);
    let change = |ev: Value| {
        let who: uuid::Uuid = ev["user_id"].as_str().unwrap().parse().unwrap();
        (who, ev["status"].as_str().unwrap().to_owned(), ev["online_count"].as_u64().expect("a count"))
    };

    let (b1, _) = t.ws_in_room(&ben, room).await;
    assert_eq!(change(a.recv_type("presence_update").await), (ben.id, "online".into(), 2));
    // Ben's second socket announces nothing: the next change Ana hears is Cat's.
    let (b2, _) = t.ws_in_room(&ben, room).await;
    let (mut c, _) = t.ws_in_room(&cat, room).await;
    assert_eq!(change(a.recv_type("presence_update").await), (cat.id, "online".into(), 3));

    tokio::join!(b1.close(), b2.close());
    assert_eq!(change(a.recv_type("presence_update").await), (ben.id, "offline".into(), 2));
    c.send(json!({"action": "leave_room", "room_id": room})).await;
    loop {
        let (who, status, count) = change(a.recv_type("presence_update").await);
        if who == cat.id {
            assert_eq!((status.as_str(), count), ("offline", 1));
            break;
        }
        // Ben again: his other socket's departure also found him gone.
        assert_eq!((who, status.as_str()), (ben.id, "offline"));
        assert!(count <= 2, "{count}");
    }

    // Ben comes and goes past his budget and ends away. Cat's return then counts two: Ana and
    // Cat.
    let mut b = t.ws(&ben).await;
    for _ in 0..15 {
        b.send(json!({"action": "join_room", "room_id": room})).await;
        b.send(json!({"action": "leave_room", "room_id": room})).await;
    }
    b.assert_alive().await;
    c.send(json!({"action": "join_room", "room_id": room})).await;
    c.recv_type("room_joined").await;
    let (mut heard_of_ben, mut last_of_ben) = (0, String::new());
    loop {
        let (who, status, count) = change(a.recv_type("presence_update").await);
        if who == cat.id {
            assert_eq!((status.as_str(), count), ("online", 2));
            break;
        }
        heard_of_ben += 1;
        last_of_ben.clone_from(&status);
        assert_eq!(who, ben.id);
        // Each change heard counts Ana, and Ben while he is here.
        assert_eq!(count, if status == "online" { 2 } else { 1 }, "{status}");
    }
    // Twenty changes a minute, two or three of them spent already.
    assert!(heard_of_ben <= 18, "the budget held: {heard_of_ben} of 30 changes heard");
    // A departure whose arrival Ana heard is told her whatever the budget: he is not left online.
    assert_eq!(last_of_ben, "offline");
}

/// Announcements of a room overtake one another on the way (each is sent by whoever made its
/// change), so each carries the room's presence number: above the one `room_joined` was read at,
/// each change its own, and the highest one's count right whatever order they arrive in (a
/// client keeps that one's; a crowd leaving at once once left a client showing five people
/// online when an early count arrived last).
#[tokio::test]
async fn presence_is_numbered_and_the_highest_number_counts_right() {
    let t = TestApp::spawn().await;
    let (ana, ben, room) = t.ana_and_ben().await;
    let (cat, dan) = (t.register("Cat").await, t.register("Dan").await);
    t.bring_in(&ana, room, &cat).await;
    t.bring_in(&ana, room, &dan).await;
    let (mut a, joined) = t.ws_in_room(&ana, room).await;
    let floor = joined["presence_seq"].as_u64().expect("room_joined carries the number it was read at");
    let numbered = |ev: &Value| {
        let seq = ev["presence_seq"].as_u64().expect("a numbered presence_update");
        (
            ev["user_id"].as_str().unwrap().to_owned(),
            ev["status"].as_str().unwrap().to_owned(),
            seq,
            ev["online_count"].as_u64().unwrap(),
        )
    };

    let mut others = Vec::new();
    for who in [&ben, &cat, &dan] {
        let (ws, joined) = t.ws_in_room(who, room).await;
        assert!(joined["presence_seq"].as_u64().unwrap() > floor);
        others.push(ws);
    }
    let mut heard = Vec::new();
    for _ in 0..3 {
        heard.push(numbered(&a.recv_type("presence_update").await));
    }
    assert!(heard.iter().all(|(_, status, seq, _)| status == "online" && *seq > floor), "{heard:?}");
    let last_arrival = heard.iter().max_by_key(|h| h.2).unwrap();
    assert_eq!(last_arrival.3, 4, "the highest number counts everyone: {heard:?}");

    // All three leave at once: whichever order the departures reach Ana in, the highest
    // number's count is hers alone, and each is newer than every arrival.
    let newest_arrival = last_arrival.2;
    futures::future::join_all(others.into_iter().map(WsClient::close)).await;
    let mut left = Vec::new();
    while left.len() < 3 {
        let change = numbered(&a.recv_type("presence_update").await);
        assert_eq!(change.1, "offline", "{change:?}");
        if !left.iter().any(|l: &(String, String, u64, u64)| l.0 == change.0) {
            left.push(change);
        }
    }
    assert!(left.iter().all(|l| l.2 > newest_arrival), "{left:?}");
    let mut seqs: Vec<u64> = left.iter().map(|l| l.2).collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), 3, "each departure its own number: {left:?}");
    assert_eq!(left.iter().max_by_key(|l| l.2).unwrap().3, 1, "{left:?}");
}

/// A room's presence numbers keep growing when Redis loses them (restarted, or a quiet day's
/// expiry): a lost count starts again from the clock, above every number given before.
#[tokio::test]
async fn presence_numbers_grow_across_a_lost_count() {
    let t = TestApp::spawn().await;
    let app = &t.local.app;
    let room = uuid::Uuid::now_v7();
    let now = Utc::now().timestamp_millis();
    let first = app.redis.presence_seq(room, now).await.unwrap();
    let second = app.redis.presence_seq(room, now).await.unwrap();
    assert_eq!(second, first + 1);
    let client = redis::Client::open(crate::helpers::redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("{}presence-seq:{room}", app.config.redis_prefix);
    let ttl_ms: i64 = redis::cmd("PTTL").arg(&key).query_async(&mut conn).await.unwrap();
    assert!((1..=86_400_000).contains(&ttl_ms), "forgotten a day after its last use: {ttl_ms}");
    let _: i64 = redis::cmd("DEL").arg(&key).query_async(&mut conn).await.unwrap();
    let after = app.redis.presence_seq(room, now + 1).await.unwrap();
    assert!(after > second, "{after} after {second}");
    // Another room's numbers are its own.
    let other = app.redis.presence_seq(uuid::Uuid::now_v7(), now).await.unwrap();
    assert_eq!(other, u64::try_from(now).unwrap() * 1000 + 1);
}

#[tokio::test]
async fn presence_goes_offline_only_when_a_persons_last_socket_closes() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let ben = t.register("Ben").await;
    let room = t.create_room(&ana, "general").await;
    t.bring_in(&ana, room.id, &ben).await;
    let (mut b, _) = t.ws_in_room(&ben, room.id).await;
    let (a1, _) = t.ws_in_room(&ana, room.id).await;
    let online = b.recv_type("presence_update").await;
    assert_eq!((&online["status"], &online["user_id"]), (&json!("online"), &json!(ana.id)));
    // Ana's second socket joins: she was online already, so nobody hears of it. Its pong says
    // its join is done; Ben's pong then comes after anything that join sent him.
    let (mut a2, joined) = t.ws_in_room(&ana, room.id).await;
    assert_eq!(joined["online"].as_array().unwrap().len(), 2, "Ana once, Ben once: {joined}");
    a2.assert_alive().await;
    b.none_of_before_pong(&["presence_update"]).await;

    let registry = t.local.app.connections.clone();
    let sockets_of = |user: uuid::Uuid| {
        let registry = registry.clone();
        async move { registry.of_user(user).await.unwrap().len() }
    };
    assert_eq!(sockets_of(ana.id).await, 2);
    a1.close().await;
    wait_until("the first socket's disconnect", || async { sockets_of(ana.id).await == 1 }).await;
    b.none_of_before_pong(&["presence_update"]).await;
    // Ana is still in the room on her other socket.
    b.send(json!({"action": "new_message", "room_id": room.id, "body": "still there?", "client_msg_id": "q"})).await;
    assert_eq!(a2.recv_type("new_message").await["message"]["body"], "still there?");

    a2.close().await;
    let offline = b.recv_type("presence_update").await;
    assert_eq!((&offline["status"], &offline["user_id"]), (&json!("offline"), &json!(ana.id)));
    assert_eq!(offline["room_id"], json!(room.id));
    wait_until("the second socket's disconnect", || async { sockets_of(ana.id).await == 0 }).await;
    b.none_of_before_pong(&["presence_update"]).await;
}

#[tokio::test]
async fn history_pages_backwards_and_catches_up_forwards() {
    let t = TestApp::spawn_with(|c| c.rate_limit_per_min = 1000).await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "general").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    for i in 1..=120 {
        a.send(json!({"action": "new_message", "room_id": room.id, "body": format!("m{i}"), "client_msg_id": format!("c{i}")})).await;
    }
    let mut last = Value::Null;
    for _ in 0..120 {
        last = a.recv_type("new_message").await;
    }
    assert_eq!(last["message"]["seq"], 120);

    let page = |q: String| {
        let t = &t;
        let token = ana.token.clone();
        async move {
            let res = t.get(Some(&token), &format!("/api/rooms/{}/messages{q}", room.id)).await;
            assert_eq!(res.status(), 200);
            res.json::<Value>().await.unwrap()
        }
    };
    let seqs =
        |p: &Value| p["messages"].as_array().unwrap().iter().map(|m| m["seq"].as_i64().unwrap()).collect::<Vec<_>>();

    let p1 = page(String::new()).await;
    assert_eq!(seqs(&p1), (71..=120).collect::<Vec<_>>());
    let p2 = page(format!("?before={}&limit=100", p1["next_before"].as_str().unwrap())).await;
    assert_eq!(seqs(&p2), (1..=70).collect::<Vec<_>>());
    assert!(p2["next_before"].is_null(), "no more history");

    let tenth = p2["messages"][9]["id"].as_str().unwrap().to_owned();
    let after = page(format!("?after={tenth}&limit=5")).await;
    assert_eq!(seqs(&after), vec![11, 12, 13, 14, 15]);
    assert!(after["next_after"].is_string());

    for bad in ["?limit=0", "?limit=101", "?before=not-a-uuid", &format!("?before={}", uuid::Uuid::new_v4())] {
        let res = t.get(Some(&ana.token), &format!("/api/rooms/{}/messages{bad}", room.id)).await;
        assert_eq!(res.status(), 400, "{bad}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "bad_request");
    }
}

/// Forgetting a connection writes its departure down first: one whose process was cut off after
/// removing the connection, before telling its rooms, is told by the scheduler once it is a
/// minute old, so the person does not stay listed as online; one cut off before the removal is
/// forgotten again. A departure that ran to its end leaves nothing for the scheduler.
#[tokio::test]
async fn a_departure_cut_off_midway_is_finished_by_the_scheduler() {
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 25, 13, 0, 0).unwrap()));
    let t = TestApp::spawn_with_clock(clock.clone()).await;
    let app = t.local.app.clone();
    let tick = || mathia::workers::scheduler::tick(&app);
    let (ana, ben, room) = t.ana_and_ben().await;
    let (mut b, _) = t.ws_in_room(&ben, room).await;

    // A departure that runs to its end: told at once, nothing left for the scheduler.
    let (a, _) = t.ws_in_room(&ana, room).await;
    assert_eq!(b.recv_presence_of(&ana).await, ("online".into(), 2));
    a.close().await;
    assert_eq!(b.recv_presence_of(&ana).await, ("offline".into(), 1));
    clock.advance(chrono::Duration::seconds(61));
    let report = tick().await;
    assert_eq!((report.departures_cut_off, report.departures_told), (0, 0));

    for removed in [true, false] {
        // Ana again, from a socket whose departure is cut off.
        let (_a, _) = t.ws_in_room(&ana, room).await;
        assert_eq!(b.recv_presence_of(&ana).await, ("online".into(), 2));
        let ana_socket = app.connections.of_user(ana.id).await.unwrap().remove(0).id;
        let cut = mathia::App::builder(app.config.clone(), app.db.clone())
            .connections(Arc::new(FaultyRegistry {
                cut_off_removal: Some(removed),
                ..FaultyRegistry::over(app.connections.clone())
            }))
            .push(app.push.clone())
            .clock(clock.clone())
            .build()
            .unwrap();
        let forgetting = mathia::realtime::forget_connection(&cut, &ana_socket);
        assert!(tokio::time::timeout(Duration::from_millis(500), forgetting).await.is_err(), "cut off");
        assert_eq!(app.connections.get(&ana_socket).await.unwrap().is_none(), removed);
        b.none_of_before_pong(&["presence_update"]).await;

        // Under a minute it may still be running elsewhere: the scheduler leaves it.
        clock.advance(chrono::Duration::seconds(30));
        let report = tick().await;
        assert_eq!((report.departures_cut_off, report.departures_told), (0, 0), "removed: {removed}");
        b.none_of_before_pong(&["presence_update"]).await;

        // Past it, the room that heard her arrive hears her leave, once, and her connection is
        // gone from the registry.
        clock.advance(chrono::Duration::seconds(31));
        let report = tick().await;
        assert_eq!(report.departures_cut_off, 1, "removed: {removed}");
        assert_eq!(b.recv_presence_of(&ana).await, ("offline".into(), 1));
        assert!(app.connections.get(&ana_socket).await.unwrap().is_none());
        clock.advance(chrono::Duration::seconds(61));
        let report = tick().await;
        assert_eq!((report.departures_cut_off, report.departures_told), (0, 0));
        b.none_of_before_pong(&["presence_update"]).await;
    }
}
