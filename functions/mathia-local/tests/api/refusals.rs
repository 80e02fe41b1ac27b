//! Refused socket actions: each answers the protocol's error code, changes nothing (the
//! history reads the same), leaks nothing to the room (other members hear nothing), and leaves
//! the socket open.

use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, TestUser, WsClient};

/// How long a member listens for a broadcast that must not come.
const QUIET: Duration = Duration::from_millis(300);

/// Sends a message and returns it as stored (its `new_message`), once the sender has its `ack`.
async fn post(ws: &mut WsClient, room: Uuid, body: &str) -> Value {
    let cmid = Uuid::new_v4().to_string();
    ws.send(json!({"action": "new_message", "room_id": room, "body": body, "client_msg_id": cmid})).await;
    let mut message = Value::Null;
    let mut acked = false;
    while message.is_null() || !acked {
        let ev = ws.recv().await;
        match ev["type"].as_str().unwrap() {
            "ack" if ev["client_msg_id"] == cmid.as_str() => acked = true,
            "new_message" if ev["message"]["client_msg_id"] == cmid.as_str() => message = ev["message"].clone(),
            "error" => panic!("refused: {ev}"),
            _ => {}
        }
    }
    message
}

/// A room's history as a member reads it over HTTP.
async fn history(t: &TestApp, reader: &TestUser, room: Uuid) -> Vec<Value> {
    let res = t.get(Some(&reader.token), &format!("/api/rooms/{room}/messages")).await;
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.unwrap()["messages"].as_array().unwrap().clone()
}

fn find(messages: &[Value], id: &Value) -> Value {
    messages.iter().find(|m| &m["id"] == id).unwrap_or_else(|| panic!("{id} is in the history")).clone()
}

/// Ana (the workspace's owner) and Ben (a member) in `general`, each on a socket in it, with
/// one message of Ana's that both have heard.
struct Room {
    t: TestApp,
    ana: TestUser,
    ben: TestUser,
    room: Uuid,
    a: WsClient,
    b: WsClient,
    message: Value,
}

async fn a_room_with_a_message() -> Room {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let ben = t.register("Ben").await;
    let room = t.create_room(&ana, "general").await.id;
    t.bring_in(&ana, room, &ben).await;
    let (mut a, _) = t.ws_in_room(&ana, room).await;
    let (mut b, _) = t.ws_in_room(&ben, room).await;
    assert_eq!(a.recv_type("presence_update").await["status"], "online");
    let message = post(&mut a, room, "the original text").await;
    assert_eq!(b.recv_type("new_message").await["message"], message);
    Room { t, ana, ben, room, a, b, message }
}

#[tokio::test]
async fn a_member_cannot_edit_or_delete_someone_elses_message() {
    let Room { t, ana, ben, room, mut a, mut b, message } = a_room_with_a_message().await;
    let id = &message["id"];

    b.send(json!({"action": "edit_message", "room_id": room, "message_id": id, "body": "Ben was here"})).await;
    assert_eq!(b.recv_error().await["code"], "forbidden");
    b.send(json!({"action": "delete_message", "room_id": room, "message_id": id})).await;
    assert_eq!(b.recv_error().await["code"], "forbidden");
    b.assert_alive().await;

    a.expect_nothing_but(&[], QUIET).await;
    b.expect_nothing_but(&[], QUIET).await;
    let stored = find(&history(&t, &ana, room).await, id);
    assert_eq!(stored, message, "the message is as it was: text, no edit, not deleted");

    // The same frame from its author goes through, and Ben hears it: the silence above was a
    // refusal, not a deaf socket.
    a.send(json!({"action": "edit_message", "room_id": room, "message_id": id, "body": "Ana's edit"})).await;
    let edited = b.recv_type("message_edited").await;
    assert_eq!(edited["message"]["body"], "Ana's edit");
    assert_eq!(find(&history(&t, &ben, room).await, id)["body"], "Ana's edit");
}

