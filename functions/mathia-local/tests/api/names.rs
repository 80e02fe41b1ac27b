//! A new display name reaches open sockets: what `typing` carries, who `room_joined` lists as
//! online, and a `presence_update` to each room the person's sockets are in — not to anyone
//! else, not where they are muted, never for a logged-out session, and at most
//! `RENAMES_PER_MINUTE` times a minute.

use chrono::Utc;
use mathia::{adapters::postgres::moderation, chat::presence::RENAMES_PER_MINUTE};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, TestUser, WsClient};

async fn save_profile(t: &TestApp, token: &str, name: &str, timezone: &str) -> reqwest::Response {
    t.put(token, "/api/onboarding/profile", json!({"display_name": name, "timezone": timezone})).await
}

async fn current_name(t: &TestApp, user: &TestUser) -> String {
    let res = t.post(None, "/api/auth/login", json!({"email": user.email, "password": "correct horse battery"})).await;
    assert_eq!(res.status(), 200);
    let token = res.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned();
    let me: Value = t.get(Some(&token), "/api/me").await.json().await.unwrap();
    me["user"]["display_name"].as_str().unwrap().to_owned()
}

/// The next `presence_update` on a socket, checked to be `who` online in `room` as `name`, with
/// `online` people there.
async fn announced(ws: &mut WsClient, room: Uuid, who: Uuid, name: &str, online: usize) {
    let ev = ws.recv_type("presence_update").await;
    assert_eq!(
        (&ev["room_id"], &ev["user_id"], &ev["display_name"], &ev["status"], &ev["online_count"]),
        (&json!(room), &json!(who), &json!(name), &json!("online"), &json!(online)),
        "{ev}"
    );
}

#[tokio::test]
async fn a_rename_reaches_open_sockets_and_only_the_rooms_they_are_in() {
    let t = TestApp::spawn().await;
    let (ana, ben, room) = t.ana_and_ben().await;
    let carl = t.register("Carl").await;
    let carls_room = t.create_room(&carl, "elsewhere").await;
    let (mut c, _) = t.ws_in_room(&carl, carls_room.id).await;
    let (mut a, _) = t.ws_in_room(&ana, room).await;
    // Ana's join tells the room she came after her `room_joined`: once her next frame is
    // answered that is done, and Ben, joining after, hears no presence of hers.
    a.assert_alive().await;
    let mut a_idle = t.ws(&ana).await;
    let (mut b, _) = t.ws_in_room(&ben, room).await;
    announced(&mut a, room, ben.id, "Ben", 2).await;

    // A profile saved with the same name (a new timezone) announces nothing.
    assert_eq!(save_profile(&t, &ana.token, "Ana", "Europe/Lisbon").await.status(), 200);
    b.none_of_before_pong(&["presence_update"]).await;

    let res = save_profile(&t, &ana.token, "Ana Lima", "Europe/Lisbon").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["user"]["display_name"], "Ana Lima");
    announced(&mut b, room, ana.id, "Ana Lima", 2).await;
    announced(&mut a, room, ana.id, "Ana Lima", 2).await;
    c.none_of_before_pong(&["presence_update"]).await;

    // What Ana's open sockets say from now on carries the new name.
    a.send(json!({"action": "typing", "room_id": room, "typing": true})).await;
    let typing = b.recv_type("typing").await;
    assert_eq!(typing["display_name"], "Ana Lima", "{typing}");
    a_idle.send(json!({"action": "join_room", "room_id": room})).await;
    let joined = a_idle.recv_type("room_joined").await;
    let online: Vec<(String, String)> = joined["online"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["user_id"].as_str().unwrap().to_owned(), o["display_name"].as_str().unwrap().to_owned()))
        .collect();
    assert!(online.contains(&(ana.id.to_string(), "Ana Lima".into())), "{online:?}");
    assert!(!online.iter().any(|(_, name)| name == "Ana"), "the old name is gone from the registry: {online:?}");
}

