//! Pins: any member who is not muted pins and unpins; the room hears it; the pins list is
//! newest first and decrypted; a room's pins are capped; a deleted message loses its pin.

use chrono::Utc;
use mathia::adapters::postgres::moderation;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, TestUser, WsClient};

/// Ana and Ben in a room, each with a socket in it.
async fn room_of_two(t: &TestApp) -> (TestUser, TestUser, Uuid, WsClient, WsClient) {
    let ana = t.register("Ana").await;
    let ben = t.register("Ben").await;
    let room = t.create_room(&ana, "general").await;
    t.bring_in(&ana, room.id, &ben).await;
    let (a, _) = t.ws_in_room(&ana, room.id).await;
    let (b, _) = t.ws_in_room(&ben, room.id).await;
    (ana, ben, room.id, a, b)
}

async fn post(ws: &mut WsClient, room: Uuid, body: &str) -> Uuid {
    let client_msg_id = Uuid::new_v4().to_string();
    ws.send(json!({"action": "new_message", "room_id": room, "body": body, "client_msg_id": client_msg_id})).await;
    ws.recv_type("ack").await["message_id"].as_str().unwrap().parse().unwrap()
}

async fn pin(ws: &mut WsClient, room: Uuid, message: Uuid) {
    ws.send(json!({"action": "pin_message", "room_id": room, "message_id": message})).await;
}

async fn unpin(ws: &mut WsClient, room: Uuid, message: Uuid) {
    ws.send(json!({"action": "unpin_message", "room_id": room, "message_id": message})).await;
}

async fn pins(t: &TestApp, user: &TestUser, room: Uuid) -> Vec<Value> {
    let res = t.get(Some(&user.token), &format!("/api/rooms/{room}/pins")).await;
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.unwrap().as_array().unwrap().clone()
}

async fn pin_count(t: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM pins").fetch_one(&t.db().await).await.unwrap()
}

#[tokio::test]
async fn pins_and_unpins_reach_the_room_and_the_list_is_newest_first() {
    let t = TestApp::spawn().await;
    let (ana, ben, room, mut a, mut b) = room_of_two(&t).await;
    let first = post(&mut a, room, "the plan").await;
    let second = post(&mut a, room, "the date").await;

    pin(&mut b, room, first).await;
    let pinned = a.recv_type("message_pinned").await;
    assert_eq!(pinned["message_id"], first.to_string());
    assert_eq!(pinned["pinned"]["by"], json!({"id": ben.id, "display_name": "Ben"}));
    assert_eq!(pinned["message"]["body"], "the plan");
    assert_eq!(pinned["message"]["pinned"], pinned["pinned"]);
    b.recv_type("message_pinned").await;
    pin(&mut a, room, second).await;
    b.recv_type("message_pinned").await;

    let list = pins(&t, &ana, room).await;
    let bodies: Vec<&str> = list.iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, ["the date", "the plan"], "newest pin first, decrypted");
    assert_eq!(list[1]["pinned"]["by"]["id"], ben.id.to_string());
    assert!(list[1]["pinned"]["at"].is_string());

    // History pages carry the pin state too.
    let history: Value = t.get(Some(&ben.token), &format!("/api/rooms/{room}/messages")).await.json().await.unwrap();
    assert_eq!(history["messages"][0]["pinned"]["by"]["id"], ben.id.to_string());

    // Pinning again changes nothing and tells nobody.
    pin(&mut a, room, second).await;
    b.none_of_before_pong(&["message_pinned"]).await;

    unpin(&mut a, room, first).await;
    let unpinned = b.recv_type("message_unpinned").await;
    assert_eq!(unpinned, json!({"type": "message_unpinned", "room_id": room, "message_id": first}));
    let list = pins(&t, &ben, room).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], second.to_string());
    let history: Value = t.get(Some(&ben.token), &format!("/api/rooms/{room}/messages")).await.json().await.unwrap();
    assert_eq!(history["messages"][0]["pinned"], Value::Null);
}

#[tokio::test]
async fn a_deleted_message_is_unpinned() {
    let t = TestApp::spawn().await;
    let (ana, _ben, room, mut a, mut b) = room_of_two(&t).await;
    let message = post(&mut a, room, "soon gone").await;
    pin(&mut a, room, message).await;
    b.recv_type("message_pinned").await;
    a.send(json!({"action": "delete_message", "room_id": room, "message_id": message})).await;
    b.recv_type("message_deleted").await;
    assert_eq!(b.recv_type("message_unpinned").await["message_id"], message.to_string());
    assert!(pins(&t, &ana, room).await.is_empty());
    assert_eq!(pin_count(&t).await, 0);
    // And it cannot be pinned again.
    pin(&mut a, room, message).await;
    assert_eq!(a.recv_type("error").await["code"], "not_found");
}

