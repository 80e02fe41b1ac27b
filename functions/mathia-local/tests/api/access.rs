//! Nobody reads or enters a room that is not theirs.

use serde_json::{Value, json};

use crate::helpers::TestApp;

#[tokio::test]
async fn outsiders_cannot_read_join_or_invite_into_a_room() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let eve = t.register("Eve").await;
    let room = t.create_room(&ana, "private").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    a.send(json!({"action": "new_message", "room_id": room.id, "body": "secret plans", "client_msg_id": "s"})).await;
    a.recv_type("ack").await;

    let history = t.get(Some(&eve.token), &format!("/api/rooms/{}/messages", room.id)).await;
    assert_eq!(history.status(), 403);
    assert_eq!(history.json::<Value>().await.unwrap()["error"]["code"], "not_member");
    let join = t.post(Some(&eve.token), &format!("/api/rooms/{}/join", room.id), json!({})).await;
    assert_eq!(join.status(), 403);
    let invite = t.post(Some(&eve.token), &format!("/api/rooms/{}/invites", room.id), json!({})).await;
    assert_eq!(invite.status(), 403);
    let rooms: Value = t.get(Some(&eve.token), "/api/rooms").await.json().await.unwrap();
    assert!(rooms.as_array().unwrap().iter().all(|r| r["id"] != room.id.to_string()), "not listed for Eve");

    let mut e = t.ws(&eve).await;
    e.send(json!({"action": "join_room", "room_id": room.id})).await;
    assert_eq!(e.recv_type("error").await["code"], "not_member");
    // Eve's socket never hears the room.
    a.send(json!({"action": "new_message", "room_id": room.id, "body": "more secrets", "client_msg_id": "s2"})).await;
    a.recv_type("ack").await;
    e.expect_nothing_but(&[], std::time::Duration::from_millis(300)).await;

    // With an invite she is in, and sees the history.
    t.bring_in(&ana, room.id, &eve).await;
    let history: Value =
        t.get(Some(&eve.token), &format!("/api/rooms/{}/messages", room.id)).await.json().await.unwrap();
    assert_eq!(history["messages"].as_array().unwrap().len(), 2);
    // And being in the workspace now, she may join its public rooms without an invite (a room
    // is private, invite only, unless created public).
    let res = t.post(Some(&ana.token), "/api/rooms", json!({"name": "other", "visibility": "public"})).await;
    let other: mathia::domain::Room = res.json().await.unwrap();
    let outsider = t.register("Olga").await;
    assert_eq!(t.post(Some(&eve.token), &format!("/api/rooms/{}/join", other.id), json!({})).await.status(), 200);
    assert_eq!(t.post(Some(&outsider.token), &format!("/api/rooms/{}/join", other.id), json!({})).await.status(), 403);
}

#[tokio::test]
async fn invites_honour_expiry_and_max_uses() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "general").await;

    let once = t.invite(&ana, room.id, json!({"max_uses": 1})).await;
    let ben = t.register("Ben").await;
    let cid = t.register("Cid").await;
    let accept = |user: &crate::helpers::TestUser, code: &str| {
        let path = format!("/api/invites/{code}/accept");
        let token = user.token.clone();
        let t = &t;
        async move { t.post(Some(&token), &path, json!({})).await }
    };
    let ok = accept(&ben, &once).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.json::<Value>().await.unwrap()["id"], room.id.to_string());
    // Accepting again as a member spends nothing and still answers the room.
    assert_eq!(accept(&ben, &once).await.status(), 200);
    let used_up = accept(&cid, &once).await;
    assert_eq!(used_up.status(), 409);
    assert_eq!(used_up.json::<Value>().await.unwrap()["error"]["code"], "invite_used_up");

    let short = t.invite(&ana, room.id, json!({"expires_in_s": 1})).await;
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let expired = accept(&cid, &short).await;
    assert_eq!(expired.status(), 409);
    assert_eq!(expired.json::<Value>().await.unwrap()["error"]["code"], "invite_expired");

    let unknown = accept(&cid, "no-such-code").await;
    assert_eq!(unknown.status(), 404);
    for bad in [json!({"max_uses": 0}), json!({"expires_in_s": -5}), json!({"max_uses": "ten"})] {
        let res = t.post(Some(&ana.token), &format!("/api/rooms/{}/invites", room.id), bad.clone()).await;
        assert_eq!(res.status(), 400, "{bad}");
    }
    let rooms: Value = t.get(Some(&cid.token), "/api/rooms").await.json().await.unwrap();
    assert!(rooms.as_array().unwrap().iter().all(|r| r["id"] != room.id.to_string()), "Cid got into nothing");
}