#[tokio::test]
async fn a_muted_member_is_renamed_but_not_announced_where_muted() {
    let t = TestApp::spawn().await;
    let (ana, ben, general) = t.ana_and_ben().await;
    let random = t.create_room(&ana, "random").await;
    t.bring_in(&ana, random.id, &ben).await;
    let now = Utc::now();
    moderation::mute(&t.db().await, general, ben.id, now + chrono::Duration::minutes(10), "test", now)
        .await
        .unwrap()
        .expect("muted");
    let (mut a, _) = t.ws_in_room(&ana, general).await;
    a.send(json!({"action": "join_room", "room_id": random.id})).await;
    a.recv_type("room_joined").await;
    let (mut b, _) = t.ws_in_room(&ben, general).await;
    b.send(json!({"action": "join_room", "room_id": random.id})).await;
    b.recv_type("room_joined").await;
    announced(&mut a, general, ben.id, "Ben", 2).await;
    announced(&mut a, random.id, ben.id, "Ben", 2).await;

    assert_eq!(save_profile(&t, &ben.token, "Benjamin", "Europe/Paris").await.status(), 200);
    announced(&mut a, random.id, ben.id, "Benjamin", 2).await;
    a.none_of_before_pong(&["presence_update"]).await;
    assert_eq!(current_name(&t, &ben).await, "Benjamin", "the name itself is Ben's to change");
    let members: Vec<Value> =
        t.get(Some(&ana.token), &format!("/api/rooms/{general}/members")).await.json().await.unwrap();
    assert!(members.iter().any(|m| m["display_name"] == "Benjamin"), "the muted room sees it when it looks");
}

#[tokio::test]
async fn a_logged_out_session_cannot_rename() {
    let t = TestApp::spawn().await;
    let (ana, ben, room) = t.ana_and_ben().await;
    let (mut b, _) = t.ws_in_room(&ben, room).await;
    assert_eq!(t.post(Some(&ana.token), "/api/auth/logout", json!({})).await.status(), 204);

    let res = save_profile(&t, &ana.token, "Mallory", "Europe/Paris").await;
    assert_eq!(res.status(), 401);
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "invalid_token");
    b.none_of_before_pong(&["presence_update"]).await;
    assert_eq!(current_name(&t, &ana).await, "Ana");
}

#[tokio::test]
async fn a_flood_of_renames_is_refused_past_its_budget_and_the_room_chats_on() {
    let t = TestApp::spawn().await;
    let (ana, ben, room) = t.ana_and_ben().await;
    let (mut a, _) = t.ws_in_room(&ana, room).await;
    // Her arrival is told to the room by then (see the first test), not to Ben after he joins.
    a.assert_alive().await;
    let (mut b, _) = t.ws_in_room(&ben, room).await;

    for i in 1..=RENAMES_PER_MINUTE {
        let res = save_profile(&t, &ana.token, &format!("Ana {i}"), "Europe/Paris").await;
        assert_eq!(res.status(), 200, "rename {i}");
    }
    let refused = save_profile(&t, &ana.token, "Ana again", "Europe/Paris").await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().get("retry-after").is_some(), "{:?}", refused.headers());
    assert_eq!(refused.json::<Value>().await.unwrap()["error"]["code"], "rate_limited");
    let last = format!("Ana {RENAMES_PER_MINUTE}");
    assert_eq!(current_name(&t, &ana).await, last, "the refused rename changed nothing");
    // The rest of the profile is not limited.
    assert_eq!(save_profile(&t, &ana.token, &last, "Asia/Tokyo").await.status(), 200);

    for i in 1..=RENAMES_PER_MINUTE {
        announced(&mut b, room, ana.id, &format!("Ana {i}"), 2).await;
    }
    b.none_of_before_pong(&["presence_update"]).await;
    b.send(json!({"action": "new_message", "room_id": room, "body": "still here", "client_msg_id": "b1"})).await;
    b.recv_type("ack").await;
    let seen = a.recv_type("new_message").await;
    assert_eq!(seen["message"]["body"], "still here");
}
