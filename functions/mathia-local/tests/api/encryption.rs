//! Encryption at rest: no table holds a body in plaintext; rotation keeps old messages readable.

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
