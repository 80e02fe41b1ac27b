//! Reminders set by chat, in the person's timezone, delivered exactly once — with a clock the
//! test moves instead of sleeping.

use std::{sync::Arc, time::Duration};

use chrono::{TimeZone, Utc};
use mathia::{
    adapters::local::ManualClock,
    ports::QueueName,
    workers::{self, ReminderJob, scheduler},
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, WsClient, wait_until};

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

async fn reminders_of(t: &TestApp, token: &str) -> Vec<Value> {
    t.get(Some(token), "/api/reminders").await.json::<Value>().await.unwrap().as_array().unwrap().clone()
}

async fn job_for(t: &TestApp, id: &str) -> String {
    let _ = t;
    let id: Uuid = id.parse().unwrap();
    serde_json::to_string(&ReminderJob { job_id: id, reminder_id: id }).unwrap()
}

#[tokio::test]
async fn a_reminder_set_by_chat_is_delivered_once_even_when_the_queue_delivers_twice() {
    let clock = clock();
    let t = TestApp::spawn_with_clock(clock.clone()).await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "general").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;

    let reply = ask(&mut a, room.id, "@mathia remind me to call John in 10 mins").await;
    assert!(reply.contains("call John") && reply.contains("14:10") && reply.contains("Europe/Paris"), "{reply}");
    let list = reminders_of(&t, &ana.token).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["text"], "call John");
    assert_eq!(list[0]["due_at"], "2026-11-25T13:10:00Z");
    assert_eq!(list[0]["status"], "pending");

    let reply = ask(&mut a, room.id, "@mathia remind me to call John sometime").await;
    assert!(reply.contains("couldn't find a time"), "{reply}");
    let reply = ask(&mut a, room.id, "@mathia remind me to have lunch at 9am").await;
    assert!(reply.contains("already passed"), "{reply}");
    assert_eq!(reminders_of(&t, &ana.token).await.len(), 1, "no guesses were stored");

    // Too early: nothing happens.
    let job = job_for(&t, list[0]["id"].as_str().unwrap()).await;
    workers::handle(&t.local.app, QueueName::Reminders, &job).await.unwrap();
    a.expect_nothing_but(&[], Duration::from_millis(200)).await;

    clock.advance(chrono::Duration::minutes(10));
    let (r1, r2) = tokio::join!(
        workers::handle(&t.local.app, QueueName::Reminders, &job),
        workers::handle(&t.local.app, QueueName::Reminders, &job)
    );
    r1.unwrap();
    r2.unwrap();
    workers::handle(&t.local.app, QueueName::Reminders, &job).await.unwrap();
    let event = a.recv_type("reminder").await;
    assert_eq!(event["reminder"]["text"], "call John");
    let system = a.recv_type("new_message").await;
    assert_eq!(system["message"]["kind"], "system");
    assert!(system["message"]["body"].as_str().unwrap().contains("call John"));
    a.expect_nothing_but(&[], Duration::from_millis(300)).await;
    assert_eq!(reminders_of(&t, &ana.token).await[0]["status"], "delivered");
}

#[tokio::test]
async fn the_scheduler_picks_up_later_reminders_and_cancelled_ones_never_come() {
    let clock = clock();
    let t = TestApp::spawn_with_clock(clock.clone()).await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "general").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    ask(&mut a, room.id, "@mathia remind me to stretch in 3 hours").await;
    ask(&mut a, room.id, "@mathia remind me to skip this in 3 hours").await;
    let list = reminders_of(&t, &ana.token).await;
    assert_eq!(list.iter().map(|r| r["status"].as_str().unwrap()).collect::<Vec<_>>(), vec!["pending", "pending"]);
    let cancel = list.iter().find(|r| r["text"] == "skip this").unwrap()["id"].as_str().unwrap().to_owned();
    assert_eq!(
        t.http
            .delete(t.url(&format!("/api/reminders/{cancel}")))
            .bearer_auth(&ana.token)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );

    assert_eq!(scheduler::tick(&t.local.app).await.reminders_queued, 0, "not yet");
    clock.advance(chrono::Duration::hours(3));
    // Ana is back in the room on a new socket before the sweep can queue anything, so the
    // reminder cannot slip in ahead of `room_joined`.
    let (back, _) = t.ws_in_room(&ana, room.id).await;
    // Three hours on, the old socket has outlived API Gateway's two hours: the sweep closes it.
    let swept = scheduler::tick(&t.local.app).await;
    assert_eq!(swept.stale_connections_dropped, 1);
    drop(a);
    let mut a = back;
    let (first, second) = tokio::join!(scheduler::tick(&t.local.app), scheduler::tick(&t.local.app));
    assert_eq!(
        swept.reminders_queued + first.reminders_queued + second.reminders_queued,
        1,
        "racing ticks queue it once"
    );
    // Queued with no delay left, the local worker delivers it.
    let event = a.recv_type("reminder").await;
    assert_eq!(event["reminder"]["text"], "stretch");
    a.expect_nothing_but(&["new_message"], Duration::from_millis(500)).await;
    let statuses: Vec<_> =
        reminders_of(&t, &ana.token).await.iter().map(|r| r["status"].as_str().unwrap().to_owned()).collect();
    assert_eq!(statuses, vec!["delivered"], "the cancelled one is gone from the list");
}

