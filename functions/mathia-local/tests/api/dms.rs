//! Direct messages: one room per pair and workspace, however many ask at once; only its two
//! people ever read it, and nobody joins, is invited or is added.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, TestUser};

/// Ana and Ben share Ana's workspace (Ben came in by invite); Cid is in it too; Eve is not.
struct Team {
    ana: TestUser,
    ben: TestUser,
    cid: TestUser,
    eve: TestUser,
    workspace: Uuid,
}

async fn team(t: &TestApp) -> Team {
    let ana = t.register("Ana").await;
    let ben = t.register("Ben").await;
    let cid = t.register("Cid").await;
    let eve = t.register("Eve").await;
    let room = t.create_room(&ana, "general").await;
    t.bring_in(&ana, room.id, &ben).await;
    t.bring_in(&ana, room.id, &cid).await;
    Team { ana, ben, cid, eve, workspace: room.workspace_id }
}

async fn open_dm(t: &TestApp, from: &TestUser, to: Uuid, workspace: Option<Uuid>) -> reqwest::Response {
    let mut body = json!({ "user_id": to });
    if let Some(w) = workspace {
        body["workspace_id"] = json!(w);
    }
    t.post(Some(&from.token), "/api/dms", body).await
}

async fn dm_count(t: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM rooms WHERE kind = 'dm'").fetch_one(&t.db().await).await.unwrap()
}

