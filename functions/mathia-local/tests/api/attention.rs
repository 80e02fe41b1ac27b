//! Attention: mentions stored by id (members only), read markers that only move forward, the
//! counts on `GET /api/rooms` and `room_joined`, `read_marker` to a person's other connections,
//! and "Catch me up" over what came after the marker — refused to outsiders, logged-out sessions
//! and floods, with nothing changed.

use std::time::Duration;

use chrono::Utc;
use mathia::adapters::postgres::moderation;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    fake_model::FakeModel,
    helpers::{TestApp, TestUser, WsClient},
};

/// Sends a message and answers it as the room saw it.
async fn say(ws: &mut WsClient, room: Uuid, body: &str) -> Value {
    let cid = Uuid::new_v4().to_string();
    ws.send(json!({"action": "new_message", "room_id": room, "body": body, "client_msg_id": cid})).await;
    loop {
        let ev = ws.recv_type("new_message").await;
        if ev["message"]["client_msg_id"] == cid.as_str() {
            return ev["message"].clone();
        }
    }
}

/// How `user` stands in `room` according to `GET /api/rooms`.
async fn listed(t: &TestApp, user: &TestUser, room: Uuid) -> Value {
    let res = t.get(Some(&user.token), "/api/rooms").await;
    assert_eq!(res.status(), 200);
    let rooms: Vec<Value> = res.json().await.unwrap();
    rooms.into_iter().find(|r| r["id"] == room.to_string()).expect("the room is listed")
}

fn counts(v: &Value) -> (i64, i64, i64) {
    (v["last_read_seq"].as_i64().unwrap(), v["unread_count"].as_i64().unwrap(), v["mention_count"].as_i64().unwrap())
}

async fn markers(t: &TestApp, user: Uuid) -> Vec<(Uuid, i64)> {
    sqlx::query_as("SELECT room_id, last_read_seq FROM read_markers WHERE user_id = $1")
        .bind(user)
        .fetch_all(&t.db().await)
        .await
        .unwrap()
}

async fn mention_rows(t: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM message_mentions").fetch_one(&t.db().await).await.unwrap()
}