#[tokio::test]
async fn a_message_of_another_room_is_not_found() {
    let t = TestApp::spawn().await;
    let (ana, _ben, room, mut a, mut b) = room_of_two(&t).await;
    let other = t.create_room(&ana, "elsewhere").await;
    let (mut o, _) = t.ws_in_room(&ana, other.id).await;
    let elsewhere = post(&mut o, other.id, "over there").await;
    pin(&mut a, room, elsewhere).await;
    assert_eq!(a.recv_type("error").await["code"], "not_found");
    unpin(&mut a, room, Uuid::now_v7()).await;
    assert_eq!(a.recv_type("error").await["code"], "not_found");
    a.assert_alive().await;
    b.none_of_before_pong(&["message_pinned", "message_unpinned"]).await;
    assert_eq!(pin_count(&t).await, 0);
}

#[tokio::test]
async fn outsiders_muted_members_and_logged_out_sessions_pin_nothing() {
    let t = TestApp::spawn().await;
    let (ana, ben, room, mut a, mut b) = room_of_two(&t).await;
    let message = post(&mut a, room, "pin me").await;
    let eve = t.register("Eve").await;

    // Someone outside the room.
    let mut e = t.ws(&eve).await;
    pin(&mut e, room, message).await;
    assert_eq!(e.recv_type("error").await["code"], "not_member");
    e.assert_alive().await;
    assert_eq!(t.get(Some(&eve.token), &format!("/api/rooms/{room}/pins")).await.status(), 403);

    // No session, and a logged-out one: the list is refused, the socket is closed.
    assert_eq!(t.get(None, &format!("/api/rooms/{room}/pins")).await.status(), 401);
    let cid = t.register("Cid").await;
    t.bring_in(&ana, room, &cid).await;
    let (mut c, _) = t.ws_in_room(&cid, room).await;
    assert_eq!(t.post(Some(&cid.token), "/api/auth/logout", json!({})).await.status(), 204);
    assert_eq!(t.get(Some(&cid.token), &format!("/api/rooms/{room}/pins")).await.status(), 401);
    pin(&mut c, room, message).await;
    // The socket ends (close frame or error); whatever it does, no pin comes of it.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), futures::StreamExt::next(&mut c.stream)).await;

    // A muted member.
    let now = Utc::now();
    moderation::mute(&t.db().await, room, ben.id, now + chrono::Duration::minutes(10), "test", now)
        .await
        .unwrap()
        .expect("muted");
    pin(&mut b, room, message).await;
    let refused = b.recv_type("error").await;
    assert_eq!(refused["code"], "muted", "{refused}");
    assert!(refused["until"].is_string());
    b.assert_alive().await;

    a.none_of_before_pong(&["message_pinned"]).await;
    assert_eq!(pin_count(&t).await, 0, "nothing was pinned");

    // A muted member cannot unpin either.
    pin(&mut a, room, message).await;
    a.recv_type("message_pinned").await;
    unpin(&mut b, room, message).await;
    assert_eq!(b.recv_type("error").await["code"], "muted");
    assert_eq!(pins(&t, &ana, room).await.len(), 1, "still pinned");
}

#[tokio::test]
async fn pins_count_against_the_rate_limit() {
    let t = TestApp::spawn_with(|c| c.rate_limit_per_min = 4).await;
    let (ana, _ben, room, mut a, mut b) = room_of_two(&t).await;
    let first = post(&mut a, room, "one").await;
    let second = post(&mut a, room, "two").await;
    pin(&mut a, room, first).await;
    a.recv_type("message_pinned").await;
    unpin(&mut a, room, first).await;
    a.recv_type("message_unpinned").await;
    // Two messages and two pin actions spent the four; the next pin is refused.
    pin(&mut a, room, second).await;
    let refused = a.recv_type("error").await;
    assert_eq!(refused["code"], "rate_limited", "{refused}");
    assert!(refused["retry_after_ms"].as_u64().unwrap() > 0);
    a.assert_alive().await;
    b.recv_type("message_pinned").await;
    b.recv_type("message_unpinned").await;
    b.none_of_before_pong(&["message_pinned"]).await;
    assert!(pins(&t, &ana, room).await.is_empty());
}

#[tokio::test]
async fn a_room_holds_at_most_fifty_pins() {
    let t = TestApp::spawn_with(|c| c.rate_limit_per_min = 1000).await;
    let (ana, _ben, room, mut a, _b) = room_of_two(&t).await;
    let mut ids = Vec::new();
    for i in 0..51 {
        ids.push(post(&mut a, room, &format!("m{i}")).await);
    }
    for id in &ids[..50] {
        pin(&mut a, room, *id).await;
        a.recv_type("message_pinned").await;
    }
    pin(&mut a, room, ids[50]).await;
    let refused = a.recv_type("error").await;
    assert_eq!(refused["code"], "too_many_pins", "{refused}");
    assert_eq!(pins(&t, &ana, room).await.len(), 50);
    // Unpinning one makes room.
    unpin(&mut a, room, ids[0]).await;
    a.recv_type("message_unpinned").await;
    pin(&mut a, room, ids[50]).await;
    assert_eq!(a.recv_type("message_pinned").await["message_id"], ids[50].to_string());
}