#[tokio::test]
async fn a_dm_is_one_room_per_pair_even_when_both_open_it_at_once() {
    let t = TestApp::spawn().await;
    let Team { ana, ben, workspace, .. } = team(&t).await;

    let asks = (0..8).map(|i| {
        let (from, to) = if i % 2 == 0 { (&ana, ben.id) } else { (&ben, ana.id) };
        open_dm(&t, from, to, if i % 3 == 0 { Some(workspace) } else { None })
    });
    let answers = futures::future::join_all(asks).await;
    let mut ids = std::collections::HashSet::new();
    let mut created = 0;
    for res in answers {
        let status = res.status().as_u16();
        assert!(status == 200 || status == 201, "{status}");
        created += usize::from(status == 201);
        let room: Value = res.json().await.unwrap();
        assert_eq!(room["kind"], "dm", "{room}");
        assert_eq!(room["workspace_id"], workspace.to_string());
        ids.insert(room["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1, "one room for the pair: {ids:?}");
    assert_eq!(created, 1, "created once");
    assert_eq!(dm_count(&t).await, 1);

    // Each sees it among their rooms, named after the other person.
    for (me, other) in [(&ana, &ben), (&ben, &ana)] {
        let rooms: Value = t.get(Some(&me.token), "/api/rooms").await.json().await.unwrap();
        let dm = rooms.as_array().unwrap().iter().find(|r| r["kind"] == "dm").expect("the DM is listed");
        assert_eq!(dm["peer"], json!({"id": other.id, "display_name": other.name}), "{dm}");
        assert_eq!(dm["name"], other.name.as_str());
        assert_eq!(dm["visibility"], "private");
        let plain = rooms.as_array().unwrap().iter().find(|r| r["name"] == "general").unwrap();
        assert_eq!(plain["kind"], "room");
        assert!(plain.get("peer").is_none(), "{plain}");
    }
}

#[tokio::test]
async fn the_other_person_hears_of_a_new_dm_and_both_can_talk_in_it() {
    let t = TestApp::spawn().await;
    let Team { ana, ben, .. } = team(&t).await;
    let mut b = t.ws(&ben).await;
    let res = open_dm(&t, &ana, ben.id, None).await;
    assert_eq!(res.status(), 201);
    let room: Value = res.json().await.unwrap();
    let room_id: Uuid = room["id"].as_str().unwrap().parse().unwrap();
    let added = b.recv_type("room_added").await;
    assert_eq!(added["room"]["id"], room["id"]);
    assert_eq!(added["room"]["peer"]["id"], ana.id.to_string(), "Ben's copy names Ana");

    b.send(json!({"action": "join_room", "room_id": room_id})).await;
    b.recv_type("room_joined").await;
    let (mut a, _) = t.ws_in_room(&ana, room_id).await;
    a.send(json!({"action": "new_message", "room_id": room_id, "body": "just us", "client_msg_id": "d1"})).await;
    assert_eq!(b.recv_type("new_message").await["message"]["body"], "just us");
}

#[tokio::test]
async fn nobody_messages_themselves_or_someone_outside_the_workspace() {
    let t = TestApp::spawn().await;
    let Team { ana, eve, workspace, .. } = team(&t).await;

    let res = open_dm(&t, &ana, ana.id, None).await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["field"], "user_id", "{body}");

    // Eve exists, but not in any of Ana's workspaces: answered as if nobody had that id.
    let outside: Value = open_dm(&t, &ana, eve.id, None).await.json().await.unwrap();
    let nobody: Value = open_dm(&t, &ana, Uuid::now_v7(), None).await.json().await.unwrap();
    assert_eq!(outside["error"]["code"], "user_not_found");
    assert_eq!(outside, nobody, "the same answer for someone elsewhere and for nobody");
    let res = open_dm(&t, &ana, eve.id, Some(workspace)).await;
    assert_eq!(res.status(), 404);
    // Eve cannot reach into Ana's workspace either.
    let res = open_dm(&t, &eve, ana.id, Some(workspace)).await;
    assert_eq!(res.status(), 403);
    assert_eq!(dm_count(&t).await, 0, "nothing was created");
}

#[tokio::test]
async fn a_third_person_cannot_read_join_invite_or_subscribe_to_a_dm() {
    let t = TestApp::spawn().await;
    let Team { ana, ben, cid, eve, .. } = team(&t).await;
    let room: Value = open_dm(&t, &ana, ben.id, None).await.json().await.unwrap();
    let room_id: Uuid = room["id"].as_str().unwrap().parse().unwrap();
    let (mut a, _) = t.ws_in_room(&ana, room_id).await;
    a.send(json!({"action": "new_message", "room_id": room_id, "body": "secret", "client_msg_id": "s1"})).await;
    a.recv_type("ack").await;

    for outsider in [&cid, &eve] {
        let history = t.get(Some(&outsider.token), &format!("/api/rooms/{room_id}/messages")).await;
        assert!([403, 404].contains(&history.status().as_u16()), "history: {}", history.status());
        let join = t.post(Some(&outsider.token), &format!("/api/rooms/{room_id}/join"), json!({})).await;
        assert!([403, 404].contains(&join.status().as_u16()), "join: {}", join.status());
        let invite = t.post(Some(&outsider.token), &format!("/api/rooms/{room_id}/invites"), json!({})).await;
        assert!([403, 404].contains(&invite.status().as_u16()), "invite: {}", invite.status());
        let pins = t.get(Some(&outsider.token), &format!("/api/rooms/{room_id}/pins")).await;
        assert!([403, 404].contains(&pins.status().as_u16()), "pins: {}", pins.status());
        let notes = t.get(Some(&outsider.token), &format!("/api/rooms/{room_id}/notes")).await;
        assert!([403, 404].contains(&notes.status().as_u16()), "notes: {}", notes.status());
        let mut o = t.ws(outsider).await;
        o.send(json!({"action": "join_room", "room_id": room_id})).await;
        assert_eq!(o.recv_error().await["code"], "not_member");
        o.assert_alive().await;
    }
    // Its own people cannot open it to others either: no invites, no leaving, no removing.
    let res = t.post(Some(&ana.token), &format!("/api/rooms/{room_id}/invites"), json!({})).await;
    assert_eq!(res.status(), 403);
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "direct_message");
    let res = t.post(Some(&ben.token), &format!("/api/rooms/{room_id}/leave"), json!({})).await;
    assert_eq!(res.status(), 403);
    let res =
        t.http.delete(t.url(&format!("/api/rooms/{room_id}/members/{}", ben.id))).bearer_auth(&ana.token).send().await;
    assert_eq!(res.unwrap().status(), 403);

    // Nothing changed: the DM still has exactly its two people, and they still read it.
    let db = t.db().await;
    let members: Vec<Uuid> = sqlx::query_scalar("SELECT user_id FROM room_members WHERE room_id = $1 ORDER BY user_id")
        .bind(room_id)
        .fetch_all(&db)
        .await
        .unwrap();
    let mut pair = vec![ana.id, ben.id];
    pair.sort();
    assert_eq!(members, pair);
    let history: Value = t.get(Some(&ben.token), &format!("/api/rooms/{room_id}/messages")).await.json().await.unwrap();
    assert_eq!(history["messages"][0]["body"], "secret");
    // Even a write that skips the API cannot add a third member.
    let added = sqlx::query("INSERT INTO room_members (room_id, user_id) VALUES ($1, $2)")
        .bind(room_id)
        .bind(cid.id)
        .execute(&db)
        .await;
    assert!(added.is_err(), "the database refuses a third member");
}

#[tokio::test]
async fn dms_refuse_a_logged_out_session_and_a_flood() {
    let t = TestApp::spawn_with(|c| c.rate_limit_per_min = 3).await;
    let Team { ana, ben, cid, .. } = team(&t).await;

    assert_eq!(t.post(None, "/api/dms", json!({"user_id": ben.id})).await.status(), 401);
    let gone = t.register("Gone").await;
    assert_eq!(t.post(Some(&gone.token), "/api/auth/logout", json!({})).await.status(), 204);
    assert_eq!(open_dm(&t, &gone, ben.id, None).await.status(), 401);
    assert_eq!(t.get(Some(&gone.token), &format!("/api/workspaces/{}/members", Uuid::now_v7())).await.status(), 401);
    assert_eq!(dm_count(&t).await, 0);

    for _ in 0..3 {
        assert!(open_dm(&t, &ana, ben.id, None).await.status().is_success());
    }
    let res = open_dm(&t, &ana, cid.id, None).await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().get("retry-after").is_some());
    assert_eq!(dm_count(&t).await, 1, "the flood made nothing more");
}

#[tokio::test]
async fn workspace_members_are_listed_to_members_only() {
    let t = TestApp::spawn().await;
    let Team { ana, ben, eve, workspace, .. } = team(&t).await;
    let path = format!("/api/workspaces/{workspace}/members");
    let res = t.get(Some(&ben.token), &path).await;
    assert_eq!(res.status(), 200);
    let people: Value = res.json().await.unwrap();
    let names: Vec<&str> = people.as_array().unwrap().iter().map(|p| p["display_name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Ana", "Ben", "Cid"]);
    assert!(people[0].get("email").is_none(), "no emails: {people}");
    assert_eq!(t.get(Some(&eve.token), &path).await.status(), 403);
    let _ = ana;
}
