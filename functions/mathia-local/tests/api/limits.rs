//! Limits that keep one person from flooding a room or outgrowing a frame: reactions per person
//! and per message, edits and reactions under the message rate limit, and `room_joined` and
//! history pages under API Gateway's 128 KB frame limit.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, WsClient, registry_entry};

/// What an event or page may weigh (API Gateway refuses frames over 128 KB).
const BOUND: usize = 100 * 1024;

async fn post(ws: &mut WsClient, room: Uuid, body: &str) -> Uuid {
    let client_msg_id = Uuid::new_v4().to_string();
    ws.send(json!({"action": "new_message", "room_id": room, "body": body, "client_msg_id": client_msg_id})).await;
    loop {
        let ev = ws.recv().await;
        if ev["type"] == "ack" {
            return ev["message_id"].as_str().unwrap().parse().unwrap();
        }
        assert_ne!(ev["type"], "error", "{ev}");
    }
}

/// Reacts and answers the `reaction` event or the `error`.
async fn react(ws: &mut WsClient, room: Uuid, message: Uuid, emoji: &str) -> Value {
    ws.send(json!({"action": "react", "room_id": room, "message_id": message, "emoji": emoji, "on": true})).await;
    loop {
        let ev = ws.recv().await;
        if ev["type"] == "error" || (ev["type"] == "reaction" && ev["emoji"] == emoji) {
            return ev;
        }
    }
}

#[tokio::test]
async fn one_person_puts_at_most_twenty_reactions_on_a_message() {
    let t = TestApp::spawn_with(|c| c.rate_limit_per_min = 1000).await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "general").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    let message = post(&mut a, room.id, "react to me").await;
    for i in 0..20 {
        assert_eq!(react(&mut a, room.id, message, &format!("e{i}")).await["type"], "reaction");
    }
    let refused = react(&mut a, room.id, message, "e20").await;
    assert_eq!(refused["code"], "too_many_reactions", "{refused}");
    a.assert_alive().await;
    // Taking one back makes room for another.
    a.send(json!({"action": "react", "room_id": room.id, "message_id": message, "emoji": "e0", "on": false})).await;
    a.recv_type("reaction").await;
    assert_eq!(react(&mut a, room.id, message, "e20").await["type"], "reaction");
}

#[tokio::test]
async fn a_message_carries_at_most_fifty_distinct_emoji() {
    let t = TestApp::spawn_with(|c| c.rate_limit_per_min = 1000).await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "general").await;
    let mut sockets = vec![t.ws_in_room(&ana, room.id).await.0];
    for name in ["Ben", "Cy"] {
        let user = t.register(name).await;
        t.bring_in(&ana, room.id, &user).await;
        sockets.push(t.ws_in_room(&user, room.id).await.0);
    }
    let message = post(&mut sockets[0], room.id, "react to me").await;
    for i in 0..50 {
        let ev = react(&mut sockets[i / 20], room.id, message, &format!("e{i}")).await;
        assert_eq!(ev["type"], "reaction", "{ev}");
    }
    let refused = react(&mut sockets[2], room.id, message, "e50").await;
    assert_eq!(refused["code"], "too_many_reactions", "{refused}");
    // An emoji already on the message may still be added to.
    assert_eq!(react(&mut sockets[2], room.id, message, "e0").await["type"], "reaction");
}

