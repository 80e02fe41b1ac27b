//! A muted person may read but not change the room: edits, reactions, notes, uploads and their
//! reminders' room posts are refused with `muted` (and when it ends) while the mute lasts.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use mathia::{
    adapters::{local::ManualClock, postgres::moderation},
    ports::QueueName,
    workers::{self, ReminderJob},
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, TestUser};

/// Ana owns the room, Ben is in it and has said something; then Ben is muted for ten minutes.
async fn ben_muted(t: &TestApp) -> (TestUser, TestUser, Uuid, Uuid) {
    muted_at(t, Utc::now()).await
}

async fn muted_at(t: &TestApp, now: chrono::DateTime<Utc>) -> (TestUser, TestUser, Uuid, Uuid) {
    let ana = t.register("Ana").await;
    let ben = t.register("Ben").await;
    let room = t.create_room(&ana, "general").await;
    t.bring_in(&ana, room.id, &ben).await;
    let (mut b, _) = t.ws_in_room(&ben, room.id).await;
    b.send(json!({"action": "new_message", "room_id": room.id, "body": "hello", "client_msg_id": "m1"})).await;
    let message_id: Uuid = b.recv_type("ack").await["message_id"].as_str().unwrap().parse().unwrap();
    b.close().await;
    moderation::mute(&t.db().await, room.id, ben.id, now + chrono::Duration::minutes(10), "test", now)
        .await
        .unwrap()
        .expect("muted");
    (ana, ben, room.id, message_id)
}

#[tokio::test]
async fn a_muted_member_cannot_edit_or_react_and_the_socket_stays_open() {
    let t = TestApp::spawn().await;
    let (ana, ben, room, message_id) = ben_muted(&t).await;
    let (mut a, _) = t.ws_in_room(&ana, room).await;
    let (mut b, _) = t.ws_in_room(&ben, room).await;

    b.send(json!({"action": "edit_message", "room_id": room, "message_id": message_id, "body": "edited while muted"}))
        .await;
    let refused = b.recv_error().await;
    assert_eq!(refused["code"], "muted", "{refused}");
    assert!(refused["until"].is_string(), "{refused}");

    b.send(json!({"action": "react", "room_id": room, "message_id": message_id, "emoji": "👍", "on": true})).await;
    let refused = b.recv_error().await;
    assert_eq!(refused["code"], "muted", "{refused}");
    b.assert_alive().await;

    a.none_of_before_pong(&["message_edited", "reaction"]).await;
    let history: Value = t.get(Some(&ana.token), &format!("/api/rooms/{room}/messages")).await.json().await.unwrap();
    let stored = history["messages"].as_array().unwrap().iter().find(|m| m["id"] == message_id.to_string()).unwrap();
    assert_eq!(stored["body"], "hello", "the edit was not stored");
    assert_eq!(stored["reactions"], json!([]), "the reaction was not stored");
}

#[tokio::test]
async fn a_muted_member_cannot_add_notes_or_declare_uploads() {
    let t = TestApp::spawn().await;
    let (_ana, ben, room, _) = ben_muted(&t).await;

    let res = t
        .post(Some(&ben.token), &format!("/api/rooms/{room}/notes"), json!({"text": "a note", "priority": "normal"}))
        .await;
    assert_eq!(res.status(), 403);
    assert!(res.headers().get("retry-after").is_some(), "says when to try again");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "muted", "{body}");
    assert!(body["error"]["until"].is_string(), "{body}");

    let res = crate::files::declare(&t, &ben, room, "a.png", 2000).await;
    assert_eq!(res.status(), 403);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "muted", "{body}");
    let notes: i64 = sqlx::query_scalar("SELECT count(*) FROM notes").fetch_one(&t.db().await).await.unwrap();
    assert_eq!(notes, 0);
}

#[tokio::test]
async fn a_reminder_of_a_muted_member_reaches_them_but_not_the_room() {
    let start = Utc.with_ymd_and_hms(2026, 11, 25, 13, 0, 0).unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let t = TestApp::spawn_with_clock(clock.clone()).await;
    let (ana, ben, room, _) = muted_at(&t, start).await;
    let (mut a, _) = t.ws_in_room(&ana, room).await;
    let (mut b, _) = t.ws_in_room(&ben, room).await;
    // Due in five minutes: the queue holds it for five real minutes, so this test delivers it.
    let due = start + chrono::Duration::minutes(5);
    let reminder = mathia::reminders::set(&t.local.app, ben.id, room, None, "say something rude", due).await.unwrap();
    let job = serde_json::to_string(&ReminderJob { job_id: reminder.id, reminder_id: reminder.id }).unwrap();
    clock.advance(chrono::Duration::minutes(6));
    workers::handle(&t.local.app, QueueName::Reminders, &job).await.unwrap();

    assert_eq!(b.recv_type("reminder").await["reminder"]["id"], reminder.id.to_string(), "Ben is reminded");
    a.none_of_before_pong(&["new_message"]).await;
    let system: i64 = sqlx::query_scalar("SELECT count(*) FROM messages WHERE kind = 'system'")
        .fetch_one(&t.db().await)
        .await
        .unwrap();
    assert_eq!(system, 0, "nothing was posted in Ben's name while he is muted");
}