#[tokio::test]
async fn an_offline_user_gets_the_reminder_on_reconnect() {
    let clock = clock();
    let t = TestApp::spawn_with_clock(clock.clone()).await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "general").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    ask(&mut a, room.id, "@mathia remind me to water the plants in 5 minutes").await;
    let id = reminders_of(&t, &ana.token).await[0]["id"].as_str().unwrap().to_owned();
    a.close().await;
    // Offline means the server has let go of her socket, not that some time has passed.
    let registry = t.local.app.connections.clone();
    wait_until("Ana's socket is unregistered", || {
        let registry = registry.clone();
        async move { registry.of_user(ana.id).await.unwrap().is_empty() }
    })
    .await;

    clock.advance(chrono::Duration::minutes(5));
    workers::handle(&t.local.app, QueueName::Reminders, &job_for(&t, &id).await).await.unwrap();
    let notified: bool = sqlx::query_scalar("SELECT notified FROM reminders WHERE id = $1")
        .bind(id.parse::<Uuid>().unwrap())
        .fetch_one(&t.db().await)
        .await
        .unwrap();
    assert!(!notified, "delivered while nobody was there to see it");
    let (mut again, _) = t.ws_in_room(&ana, room.id).await;
    let event = again.recv_type("reminder").await;
    assert_eq!(event["reminder"]["text"], "water the plants");
    // Only once.
    let (mut third, _) = t.ws_in_room(&ana, room.id).await;
    third.expect_nothing_but(&["presence_update"], Duration::from_millis(300)).await;
}

#[tokio::test]
async fn nobody_sees_or_cancels_anothers_reminders_or_notes() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let eve = t.register("Eve").await;
    let room = t.create_room(&ana, "private").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    ask(&mut a, room.id, "@mathia remind me to file taxes tomorrow at 9am").await;
    let note: Value = t
        .post(
            Some(&ana.token),
            &format!("/api/rooms/{}/notes", room.id),
            json!({"text": "secret plan", "priority": "high"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let reminder = reminders_of(&t, &ana.token).await[0]["id"].as_str().unwrap().to_owned();

    assert!(reminders_of(&t, &eve.token).await.is_empty());
    let res = t.http.delete(t.url(&format!("/api/reminders/{reminder}"))).bearer_auth(&eve.token).send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(reminders_of(&t, &ana.token).await[0]["status"], "pending", "still there");

    let res = t.get(Some(&eve.token), &format!("/api/rooms/{}/notes", room.id)).await;
    assert_eq!(res.status(), 403);
    let res = t.post(Some(&eve.token), &format!("/api/rooms/{}/notes", room.id), json!({"text": "mine now"})).await;
    assert_eq!(res.status(), 403);
    let res = t
        .http
        .delete(t.url(&format!("/api/notes/{}", note["id"].as_str().unwrap())))
        .bearer_auth(&eve.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    // Eve's own rooms never show Ana's high-priority note.
    let eves_room = t.create_room(&eve, "eve's").await;
    let notes: Value =
        t.get(Some(&eve.token), &format!("/api/rooms/{}/notes", eves_room.id)).await.json().await.unwrap();
    assert_eq!(notes, json!([]));
    let notes: Value = t.get(Some(&ana.token), &format!("/api/rooms/{}/notes", room.id)).await.json().await.unwrap();
    assert_eq!(notes[0]["text"], "secret plan");
}

#[tokio::test]
async fn impossible_dates_and_times_get_a_clear_reply_and_store_nothing() {
    let t = TestApp::spawn_with_clock(clock()).await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "general").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;

    let reply = ask(&mut a, room.id, "@mathia remind me to pay rent on feb 30 at 10").await;
    assert!(reply.contains("⏰ I can't find Feb 30"), "{reply}");
    let reply = ask(&mut a, room.id, "@mathia remind me to call Bob next monday at 99").await;
    assert!(reply.contains("⏰ I can't find 99:00"), "{reply}");
    assert_eq!(reminders_of(&t, &ana.token).await, Vec::<Value>::new(), "nothing was stored");
    a.assert_alive().await;
}