#[tokio::test]
async fn a_non_member_cannot_edit_or_delete_a_rooms_message() {
    let Room { t, ana, room, mut a, mut b, message, .. } = a_room_with_a_message().await;
    let eve = t.register("Eve").await;
    let mut e = t.ws(&eve).await;
    let id = &message["id"];

    e.send(json!({"action": "edit_message", "room_id": room, "message_id": id, "body": "Eve was here"})).await;
    assert_eq!(e.recv_error().await["code"], "not_member");
    e.send(json!({"action": "delete_message", "room_id": room, "message_id": id})).await;
    assert_eq!(e.recv_error().await["code"], "not_member");
    e.assert_alive().await;

    a.expect_nothing_but(&[], QUIET).await;
    b.expect_nothing_but(&[], QUIET).await;
    assert_eq!(find(&history(&t, &ana, room).await, id), message, "unchanged");
}

#[tokio::test]
async fn editing_or_deleting_an_unknown_message_or_one_of_another_room_is_not_found() {
    let Room { t, ana, ben, room, mut a, mut b, message } = a_room_with_a_message().await;
    // Ana's message in a room of hers that Ben is not in.
    let elsewhere = t.create_room(&ana, "elsewhere").await.id;
    a.send(json!({"action": "join_room", "room_id": elsewhere})).await;
    a.recv_type("room_joined").await;
    let theirs = post(&mut a, elsewhere, "said elsewhere").await;

    let unknown = Uuid::new_v4();
    for target in [json!(unknown), theirs["id"].clone()] {
        // Named with this room: the message is not in it, whoever wrote it.
        a.send(json!({"action": "edit_message", "room_id": room, "message_id": target, "body": "moved?"})).await;
        assert_eq!(a.recv_error().await["code"], "not_found", "edit {target}");
        a.send(json!({"action": "delete_message", "room_id": room, "message_id": target})).await;
        assert_eq!(a.recv_error().await["code"], "not_found", "delete {target}");
    }
    // Ben names the other room: he is not in it.
    b.send(json!({"action": "delete_message", "room_id": elsewhere, "message_id": theirs["id"]})).await;
    assert_eq!(b.recv_error().await["code"], "not_member");
    a.assert_alive().await;
    b.assert_alive().await;

    a.expect_nothing_but(&[], QUIET).await;
    b.expect_nothing_but(&[], QUIET).await;
    assert_eq!(find(&history(&t, &ana, elsewhere).await, &theirs["id"]), theirs, "the other room's message stays");
    assert_eq!(find(&history(&t, &ben, room).await, &message["id"]), message);
    assert_eq!(t.message_count().await, 2, "nothing was stored or dropped");
}