#[tokio::test]
async fn a_mention_is_stored_by_id_and_survives_a_rename() {
    let t = TestApp::spawn().await;
    let (ana, ben, room) = t.ana_and_ben().await;
    let (mut a, _) = t.ws_in_room(&ana, room).await;
    let (mut b, _) = t.ws_in_room(&ben, room).await;

    let sent = say(&mut a, room, &format!("<@{}> can you look at the launch plan?", ben.id)).await;
    assert_eq!(sent["mentions"], json!([ben.id]), "{sent}");
    assert_eq!(sent["mentions_room"], false);
    let seen = b.recv_type("new_message").await;
    assert_eq!(seen["message"]["mentions"], json!([ben.id]), "Ben's socket hears he was mentioned");
    assert_eq!(counts(&listed(&t, &ben, room).await), (0, 1, 1), "one unread, and it mentions Ben");
    assert_eq!(counts(&listed(&t, &ana, room).await).1, 0, "your own messages are not unread");

    let res = t
        .put(&ben.token, "/api/onboarding/profile", json!({"display_name": "Benjamin", "timezone": "Europe/Paris"}))
        .await;
    assert_eq!(res.status(), 200);
    let members: Vec<Value> =
        t.get(Some(&ana.token), &format!("/api/rooms/{room}/members")).await.json().await.unwrap();
    let benjamin = members.iter().find(|m| m["id"] == ben.id.to_string()).expect("Ben is a member");
    assert_eq!(benjamin["display_name"], "Benjamin", "the mention is rendered with the current name");
    let history: Value = t.get(Some(&ana.token), &format!("/api/rooms/{room}/messages")).await.json().await.unwrap();
    let stored = history["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(stored["mentions"], json!([ben.id]), "still Ben's mention after the rename");
    assert_eq!(stored["body"], format!("<@{}> can you look at the launch plan?", ben.id));
    assert_eq!(counts(&listed(&t, &ben, room).await), (0, 1, 1), "counts survive a reload");
}

#[tokio::test]
async fn room_mentions_everyone_a_reply_counts_and_a_non_member_is_mentioned_nowhere() {
    let t = TestApp::spawn().await;
    let (ana, ben, room) = t.ana_and_ben().await;
    let carl = t.register("Carl").await;
    let carls_room = t.create_room(&carl, "carl's own").await;
    let mut c = t.ws(&carl).await;
    c.send(json!({"action": "join_room", "room_id": carls_room.id})).await;
    c.recv_type("room_joined").await;
    let (mut a, _) = t.ws_in_room(&ana, room).await;
    let (mut b, _) = t.ws_in_room(&ben, room).await;

    let all = say(&mut a, room, &format!("@room standup in 5, and <@{}> too", carl.id)).await;
    assert_eq!(all["mentions"], json!([]), "Carl is not in the room: no mention of him is kept");
    assert_eq!(all["mentions_room"], true);
    assert_eq!(mention_rows(&t).await, 1, "only the @room mention is stored");
    c.none_of_before_pong(&["new_message", "read_marker"]).await;
    assert_eq!(counts(&listed(&t, &carl, carls_room.id).await), (0, 0, 0), "Carl hears of nothing");

    b.recv_type("new_message").await;
    let mine = say(&mut b, room, "I'll be there").await;
    let cid = "reply-1";
    a.send(json!({"action": "new_message", "room_id": room, "body": "great", "client_msg_id": cid, "reply_to": mine["id"]}))
        .await;
    a.recv_type("ack").await;
    a.send(json!({"action": "new_message", "room_id": room, "body": "anyone else?", "client_msg_id": "plain"})).await;
    a.recv_type("ack").await;
    // @room, a reply to Ben, and a plain message: three unread, two of them for him.
    assert_eq!(counts(&listed(&t, &ben, room).await), (0, 3, 2));
    assert_eq!(counts(&listed(&t, &ana, room).await), (0, 1, 0), "Ben's message is Ana's one unread");
}

/// Ana's room with Ben in it, on a server whose limits let one sender go as fast as it can.
async fn busy_room() -> (TestApp, TestUser, TestUser, Uuid) {
    let t = TestApp::spawn_with(|c| {
        c.rate_limit_per_min = 100_000;
        c.ws_frames_per_s = 100_000;
        c.ws_frame_burst = 100_000;
    })
    .await;
    let (ana, ben, room) = t.ana_and_ben().await;
    (t, ana, ben, room)
}

/// Ana sends 300 messages, each after the last one's `ack`, in a task of its own.
async fn pour_in(t: &TestApp, ana: &TestUser, room: Uuid) -> tokio::task::JoinHandle<()> {
    let (mut a, _) = t.ws_in_room(ana, room).await;
    tokio::spawn(async move {
        for i in 0..300 {
            a.send(json!({"action": "new_message", "room_id": room, "body": format!("update {i}"), "client_msg_id": format!("c{i}")}))
                .await;
            a.recv_type("ack").await;
        }
    })
}

/// `room_joined`'s counts go with its page: they count up to the page's newest message and no
/// further, so a message stored while the join is being answered is counted once — by the page,
/// or as the `new_message` that follows it — never by both and never by neither. Ben joins over
/// and over while Ana's messages pour in; every answer must agree with the database.
#[tokio::test]
async fn room_joined_counts_go_with_its_page_while_messages_pour_in() {
    let (t, ana, ben, room) = busy_room().await;
    let mut b = t.ws(&ben).await;
    let sender = pour_in(&t, &ana, room).await;
    let mut joins = Vec::new();
    while !sender.is_finished() {
        b.send(json!({"action": "join_room", "room_id": room})).await;
        joins.push(b.recv_type("room_joined").await);
        b.send(json!({"action": "leave_room", "room_id": room})).await;
    }
    sender.await.unwrap();
    assert!(joins.len() >= 10, "Ben joined while the messages came in ({} times)", joins.len());
    let db = t.db().await;
    for joined in &joins {
        let newest = joined["messages"].as_array().unwrap().iter().filter_map(|m| m["seq"].as_i64()).max().unwrap_or(0);
        let (last_read, unread, _) = counts(joined);
        let truth = unread_between(&db, room, ben.id, last_read, newest).await;
        assert_eq!(unread, truth, "unread up to the page's newest message (seq {newest})");
    }
}

/// Messages of others in `room` after `after`, up to `until`, in the database.
async fn unread_between(db: &sqlx::PgPool, room: Uuid, reader: Uuid, after: i64, until: i64) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM messages WHERE room_id = $1 AND seq > $2 AND seq <= $3 AND author_id <> $4",
    )
    .bind(room)
    .bind(after)
    .bind(until)
    .bind(reader)
    .fetch_one(db)
    .await
    .unwrap()
}

