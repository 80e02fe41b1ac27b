//! Reminders with the time first (through the assistant and `POST /api/reminders`), and who may
//! set one over HTTP: members only, not while muted, not logged out, not as a flood.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use mathia::adapters::{local::ManualClock, postgres::moderation};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, TestUser, WsClient};

fn clock() -> Arc<ManualClock> {
    // Wednesday 25 November 2026, 13:00 UTC (14:00 in Paris, the test users' timezone).
    Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 25, 13, 0, 0).unwrap()))
}

async fn ask(ws: &mut WsClient, room: Uuid, body: &str) -> String {
    ws.send(
        json!({"action": "new_message", "room_id": room, "body": body, "client_msg_id": Uuid::new_v4().to_string()}),
    )
    .await;
    let end = ws.recv_type("ai_stream_end").await;
    end["message"]["body"].as_str().unwrap().to_owned()
}

async fn reminders_of(t: &TestApp, user: &TestUser) -> Vec<Value> {
    t.get(Some(&user.token), "/api/reminders").await.json::<Value>().await.unwrap().as_array().unwrap().clone()
}

async fn reminder_rows(t: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM reminders").fetch_one(&t.db().await).await.unwrap()
}

#[tokio::test]
async fn the_assistant_reads_reminders_with_the_time_first() {
    let t = TestApp::spawn_with_clock(clock()).await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "general").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;

    let reply = ask(&mut a, room.id, "@mathia remind me at 5pm to check emails").await;
    assert!(reply.contains("check emails") && reply.contains("17:00"), "{reply}");
    let reply = ask(&mut a, room.id, "@mathia remind me tomorrow at 9am to send the deck").await;
    assert!(reply.contains("send the deck") && reply.contains("Thursday 26 November at 09:00"), "{reply}");
    let reply = ask(&mut a, room.id, "@mathia remind me in 10 mins to stretch").await;
    assert!(reply.contains("stretch") && reply.contains("14:10"), "{reply}");
    // The refusals still hold with the time first.
    let reply = ask(&mut a, room.id, "@mathia remind me at 9am to have lunch").await;
    assert!(reply.contains("already passed"), "{reply}");
    let reply = ask(&mut a, room.id, "@mathia remind me at 5pm").await;
    assert!(reply.contains("What should I remind you of"), "{reply}");

    let list = reminders_of(&t, &ana).await;
    let got: Vec<(&str, &str)> =
        list.iter().map(|r| (r["text"].as_str().unwrap(), r["due_at"].as_str().unwrap())).collect();
    assert_eq!(
        got,
        [
            ("stretch", "2026-11-25T13:10:00Z"),
            ("check emails", "2026-11-25T16:00:00Z"),
            ("send the deck", "2026-11-26T08:00:00Z")
        ]
    );
}

#[tokio::test]
async fn post_reminders_reads_the_time_in_the_persons_timezone_and_may_refer_to_a_message() {
    let t = TestApp::spawn_with_clock(clock()).await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "general").await;
    let other = t.create_room(&ana, "other").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    a.send(json!({"action": "new_message", "room_id": room.id, "body": "ship the deck", "client_msg_id": "m1"})).await;
    let message_id = a.recv_type("ack").await["message_id"].as_str().unwrap().to_owned();

    let body =
        json!({"room_id": room.id, "text": "ship the deck", "when": "tomorrow at 9am", "message_id": message_id});
    let res = t.post(Some(&ana.token), "/api/reminders", body).await;
    assert_eq!(res.status(), 201);
    let set: Value = res.json().await.unwrap();
    assert_eq!(set["text"], "ship the deck");
    assert_eq!(set["due_at"], "2026-11-26T08:00:00Z");
    assert_eq!(set["about_message_id"], message_id.as_str());
    assert_eq!(set["room_id"], room.id.to_string());
    assert_eq!(set["timezone"], "Europe/Paris");
    let res = t
        .post(Some(&ana.token), "/api/reminders", json!({"room_id": room.id, "text": "stretch", "when": "in 1 hour"}))
        .await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.json::<Value>().await.unwrap()["due_at"], "2026-11-25T14:00:00Z");
    assert_eq!(reminders_of(&t, &ana).await.len(), 2);

    // Bad input: a clear error naming the field, and nothing stored.
    for (body, field) in [
        (json!({"room_id": room.id, "text": "x", "when": "sometime"}), "when"),
        (json!({"room_id": room.id, "text": "x", "when": "at 9am"}), "when"),
        (json!({"room_id": room.id, "text": "x", "when": "on feb 30"}), "when"),
        (json!({"room_id": room.id, "text": "x", "when": "tomorrow at 9am to do y"}), "when"),
        (json!({"room_id": room.id, "text": "  ", "when": "in 1 hour"}), "text"),
        (json!({"room_id": room.id, "text": "x".repeat(2001), "when": "in 1 hour"}), "text"),
    ] {
        let res = t.post(Some(&ana.token), "/api/reminders", body.clone()).await;
        assert_eq!(res.status(), 400, "{body}");
        let err: Value = res.json().await.unwrap();
        assert_eq!(err["error"]["field"], field, "{body}: {err}");
    }
    // A message of another room is not one to refer to.
    let body = json!({"room_id": other.id, "text": "x", "when": "in 1 hour", "message_id": message_id});
    let res = t.post(Some(&ana.token), "/api/reminders", body).await;
    assert_eq!(res.status(), 404);
    assert_eq!(reminders_of(&t, &ana).await.len(), 2, "nothing more was stored");
}

#[tokio::test]
async fn post_reminders_refuses_outsiders_muted_members_logged_out_sessions_and_floods() {
    let t = TestApp::spawn_with(|c| c.rate_limit_per_min = 5).await;
    let ana = t.register("Ana").await;
    let ben = t.register("Ben").await;
    let eve = t.register("Eve").await;
    let cid = t.register("Cid").await;
    let room = t.create_room(&ana, "general").await;
    t.bring_in(&ana, room.id, &ben).await;
    t.bring_in(&ana, room.id, &cid).await;
    let body = json!({"room_id": room.id, "text": "peek", "when": "in 1 hour"});

    // Not a member.
    let res = t.post(Some(&eve.token), "/api/reminders", body.clone()).await;
    assert_eq!(res.status(), 403);
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "not_member");

    // Muted.
    let now = Utc::now();
    moderation::mute(&t.db().await, room.id, ben.id, now + chrono::Duration::minutes(10), "test", now)
        .await
        .unwrap()
        .expect("muted");
    let res = t.post(Some(&ben.token), "/api/reminders", body.clone()).await;
    assert_eq!(res.status(), 403);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"]["code"], "muted", "{err}");

    // Logged out: the revoked token is refused.
    assert_eq!(t.post(Some(&ana.token), "/api/auth/logout", json!({})).await.status(), 204);
    let res = t.post(Some(&ana.token), "/api/reminders", body.clone()).await;
    assert_eq!(res.status(), 401);
    let res = t.post(None, "/api/reminders", body.clone()).await;
    assert_eq!(res.status(), 401);
    assert_eq!(reminder_rows(&t).await, 0, "nothing was set");

    // A flood: the per-person limit (5 a minute here) stops it.
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(t.post(Some(&cid.token), "/api/reminders", body.clone()).await.status().as_u16());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 5, "{statuses:?}");
    assert_eq!(statuses[5..], [429, 429, 429], "{statuses:?}");
    assert_eq!(reminder_rows(&t).await, 5, "only the allowed ones were set");
}