#[tokio::test]
async fn a_message_carries_at_most_a_thousand_reactions_so_its_events_stay_bounded() {
    let t = TestApp::spawn_with(|c| c.rate_limit_per_min = 1000).await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "general").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    let message = post(&mut a, room.id, &"😀".repeat(4000)).await;
    // 999 reactions already: 50 people with 20 each, less one.
    let db = t.db().await;
    for i in 0..50 {
        let user = Uuid::new_v4();
        sqlx::query("INSERT INTO users (id, email, display_name, password_hash) VALUES ($1, $2, 'x', 'x')")
            .bind(user)
            .bind(format!("{user}@example.com"))
            .execute(&db)
            .await
            .unwrap();
        let n = if i == 49 { 19 } else { 20 };
        sqlx::query("INSERT INTO reactions (message_id, user_id, emoji) SELECT $1, $2, 'e' || g FROM generate_series(0, $3 - 1) g")
            .bind(message)
            .bind(user)
            .bind(n)
            .execute(&db)
            .await
            .unwrap();
    }
    let accepted = react(&mut a, room.id, message, "e0").await;
    assert_eq!(accepted["type"], "reaction", "{}", accepted["code"]);
    let size = serde_json::to_string(&accepted).unwrap().len();
    assert!(size <= BOUND, "the reaction event is {size} bytes");
    let refused = react(&mut a, room.id, message, "e1").await;
    assert_eq!(refused["code"], "too_many_reactions", "{}", refused["type"]);
}

#[tokio::test]
async fn edits_and_reactions_count_against_the_message_rate_limit() {
    let t = TestApp::spawn_with(|c| c.rate_limit_per_min = 5).await;
    let ana = t.register("Ana").await;
    let ben = t.register("Ben").await;
    let room = t.create_room(&ana, "general").await;
    t.bring_in(&ana, room.id, &ben).await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    let (mut b, _) = t.ws_in_room(&ben, room.id).await;
    let message = post(&mut a, room.id, "version 0").await;
    for i in 1..=4 {
        a.send(json!({"action": "edit_message", "room_id": room.id, "message_id": message, "body": format!("version {i}")}))
            .await;
        a.recv_type("message_edited").await;
    }
    a.send(json!({"action": "edit_message", "room_id": room.id, "message_id": message, "body": "version 5"})).await;
    let refused = a.recv_type("error").await;
    assert_eq!(refused["code"], "rate_limited", "{refused}");
    assert!(refused["retry_after_ms"].as_u64().unwrap() > 0);
    let refused = react(&mut a, room.id, message, "👍").await;
    assert_eq!(refused["code"], "rate_limited", "{refused}");
    a.assert_alive().await;

    // The room heard four edits and nothing more.
    for i in 1..=4 {
        assert_eq!(b.recv_type("message_edited").await["message"]["body"], format!("version {i}"));
    }
    b.none_of_before_pong(&["message_edited", "reaction"]).await;
}

#[tokio::test]
async fn room_joined_and_history_pages_stay_under_the_frame_limit() {
    let t = TestApp::spawn_with(|c| c.rate_limit_per_min = 1000).await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "general").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    // 50 messages of 4,000 four-byte characters: 800 KB of history.
    let body = "😀".repeat(4000);
    let mut ids = Vec::new();
    for _ in 0..50 {
        ids.push(post(&mut a, room.id, &body).await);
    }

    let (_, joined) = t.ws_in_room(&ana, room.id).await;
    let size = serde_json::to_string(&joined).unwrap().len();
    assert!(size <= BOUND, "room_joined is {size} bytes");
    let messages = joined["messages"].as_array().unwrap();
    assert!(!messages.is_empty(), "the newest messages are there");
    assert_eq!(messages.last().unwrap()["id"], ids[49].to_string(), "ending with the newest");
    assert_eq!(joined["has_more"], true, "{}", joined["has_more"]);

    let res = t.get(Some(&ana.token), &format!("/api/rooms/{}/messages?limit=100", room.id)).await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(text.len() <= BOUND, "the history page is {} bytes", text.len());
    let page: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(page["messages"].as_array().unwrap().last().unwrap()["id"], ids[49].to_string());
    let before = page["next_before"].as_str().expect("an older page to fetch");

    // Paging back reaches the very first message, each page under the bound.
    let mut before = before.to_owned();
    let mut seen = page["messages"].as_array().unwrap().len();
    loop {
        let res = t.get(Some(&ana.token), &format!("/api/rooms/{}/messages?limit=100&before={before}", room.id)).await;
        let text = res.text().await.unwrap();
        assert!(text.len() <= BOUND, "an older page is {} bytes", text.len());
        let page: Value = serde_json::from_str(&text).unwrap();
        seen += page["messages"].as_array().unwrap().len();
        match page["next_before"].as_str() {
            Some(id) => before = id.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen, 50, "every message on some page");
}

