//! Room boundaries: notes that travel only with their author, private rooms and invites that
//! cannot be reused, removal by the owner, invite codes stored only as hashes, and attachments
//! that go with their deleted message.

use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    fake_model::FakeModel,
    files::{file_message, png, upload},
    helpers::{TestApp, TestUser},
};

async fn note(t: &TestApp, user: &TestUser, room: Uuid, text: &str, priority: &str) {
    let res = t
        .post(Some(&user.token), &format!("/api/rooms/{room}/notes"), json!({"text": text, "priority": priority}))
        .await;
    assert_eq!(res.status(), 201);
}

async fn create_room_as(t: &TestApp, owner: &TestUser, name: &str, visibility: Option<&str>) -> Value {
    let mut body = json!({ "name": name });
    if let Some(v) = visibility {
        body["visibility"] = json!(v);
    }
    let res = t.post(Some(&owner.token), "/api/rooms", body).await;
    assert_eq!(res.status(), 201);
    res.json().await.unwrap()
}

async fn delete(t: &TestApp, user: &TestUser, path: &str) -> reqwest::Response {
    t.http.delete(t.url(path)).bearer_auth(&user.token).send().await.unwrap()
}

async fn code_of(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    (status, body["error"]["code"].as_str().unwrap_or("").to_owned())
}

#[tokio::test]
async fn only_the_askers_own_high_priority_notes_travel_to_other_rooms() {
    let model = FakeModel::start(FakeModel::words("Noted.", Duration::from_millis(1))).await;
    let url = model.base_url.clone();
    let t = TestApp::spawn_with(|c| c.ai_base_url = Some(url)).await;
    let ana = t.register("Ana").await;
    let ben = t.register("Ben").await;
    let cid = t.register("Cid").await;
    // Room Y: Ben's, Ana invited; room X: Ana's, with Cid, who cannot read Y.
    let y = t.create_room(&ben, "board").await;
    t.bring_in(&ben, y.id, &ana).await;
    let x = t.create_room(&ana, "launch").await;
    t.bring_in(&ana, x.id, &cid).await;
    note(&t, &ben, y.id, "Ben's acquisition target is Initech", "high").await;
    note(&t, &ana, y.id, "Ana prefers Fridays for launches", "high").await;

    let (mut a, _) = t.ws_in_room(&ana, x.id).await;
    a.send(json!({"action": "new_message", "room_id": x.id, "body": "@mathia plan the week", "client_msg_id": "q"}))
        .await;
    a.recv_type("ai_stream_end").await;
    let prompt = serde_json::to_string(&model.requests()[0]["messages"]).unwrap();
    assert!(prompt.contains("Ana prefers Fridays"), "the asker's own high-priority note travels: {prompt}");
    assert!(!prompt.contains("Initech"), "another member's note from room Y reached room X's prompt: {prompt}");

    let notes: Value = t.get(Some(&ana.token), &format!("/api/rooms/{}/notes", x.id)).await.json().await.unwrap();
    let texts: Vec<&str> = notes.as_array().unwrap().iter().map(|n| n["text"].as_str().unwrap()).collect();
    assert!(texts.iter().any(|n| n.contains("Ana prefers")), "{texts:?}");
    assert!(!texts.iter().any(|n| n.contains("Initech")), "Ben's note is listed in room X: {texts:?}");
    // In room Y itself Ben's note is, of course, there.
    let notes: Value = t.get(Some(&ana.token), &format!("/api/rooms/{}/notes", y.id)).await.json().await.unwrap();
    assert!(notes.to_string().contains("Initech"));
}

#[tokio::test]
async fn a_private_room_is_entered_only_with_an_invite() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let ben = t.register("Ben").await;
    let public = create_room_as(&t, &ana, "lobby", Some("public")).await;
    assert_eq!(public["visibility"], "public");
    let lobby: Uuid = public["id"].as_str().unwrap().parse().unwrap();
    // Ben joins the workspace through the public room's invite.
    t.bring_in(&ana, lobby, &ben).await;
    let private = create_room_as(&t, &ana, "board", Some("private")).await;
    assert_eq!(private["visibility"], "private");
    let board = private["id"].as_str().unwrap();
    let (status, code) = code_of(t.post(Some(&ben.token), &format!("/api/rooms/{board}/join"), json!({})).await).await;
    assert_eq!((status, code.as_str()), (403, "invite_required"), "a private room was joined by id");
    // A room created without saying is private; the public one is open to the workspace.
    let default = create_room_as(&t, &ana, "default", None).await;
    assert_eq!(default["visibility"], "private");
    let other = create_room_as(&t, &ana, "open", Some("public")).await;
    let res = t.post(Some(&ben.token), &format!("/api/rooms/{}/join", other["id"].as_str().unwrap()), json!({})).await;
    assert_eq!(res.status(), 200);
    // Bad visibility: a clear 400.
    let res = t.post(Some(&ana.token), "/api/rooms", json!({"name": "x", "visibility": "secret"})).await;
    let (status, code) = code_of(res).await;
    assert_eq!((status, code.as_str()), (400, "bad_request"));
    // A new workspace's first room is public, and says so.
    let rooms: Value = t.get(Some(&ana.token), "/api/rooms").await.json().await.unwrap();
    let first = &rooms.as_array().unwrap()[0];
    assert_eq!(first["visibility"], "public", "{first}");
}