/// `read_marker` says which messages its counts cover (`counted_to_seq`): a client adds the ones
/// after it that reached it first. Ben marks read over and over while Ana's messages pour in;
/// every answer must agree with the database.
#[tokio::test]
async fn read_marker_counts_say_how_far_they_go_while_messages_pour_in() {
    let (t, ana, ben, room) = busy_room().await;
    let (mut b, _) = t.ws_in_room(&ben, room).await;
    let sender = pour_in(&t, &ana, room).await;
    let mut markers_heard = Vec::new();
    while !sender.is_finished() || markers_heard.is_empty() {
        let ev = b.recv().await;
        if ev["type"] == "new_message" {
            let newest_heard = ev["message"]["seq"].as_i64().unwrap();
            b.send(
                json!({"action": "mark_read", "room_id": room, "seq": newest_heard / 2 + markers_heard.len() as i64}),
            )
            .await;
        } else if ev["type"] == "read_marker" {
            markers_heard.push(ev);
        }
    }
    sender.await.unwrap();
    assert!(markers_heard.len() >= 10, "Ben's marker moved while the messages came in ({} times)", markers_heard.len());
    let db = t.db().await;
    for heard in &markers_heard {
        let (seq, unread, to) = (
            heard["seq"].as_i64().unwrap(),
            heard["unread_count"].as_i64().unwrap(),
            heard["counted_to_seq"].as_i64().unwrap(),
        );
        assert!(to >= seq, "{heard}");
        assert_eq!(unread, unread_between(&db, room, ben.id, seq, to).await, "unread up to seq {to}: {heard}");
    }
}

#[tokio::test]
async fn a_read_marker_moves_forward_only_and_the_other_connection_hears_it() {
    let t = TestApp::spawn().await;
    let (ana, ben, room) = t.ana_and_ben().await;
    let (mut a, _) = t.ws_in_room(&ana, room).await;
    let mut seqs = Vec::new();
    for i in 0..3 {
        let body = if i == 2 { format!("<@{}> see above", ben.id) } else { format!("update {i}") };
        seqs.push(say(&mut a, room, &body).await["seq"].as_i64().unwrap());
    }
    let (mut phone, joined) = t.ws_in_room(&ben, room).await;
    assert_eq!((joined["last_read_seq"].as_i64(), joined["unread_count"].as_i64()), (Some(0), Some(3)), "{joined}");
    assert_eq!(joined["mention_count"], 1);
    let (mut laptop, _) = t.ws_in_room(&ben, room).await;

    phone.send(json!({"action": "mark_read", "room_id": room, "seq": seqs[1]})).await;
    let heard = laptop.recv_type("read_marker").await;
    assert_eq!(
        heard,
        json!({"type": "read_marker", "room_id": room, "seq": seqs[1], "unread_count": 1, "mention_count": 1,
               "counted_to_seq": seqs[2]})
    );
    phone.recv_type("read_marker").await;

    // Backwards: nothing moves, nobody hears of it.
    phone.send(json!({"action": "mark_read", "room_id": room, "seq": seqs[0]})).await;
    phone.none_of_before_pong(&["read_marker", "error"]).await;
    laptop.none_of_before_pong(&["read_marker"]).await;
    assert_eq!(markers(&t, ben.id).await, vec![(room, seqs[1])]);
    let row = listed(&t, &ben, room).await;
    assert_eq!(counts(&row), (seqs[1], 1, 1));
    assert_eq!(row["counted_to_seq"], seqs[2], "the list says how far its counts go: {row}");

    // Past the end: the marker stops at the room's last message. Over HTTP too.
    let res = t.post(Some(&ben.token), &format!("/api/rooms/{room}/read"), json!({"seq": 1_000_000})).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(counts(&body), (seqs[2], 0, 0), "{body}");
    let heard = laptop.recv_type("read_marker").await;
    assert_eq!((heard["seq"].as_i64(), heard["unread_count"].as_i64()), (Some(seqs[2]), Some(0)));
    phone.recv_type("read_marker").await; // a move over HTTP reaches every socket of the person
    let (_, rejoined) = t.ws_in_room(&ben, room).await;
    assert_eq!(counts(&rejoined), (seqs[2], 0, 0), "a reload agrees");

    phone.send(json!({"action": "mark_read", "room_id": room, "seq": -1})).await;
    assert_eq!(phone.recv_error().await["code"], "bad_request");
    phone.send(json!({"action": "mark_read", "room_id": room, "seq": "last"})).await;
    assert_eq!(phone.recv_error().await["code"], "bad_request");
    phone.assert_alive().await;
    assert_eq!(markers(&t, ben.id).await, vec![(room, seqs[2])]);
}