/// A room with thousands of people online: `room_joined` names the joiner and a hundred at most,
/// counts everyone, and still carries the whole history page under the frame limit. (Before,
/// who was online took the frame first: 2,000 people left room for a single message, in a frame
/// API Gateway would refuse.)
#[tokio::test]
async fn a_crowded_room_joined_names_a_hundred_counts_everyone_and_keeps_its_history() {
    let t = TestApp::spawn_with(|c| c.rate_limit_per_min = 1000).await;
    let (ana, ben, room) = t.ana_and_ben().await;
    let (mut a, _) = t.ws_in_room(&ana, room).await;
    let mut ids = Vec::new();
    for _ in 0..50 {
        ids.push(post(&mut a, room, &"a".repeat(1_000)).await);
    }
    // 2,000 more people online, each with a 60-character name (sockets the registry holds).
    let connections = &t.local.app.connections;
    for i in 0..2_000 {
        let entry = registry_entry(&format!("crowd-{i}"), Uuid::now_v7(), &format!("z{i:04}{}", "x".repeat(55)));
        let id = entry.id.clone();
        connections.register(entry).await.unwrap();
        assert!(connections.join(&id, room).await.unwrap());
    }

    let (_b, joined) = t.ws_in_room(&ben, room).await;
    let size = serde_json::to_string(&joined).unwrap().len();
    assert!(size <= BOUND, "room_joined is {size} bytes");
    assert_eq!(joined["online_count"], 2_002, "the crowd, Ana and Ben");
    let online = joined["online"].as_array().unwrap();
    assert_eq!(online.len(), 100);
    assert_eq!(online[0]["user_id"], ben.id.to_string(), "the joiner first");
    assert_eq!(online[1]["display_name"], ana.name, "then the others by name");
    assert_eq!(online[2]["display_name"].as_str().unwrap()[..5], *"z0000");
    let messages = joined["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 50, "the whole page");
    assert_eq!(messages.last().unwrap()["id"], ids[49].to_string());
    assert_eq!(joined["has_more"], false);

    // A room with only its joiner online counts one.
    let quiet = t.create_room(&ana, "quiet").await;
    let (_, joined) = t.ws_in_room(&ana, quiet.id).await;
    assert_eq!(joined["online_count"], 1);
    assert_eq!(joined["online"].as_array().unwrap().len(), 1);
}

/// `mathia-local` counts rate windows in memory; the Lambda functions count them in Redis. The
/// two decide alike for the same events: the same refusals, with the same time to wait, through
/// bursts in one millisecond, a window sliding past, and a clock set back.
#[tokio::test]
async fn the_rate_window_in_memory_decides_as_the_one_in_redis() {
    let t = TestApp::spawn().await;
    let app = &t.local.app;
    let memory = app.rate_windows.as_ref().expect("mathia-local counts in memory");
    let window = std::time::Duration::from_secs(60);
    let mut times = vec![0, 0, 0, 1, 500, 500, 30_000, 59_999, 60_000, 60_000, 60_001, 61_000, 45_000, 119_999];
    times.extend((0..40).map(|i| 120_000 + i * 1_700));
    times.extend([100_000, 190_000, 250_000]);
    let base = 1_800_000_000_000_i64;
    let (mut refused, subject) = (0, format!("msg:{}", Uuid::new_v4()));
    for (i, at) in times.iter().enumerate() {
        let now_ms = base + at;
        let in_memory = memory.check(&subject, now_ms, window, 4);
        let in_redis = app.redis.rate_limit(&subject, now_ms, window, 4, &format!("event-{i}")).await.unwrap();
        assert_eq!(in_memory, in_redis, "event {i} at +{at} ms");
        refused += usize::from(in_memory != mathia::adapters::redis::RateDecision::Allowed);
    }
    assert!(refused > 10, "the sequence reaches the limit often ({refused} refusals)");
}

/// Counts what `join_room` frames were answered with, up to the pong after them.
async fn join_answers(ws: &mut WsClient, room: Uuid, n: usize) -> std::collections::BTreeMap<String, usize> {
    for _ in 0..n {
        ws.send(json!({"action": "join_room", "room_id": room})).await;
    }
    ws.send(json!({"action": "ping"})).await;
    let mut answers = std::collections::BTreeMap::new();
    loop {
        let ev = ws.recv().await;
        let kind = match ev["type"].as_str() {
            Some("pong") => return answers,
            Some("error") => {
                // A refused join names its room: the frame has no `ref` to match it by.
                assert_eq!(ev["room_id"], json!(room), "{ev}");
                format!("error {}", ev["code"].as_str().unwrap())
            }
            other => other.unwrap_or_else(|| panic!("an event without a type: {ev}")).to_owned(),
        };
        *answers.entry(kind).or_default() += 1;
    }
}

/// A person reads a bounded number of history pages a minute, `join_room` and HTTP together:
/// each is a read and decryption of a page, and one person's loop would take the database from
/// everyone. Past the bound a join is `rate_limited` (and subscribes nothing) and the HTTP read
/// 429; others read on, a non-member's joins count against their own budget, a muted member
/// still reads, and a logged-out session reads nothing.
#[tokio::test]
async fn a_join_or_history_loop_reads_at_most_the_persons_pages_a_minute() {
    let t = TestApp::spawn_with(|c| {
        c.history_pages_per_minute = 30;
        c.ws_frames_per_s = 10_000;
        c.ws_frame_burst = 10_000;
    })
    .await;
    let (ana, ben, room) = t.ana_and_ben().await;
    let carol = t.register("Carol").await;
    let started = std::time::Instant::now();
    let mut a = t.ws(&ana).await;
    let answers = join_answers(&mut a, room, 25).await;
    assert_eq!(answers.get("room_joined"), Some(&25), "{answers:?}");
    let pages = |token: String| {
        let http = t.http.clone();
        let url = t.url(&format!("/api/rooms/{room}/messages"));
        async move { http.get(url).bearer_auth(token).send().await.unwrap() }
    };
    for _ in 0..5 {
        assert_eq!(pages(ana.token.clone()).await.status(), 200);
    }
    let refused = pages(ana.token.clone()).await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().get("retry-after").is_some());
    assert_eq!(refused.json::<Value>().await.unwrap()["error"]["code"], "rate_limited");
    let answers = join_answers(&mut a, room, 10).await;
    // One window of a minute, unless this machine took longer than that.
    if started.elapsed().as_secs() < 60 {
        assert_eq!(answers.get("error rate_limited"), Some(&10), "{answers:?}");
        assert_eq!(answers.get("room_joined"), None, "{answers:?}");
    }

    // Ben reads on: the budget is Ana's.
    let (mut b, joined) = t.ws_in_room(&ben, room).await;
    assert_eq!(joined["room_id"], json!(room));
    assert_eq!(pages(ben.token.clone()).await.status(), 200);
    b.assert_alive().await;

    // Carol is not a member: her joins are refused, and counted against her own budget.
    let mut c = t.ws(&carol).await;
    let answers = join_answers(&mut c, room, 35).await;
    assert_eq!(answers.get("error not_member"), Some(&30), "{answers:?}");
    assert_eq!(answers.get("error rate_limited"), Some(&5), "{answers:?}");

    // A muted member still reads.
    let now = chrono::Utc::now();
    mathia::adapters::postgres::moderation::mute(
        &t.db().await,
        room,
        ben.id,
        now + chrono::Duration::minutes(10),
        "test",
        now,
    )
    .await
    .unwrap()
    .expect("muted");
    assert_eq!(pages(ben.token.clone()).await.status(), 200);
    b.send(json!({"action": "join_room", "room_id": room})).await;
    b.recv_type("room_joined").await;

    // A logged-out session reads nothing, whatever its budget.
    assert_eq!(t.post(Some(&ben.token), "/api/auth/logout", json!({})).await.status(), 204);
    assert_eq!(pages(ben.token.clone()).await.status(), 401);
}