#[tokio::test]
async fn who_left_or_was_removed_needs_a_new_invite() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let ben = t.register("Ben").await;
    let cid = t.register("Cid").await;
    let room = create_room_as(&t, &ana, "board", Some("private")).await;
    let room_id: Uuid = room["id"].as_str().unwrap().parse().unwrap();
    let code = t.invite(&ana, room_id, json!({"max_uses": 10})).await;
    for u in [&ben, &cid] {
        assert_eq!(t.post(Some(&u.token), &format!("/api/invites/{code}/accept"), json!({})).await.status(), 200);
    }
    // Ben leaves; neither the join route nor the same invite lets him back.
    assert_eq!(t.post(Some(&ben.token), &format!("/api/rooms/{room_id}/leave"), json!({})).await.status(), 204);
    let (status, code_) =
        code_of(t.post(Some(&ben.token), &format!("/api/rooms/{room_id}/join"), json!({})).await).await;
    assert_eq!((status, code_.as_str()), (403, "invite_required"), "re-joined a private room after leaving");
    let (status, code_) =
        code_of(t.post(Some(&ben.token), &format!("/api/invites/{code}/accept"), json!({})).await).await;
    assert_eq!((status, code_.as_str()), (409, "invite_already_used"), "re-used an invite after leaving");

    // Only the owner removes members; the removed member's socket stops hearing the room.
    let (mut a, _) = t.ws_in_room(&ana, room_id).await;
    let (mut c, _) = t.ws_in_room(&cid, room_id).await;
    let (status, code_) = code_of(delete(&t, &cid, &format!("/api/rooms/{room_id}/members/{}", ana.id)).await).await;
    assert_eq!((status, code_.as_str()), (403, "owner_only"));
    assert_eq!(delete(&t, &ana, &format!("/api/rooms/{room_id}/members/{}", cid.id)).await.status(), 204);
    let (status, code_) = code_of(delete(&t, &ana, &format!("/api/rooms/{room_id}/members/{}", cid.id)).await).await;
    assert_eq!((status, code_.as_str()), (404, "not_found"));
    a.send(json!({"action": "new_message", "room_id": room_id, "body": "after Cid", "client_msg_id": "m"})).await;
    a.recv_type("ack").await;
    c.expect_nothing_but(&["presence_update"], Duration::from_millis(300)).await;
    c.assert_alive().await;
    let history = t.get(Some(&cid.token), &format!("/api/rooms/{room_id}/messages")).await;
    assert_eq!(history.status(), 403);
    let (status, code_) =
        code_of(t.post(Some(&cid.token), &format!("/api/invites/{code}/accept"), json!({})).await).await;
    assert_eq!((status, code_.as_str()), (409, "invite_already_used"), "a removed member came back");
    // A new invite brings him back.
    t.bring_in(&ana, room_id, &cid).await;
}