#[tokio::test]
async fn an_outsider_cannot_mark_read_list_members_or_catch_up_and_nothing_is_stored() {
    let t = TestApp::spawn().await;
    let (ana, _ben, room) = t.ana_and_ben().await;
    let (mut a, _) = t.ws_in_room(&ana, room).await;
    let seq = say(&mut a, room, "private plans").await["seq"].as_i64().unwrap();
    let eve = t.register("Eve").await;

    let mut e = t.ws(&eve).await;
    e.send(json!({"action": "mark_read", "room_id": room, "seq": seq})).await;
    assert_eq!(e.recv_error().await["code"], "not_member");
    e.send(json!({"action": "mark_read", "room_id": Uuid::new_v4(), "seq": 1})).await;
    assert_eq!(e.recv_error().await["code"], "not_member", "an unknown room reads like someone else's");
    e.assert_alive().await;
    for path in ["read", "catch-up"] {
        let res = t.post(Some(&eve.token), &format!("/api/rooms/{room}/{path}"), json!({"seq": seq})).await;
        assert_eq!(res.status(), 403, "{path}");
    }
    let res = t.get(Some(&eve.token), &format!("/api/rooms/{room}/members")).await;
    assert_eq!(res.status(), 403);
    let res = t.post(None, &format!("/api/rooms/{room}/read"), json!({"seq": seq})).await;
    assert_eq!(res.status(), 401);
    assert!(markers(&t, eve.id).await.is_empty(), "nothing stored for the outsider");
    a.none_of_before_pong(&["read_marker"]).await;
}

#[tokio::test]
async fn a_logged_out_session_cannot_mark_read_or_catch_up() {
    let t = TestApp::spawn().await;
    let (ana, ben, room) = t.ana_and_ben().await;
    let (mut a, _) = t.ws_in_room(&ana, room).await;
    let seq = say(&mut a, room, "hello Ben").await["seq"].as_i64().unwrap();
    let second =
        t.post(None, "/api/auth/login", json!({"email": ben.email, "password": "correct horse battery"})).await;
    let other_token = second.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned();
    let mut other = t.ws(&TestUser { token: other_token.clone(), ..ben.clone() }).await;
    other.send(json!({"action": "join_room", "room_id": room})).await;
    other.recv_type("room_joined").await;

    assert_eq!(t.post(Some(&ben.token), "/api/auth/logout", json!({})).await.status(), 204);
    for path in ["read", "catch-up"] {
        let res = t.post(Some(&ben.token), &format!("/api/rooms/{room}/{path}"), json!({"seq": seq})).await;
        assert_eq!(res.status(), 401, "{path}");
        assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "invalid_token");
    }
    assert!(markers(&t, ben.id).await.is_empty(), "nothing stored");
    other.none_of_before_pong(&["read_marker"]).await;
    assert_eq!(counts(&listed(&t, &TestUser { token: other_token, ..ben.clone() }, room).await), (0, 1, 0));
}

#[tokio::test]
async fn a_flood_of_read_markers_or_catch_ups_is_rate_limited_and_changes_nothing() {
    let t = TestApp::spawn_with(|c| c.rate_limit_per_min = 3).await;
    let (ana, ben, room) = t.ana_and_ben().await;
    let (mut a, _) = t.ws_in_room(&ana, room).await;
    let mut seqs = Vec::new();
    for i in 0..3 {
        seqs.push(say(&mut a, room, &format!("note {i}")).await["seq"].as_i64().unwrap());
    }
    let (mut b, _) = t.ws_in_room(&ben, room).await;
    // 3 messages a minute → 12 read markers a minute.
    for _ in 0..12 {
        b.send(json!({"action": "mark_read", "room_id": room, "seq": seqs[0]})).await;
    }
    b.send(json!({"action": "mark_read", "room_id": room, "seq": seqs[2]})).await;
    let refused = loop {
        let ev = b.recv().await;
        if ev["type"] == "error" {
            break ev;
        }
    };
    assert_eq!(refused["code"], "rate_limited", "{refused}");
    assert!(refused["retry_after_ms"].as_u64().unwrap() > 0);
    b.assert_alive().await;
    assert_eq!(markers(&t, ben.id).await, vec![(room, seqs[0])], "the marker stayed");

    for _ in 0..3 {
        let res = t.post(Some(&ben.token), &format!("/api/rooms/{room}/catch-up"), json!({})).await;
        assert_eq!(res.status(), 200);
    }
    let res = t.post(Some(&ben.token), &format!("/api/rooms/{room}/catch-up"), json!({})).await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(t.message_count().await, 3, "catching up never posts to the room");
}

