//! Encryption at rest: no table holds a body, a note or a reminder in plaintext; rotation keeps
//! old messages readable.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use mathia::{
    adapters::local::ManualClock,
    ports::QueueName,
    workers::{self, ReminderJob},
};
use serde_json::{Value, json};

use crate::helpers::{TestApp, unique};

/// Every row of every table in the database, as text.
async fn dump_database(pool: &sqlx::PgPool) -> String {
    let tables: Vec<String> = sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'")
        .fetch_all(pool)
        .await
        .unwrap();
    let mut dump = String::new();
    for table in tables {
        let rows: Vec<String> =
            sqlx::query_scalar(&format!(r#"SELECT t::text FROM "{table}" t"#)).fetch_all(pool).await.unwrap();
        dump.push_str(&rows.join("\n"));
    }
    dump
}

#[tokio::test]
async fn no_table_holds_a_body_and_rotation_keeps_history_readable() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "general").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;

    let before = unique("canary-before-rotation");
    a.send(json!({"action": "new_message", "room_id": room.id, "body": before, "client_msg_id": "1"})).await;
    a.recv_type("new_message").await;

    let version = t.local.app.keyring.rotate(room.id).await.unwrap();
    assert_eq!(version, 2);

    let after = unique("canary-after-rotation");
    a.send(json!({"action": "new_message", "room_id": room.id, "body": after, "client_msg_id": "2"})).await;
    a.recv_type("new_message").await;

    let pool = t.db().await;
    let dump = dump_database(&pool).await;
    assert!(dump.contains(&room.id.to_string()), "the dump sees the tables");
    // Neither as text nor as the hex of a bytea.
    let hex = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    for canary in [&before, &after] {
        assert!(!dump.contains(canary.as_str()), "plaintext found");
        assert!(!dump.contains(&hex(canary)), "plaintext bytes found");
    }
    let versions: Vec<i32> =
        sqlx::query_scalar("SELECT key_version FROM messages ORDER BY seq").fetch_all(&pool).await.unwrap();
    assert_eq!(versions, vec![1, 2]);

    // A fresh process (empty key cache) reads both back through the master key.
    let history: Value =
        t.get(Some(&ana.token), &format!("/api/rooms/{}/messages", room.id)).await.json().await.unwrap();
    let bodies: Vec<&str> =
        history["messages"].as_array().unwrap().iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, vec![before.as_str(), after.as_str()]);
    let fresh = mathia::keyring::RoomKeyring::new(&t.local.app.config.master_key, pool.clone());
    let (nonce, ciphertext, id): (Vec<u8>, Vec<u8>, uuid::Uuid) =
        sqlx::query_as("SELECT nonce, ciphertext, id FROM messages WHERE seq = 1").fetch_one(&pool).await.unwrap();
    let sealed = mathia::keyring::Sealed { key_version: 1, nonce, ciphertext };
    let aad = mathia::keyring::Aad::message(id);
    assert_eq!(fresh.open_text(room.id, aad, &sealed).await.unwrap(), before);

    // The AAD binds the row: the same ciphertext under another message id does not open.
    let wrong = mathia::keyring::Aad::message(uuid::Uuid::new_v4());
    assert!(fresh.open_text(room.id, wrong, &sealed).await.is_err());
    // And another master key opens nothing.
    let stranger = mathia::keyring::RoomKeyring::new(&rand::random(), pool.clone());
    assert!(stranger.open_text(room.id, aad, &sealed).await.is_err());
}

/// A canary of letters only, so the reminder parser cannot mistake any of it for a time.
fn letters(tag: &str) -> String {
    unique(tag).chars().map(|c| if c.is_ascii_digit() { (b'g' + (c as u8 - b'0')) as char } else { c }).collect()
}

#[tokio::test]
async fn no_table_holds_a_note_or_a_reminder_in_plaintext() {
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 25, 13, 0, 0).unwrap()));
    let t = TestApp::spawn_with_clock(clock.clone()).await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "general").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    let (note, memory, reminder) = (letters("canary-note"), letters("canary-memory"), letters("canary-reminder"));

    // A note written over HTTP, and one the assistant keeps.
    let res = t
        .post(Some(&ana.token), &format!("/api/rooms/{}/notes", room.id), json!({"text": note, "priority": "high"}))
        .await;
    assert_eq!(res.status(), 201);
    assert_eq!(a.recv_type("note_added").await["note"]["text"], note.as_str());
    a.send(json!({"action": "new_message", "room_id": room.id, "body": format!("@mathia remember that {memory}"), "client_msg_id": "m"})).await;
    assert_eq!(a.recv_type("note_added").await["note"]["text"], memory.as_str());
    a.recv_type("ai_stream_end").await;
    let notes: Value = t.get(Some(&ana.token), &format!("/api/rooms/{}/notes", room.id)).await.json().await.unwrap();
    let texts: Vec<&str> = notes.as_array().unwrap().iter().map(|n| n["text"].as_str().unwrap()).collect();
    assert!(texts.contains(&note.as_str()) && texts.contains(&memory.as_str()), "both notes read back: {texts:?}");

    // A reminder, set by chat and delivered (its system message carries the text too).
    a.send(json!({"action": "new_message", "room_id": room.id, "body": format!("@mathia remind me to {reminder} in 10 mins"), "client_msg_id": "r"})).await;
    a.recv_type("ai_stream_end").await;
    let list: Value = t.get(Some(&ana.token), "/api/reminders").await.json().await.unwrap();
    assert_eq!(list[0]["text"], reminder.as_str(), "the reminder reads back: {list}");
    let id: uuid::Uuid = list[0]["id"].as_str().unwrap().parse().unwrap();
    clock.advance(chrono::Duration::minutes(10));
    let job = serde_json::to_string(&ReminderJob { job_id: id, reminder_id: id }).unwrap();
    workers::handle(&t.local.app, QueueName::Reminders, &job).await.unwrap();
    assert_eq!(a.recv_type("reminder").await["reminder"]["text"], reminder.as_str());
    let system = a.recv_type("new_message").await;
    assert!(system["message"]["body"].as_str().unwrap().contains(&reminder), "{system}");

    let dump = dump_database(&t.db().await).await;
    assert!(dump.contains(&room.id.to_string()) && dump.contains(&id.to_string()), "the dump sees the tables");
    let hex = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    for canary in [&note, &memory, &reminder] {
        assert!(!dump.contains(canary.as_str()), "{canary} found in plaintext");
        assert!(!dump.contains(&hex(canary)), "{canary} found as plaintext bytes");
    }
}