#[tokio::test]
async fn owners_revoke_invites_by_code_or_id() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let ben = t.register("Ben").await;
    let eve = t.register("Eve").await;
    let room = t.create_room(&ana, "board").await;
    t.bring_in(&ana, room.id, &ben).await;
    let res = t.post(Some(&ana.token), &format!("/api/rooms/{}/invites", room.id), json!({})).await;
    let first: Value = res.json().await.unwrap();
    let code = first["code"].as_str().unwrap();
    assert!(first["id"].is_string(), "an invite has an id: {first}");
    // Ben (a member, not the owner nor its creator) may not revoke it.
    let (status, code_) = code_of(delete(&t, &ben, &format!("/api/invites/{code}")).await).await;
    assert_eq!((status, code_.as_str()), (403, "owner_only"));
    assert_eq!(delete(&t, &ana, &format!("/api/invites/{code}")).await.status(), 204);
    let (status, code_) =
        code_of(t.post(Some(&eve.token), &format!("/api/invites/{code}/accept"), json!({})).await).await;
    assert_eq!((status, code_.as_str()), (404, "invite_not_found"), "a revoked invite still works");
    let second = t.invite(&ana, room.id, json!({})).await;
    let res = t.post(Some(&ana.token), &format!("/api/rooms/{}/invites", room.id), json!({})).await;
    let third: Value = res.json().await.unwrap();
    assert_eq!(delete(&t, &ana, &format!("/api/invites/{}", third["id"].as_str().unwrap())).await.status(), 204);
    let (status, _) = code_of(
        t.post(Some(&eve.token), &format!("/api/invites/{}/accept", third["code"].as_str().unwrap()), json!({})).await,
    )
    .await;
    assert_eq!(status, 404);
    let (status, code_) = code_of(delete(&t, &ana, "/api/invites/no-such-code").await).await;
    assert_eq!((status, code_.as_str()), (404, "invite_not_found"));
    // The other invite still works.
    assert_eq!(t.post(Some(&eve.token), &format!("/api/invites/{second}/accept"), json!({})).await.status(), 200);
}

#[tokio::test]
async fn invite_codes_are_stored_only_as_hashes() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let ben = t.register("Ben").await;
    let room = t.create_room(&ana, "board").await;
    let code = t.invite(&ana, room.id, json!({})).await;
    let rows: Vec<String> =
        sqlx::query_scalar("SELECT row_to_json(i)::text FROM invites i").fetch_all(&t.db().await).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert!(!rows[0].contains(&code), "the invite code is stored in plaintext");
    // The code still works, once shown.
    assert_eq!(t.post(Some(&ben.token), &format!("/api/invites/{code}/accept"), json!({})).await.status(), 200);
}

#[tokio::test]
async fn a_deleted_messages_attachment_is_gone() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "design").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    let (file_id, _) = upload(&t, &ana, room.id, "plan.png", &png()).await;
    let ack = file_message(&mut a, room.id, &file_id, "f1").await;
    assert_eq!(ack["type"], "ack");
    let message_id = ack["message_id"].as_str().unwrap();
    let link = || async {
        t.http
            .get(t.url(&format!("/api/files/{file_id}")))
            .bearer_auth(&ana.token)
            .header("accept", "application/json")
            .send()
            .await
            .unwrap()
    };
    assert_eq!(link().await.status(), 200);
    let stored = t.local.app.config.files_dir.join(&file_id);
    assert!(stored.exists());

    a.send(json!({"action": "delete_message", "room_id": room.id, "message_id": message_id})).await;
    a.recv_type("message_deleted").await;
    let (status, code) = code_of(link().await).await;
    assert_eq!((status, code.as_str()), (404, "file_not_found"), "a deleted message's file is still served");
    assert!(!stored.exists(), "the deleted message's bytes are still in the store");
}

#[tokio::test]
async fn the_room_endpoints_refuse_logged_out_sessions_and_outsiders_and_change_nothing() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let ben = t.register("Ben").await;
    let eve = t.register("Eve").await; // another workspace
    let room = t.create_room(&ana, "board").await;
    t.bring_in(&ana, room.id, &ben).await;
    let code = t.invite(&ana, room.id, json!({})).await;
    let remove = format!("/api/rooms/{}/members/{}", room.id, ben.id);
    let revoke = format!("/api/invites/{code}");

    // No session: 401 everywhere.
    assert_eq!(t.http.delete(t.url(&remove)).send().await.unwrap().status(), 401);
    assert_eq!(t.http.delete(t.url(&revoke)).send().await.unwrap().status(), 401);
    assert_eq!(t.get(None, &revoke).await.status(), 401, "the preview wants a session");
    // A logged-out session: 401 too.
    let gone = t.register("Gone").await;
    assert_eq!(t.post(Some(&gone.token), "/api/auth/logout", json!({})).await.status(), 204);
    assert_eq!(delete(&t, &gone, &revoke).await.status(), 401);
    assert_eq!(t.get(Some(&gone.token), &revoke).await.status(), 401);
    // Someone of another workspace removes nobody and revokes nothing.
    assert_eq!(delete(&t, &eve, &remove).await.status(), 403);
    assert_eq!(delete(&t, &eve, &revoke).await.status(), 403);

    // Nothing changed: Ben still reads the room, and the invite still lets Eve in.
    assert_eq!(t.get(Some(&ben.token), &format!("/api/rooms/{}/messages", room.id)).await.status(), 200);
    assert_eq!(t.post(Some(&eve.token), &format!("/api/invites/{code}/accept"), json!({})).await.status(), 200);
}