#[tokio::test]
async fn a_muted_member_may_still_read_and_catch_up() {
    let t = TestApp::spawn().await;
    let (ana, ben, room) = t.ana_and_ben().await;
    let (mut a, _) = t.ws_in_room(&ana, room).await;
    let seq = say(&mut a, room, "the plan is ready").await["seq"].as_i64().unwrap();
    let now = Utc::now();
    moderation::mute(&t.db().await, room, ben.id, now + chrono::Duration::minutes(10), "test", now)
        .await
        .unwrap()
        .expect("muted");
    let res = t.post(Some(&ben.token), &format!("/api/rooms/{room}/catch-up"), json!({})).await;
    assert_eq!(res.status(), 200, "reading is not speaking");
    let (mut b, _) = t.ws_in_room(&ben, room).await;
    b.send(json!({"action": "mark_read", "room_id": room, "seq": seq})).await;
    assert_eq!(b.recv_type("read_marker").await["unread_count"], 0);
    b.send(json!({"action": "new_message", "room_id": room, "body": "hi", "client_msg_id": "m"})).await;
    assert_eq!(b.recv_error().await["code"], "muted", "but speaking is still refused");
    assert_eq!(t.message_count().await, 1);
}

#[tokio::test]
async fn catching_up_summarises_only_what_came_after_the_marker() {
    let t = TestApp::spawn().await;
    let (ana, ben, room) = t.ana_and_ben().await;
    let (mut a, _) = t.ws_in_room(&ana, room).await;
    let read = say(&mut a, room, "old news: the office moved").await["seq"].as_i64().unwrap();
    let res = t.post(Some(&ben.token), &format!("/api/rooms/{room}/read"), json!({"seq": read})).await;
    assert_eq!(res.status(), 200);
    let res = t.post(Some(&ben.token), &format!("/api/rooms/{room}/catch-up"), json!({})).await;
    let nothing: Value = res.json().await.unwrap();
    assert_eq!((nothing["source"].as_str(), nothing["message_count"].as_u64()), (Some("none"), Some(0)));
    assert!(nothing["summary"].as_str().unwrap().contains("caught up"), "{nothing}");

    say(&mut a, room, "we ship on Friday").await;
    let last = say(&mut a, room, &format!("<@{}> please write the release notes", ben.id)).await;
    let res = t.post(Some(&ben.token), &format!("/api/rooms/{room}/catch-up"), json!({})).await;
    assert_eq!(res.status(), 200);
    let summary: Value = res.json().await.unwrap();
    assert_eq!(summary["source"], "digest", "no model configured");
    assert_eq!((summary["since_seq"].as_i64(), summary["until_seq"].as_i64()), (Some(read), last["seq"].as_i64()));
    assert_eq!(summary["message_count"], 2);
    let text = summary["summary"].as_str().unwrap();
    assert!(text.contains("we ship on Friday") && text.contains("@Ben please write the release notes"), "{text}");
    assert!(text.contains("(mentions you)"), "{text}");
    assert!(!text.contains("office moved"), "read messages are left out: {text}");
    assert_eq!(markers(&t, ben.id).await, vec![(room, read)], "catching up does not mark read");
    assert_eq!(t.message_count().await, 3, "nothing is posted to the room");
}

#[tokio::test]
async fn catching_up_asks_the_model_with_the_unread_messages_only_and_is_free() {
    let model = FakeModel::start(FakeModel::words("You missed the Friday ship date.", Duration::from_millis(1))).await;
    let url = model.base_url.clone();
    let t = TestApp::spawn_with(|c| c.ai_base_url = Some(url)).await;
    let (ana, ben, room) = t.ana_and_ben().await;
    let (mut a, _) = t.ws_in_room(&ana, room).await;
    let read = say(&mut a, room, "old news: the office moved").await["seq"].as_i64().unwrap();
    t.post(Some(&ben.token), &format!("/api/rooms/{room}/read"), json!({"seq": read})).await;
    say(&mut a, room, "we ship on Friday").await;
    let db = t.db().await;
    let debits_now =
        || sqlx::query_scalar::<_, i64>("SELECT count(*) FROM ledger_entries WHERE kind = 'debit'").fetch_one(&db);
    let debits = debits_now().await.unwrap();

    let res = t.post(Some(&ben.token), &format!("/api/rooms/{room}/catch-up"), json!({})).await;
    let summary: Value = res.json().await.unwrap();
    assert_eq!(summary["source"], "model", "{summary}");
    assert_eq!(summary["summary"], "You missed the Friday ship date.");
    let requests = model.requests();
    assert_eq!(requests.len(), 1);
    let prompt = requests[0]["messages"].to_string();
    assert!(prompt.contains("we ship on Friday") && prompt.contains("Catch Ben up"), "{prompt}");
    assert!(!prompt.contains("office moved"), "only messages after the marker: {prompt}");
    assert_eq!(debits_now().await.unwrap(), debits, "free, like the other connector replies");
}