#[tokio::test]
async fn reacting_as_a_non_member_or_to_an_unknown_or_foreign_message_is_refused() {
    let Room { t, ana, ben, room, mut a, mut b, message } = a_room_with_a_message().await;
    let id = &message["id"];
    // A reaction that stays, heard by the room.
    b.send(json!({"action": "react", "room_id": room, "message_id": id, "emoji": "👍", "on": true})).await;
    let heard = a.recv_type("reaction").await;
    b.recv_type("reaction").await;
    let reactions = json!([{"emoji": "👍", "count": 1, "user_ids": [ben.id]}]);
    assert_eq!(heard["reactions"], reactions);
    // Ana's message in a room Ben is not in.
    let elsewhere = t.create_room(&ana, "elsewhere").await.id;
    a.send(json!({"action": "join_room", "room_id": elsewhere})).await;
    a.recv_type("room_joined").await;
    let theirs = post(&mut a, elsewhere, "said elsewhere").await;

    let eve = t.register("Eve").await;
    let mut e = t.ws(&eve).await;
    for on in [true, false] {
        e.send(json!({"action": "react", "room_id": room, "message_id": id, "emoji": "👎", "on": on})).await;
        assert_eq!(e.recv_error().await["code"], "not_member", "a non-member reacting ({on})");
    }
    e.send(json!({"action": "react", "room_id": room, "message_id": id, "emoji": "👍", "on": false})).await;
    assert_eq!(e.recv_error().await["code"], "not_member", "nor removing");
    b.send(json!({"action": "react", "room_id": room, "message_id": Uuid::new_v4(), "emoji": "👎", "on": true})).await;
    assert_eq!(b.recv_error().await["code"], "not_found", "an unknown message");
    // Reactions are scoped to the room named: a message of another room is not found in it,
    // for Ben and for Ana, who is in both rooms.
    for ws in [&mut b, &mut a] {
        ws.send(json!({"action": "react", "room_id": room, "message_id": theirs["id"], "emoji": "👎", "on": true}))
            .await;
        assert_eq!(ws.recv_error().await["code"], "not_found", "a message of another room");
    }
    b.send(json!({"action": "react", "room_id": elsewhere, "message_id": theirs["id"], "emoji": "👎", "on": true}))
        .await;
    assert_eq!(b.recv_error().await["code"], "not_member", "naming the room he is not in");
    for ws in [&mut a, &mut b, &mut e] {
        ws.assert_alive().await;
    }

    a.expect_nothing_but(&[], QUIET).await;
    b.expect_nothing_but(&[], QUIET).await;
    assert_eq!(find(&history(&t, &ana, room).await, id)["reactions"], reactions, "only Ben's 👍");
    assert_eq!(find(&history(&t, &ana, elsewhere).await, &theirs["id"])["reactions"], json!([]));
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM reactions").fetch_one(&t.db().await).await.unwrap();
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn a_reply_to_a_message_of_another_room_is_not_linked_and_quotes_nothing() {
    let Room { t, ana, ben, room, mut a, mut b, message } = a_room_with_a_message().await;
    let secret = crate::helpers::unique("only-for-the-other-room");
    let elsewhere = t.create_room(&ana, "elsewhere").await.id;
    let (mut a2, _) = t.ws_in_room(&ana, elsewhere).await;
    let theirs = post(&mut a2, elsewhere, &secret).await;

    // The protocol: `reply_to` is "a message id in the same room". Another room's message
    // (or one that does not exist) is not linked, and its text is quoted nowhere.
    for (cmid, target) in [("cross", theirs["id"].clone()), ("ghost", json!(Uuid::new_v4()))] {
        b.send(json!({"action": "new_message", "room_id": room, "body": "replying", "client_msg_id": cmid, "reply_to": target})).await;
        let mut ack = Value::Null;
        let mut sent = Value::Null;
        while ack.is_null() || sent.is_null() {
            let ev = b.recv().await;
            assert_ne!(ev["type"], "error", "{ev}");
            match ev["type"].as_str().unwrap() {
                "ack" => ack = ev,
                "new_message" => sent = ev,
                _ => {}
            }
        }
        let heard = a.recv_type("new_message").await;
        assert_eq!(heard, sent);
        assert!(sent["message"]["reply_to"].is_null(), "{cmid}: linked to {target}: {sent}");
        assert!(!sent.to_string().contains(&secret), "the other room's text leaked: {sent}");
        let stored = find(&history(&t, &ben, room).await, &ack["message_id"]);
        assert!(stored["reply_to"].is_null(), "{cmid}: stored linked: {stored}");
        assert!(!stored.to_string().contains(&secret));
    }
    b.assert_alive().await;

    // A reply in the same room is linked, with its quote.
    b.send(json!({"action": "new_message", "room_id": room, "body": "agreed", "client_msg_id": "same", "reply_to": message["id"]})).await;
    let reply = b.recv_type("new_message").await;
    assert_eq!(reply["message"]["reply_to"]["id"], message["id"]);
    assert_eq!(reply["message"]["reply_to"]["excerpt"], "the original text");
    a2.expect_nothing_but(&[], QUIET).await;
}
