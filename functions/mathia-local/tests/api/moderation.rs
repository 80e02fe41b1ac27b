//! Moderation in batches: strikes, mutes that end, exactly-once under redelivery and racing
//! scheduler ticks, quiet rooms (alone and several in one batch), the owner's view, and Redis
//! being down.

use std::{collections::HashSet, sync::Arc, time::Duration};

use chrono::{TimeZone, Utc};
use mathia::{
    adapters::local::{LocalPush, LocalQueue, ManualClock},
    domain::ConnectionId,
    ports::{Clock, ConnectionInfo, QueueName},
    workers::{self, ModerationJob, scheduler},
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, TestUser, WsClient, registry_entry};

const INSULTS: [&str; 4] = ["you are a fucking idiot", "shut up you stupid bitch", "fuck off", "fuck this shit"];

async fn say(ws: &mut WsClient, room: Uuid, body: &str) -> Value {
    ws.send(
        json!({"action": "new_message", "room_id": room, "body": body, "client_msg_id": Uuid::new_v4().to_string()}),
    )
    .await;
    loop {
        let ev = ws.recv().await;
        if ev["type"] == "ack" || ev["type"] == "error" {
            return ev;
        }
    }
}

async fn count(t: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&t.db().await).await.unwrap()
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 25, 13, 0, 0).unwrap()))
}

#[tokio::test]
async fn three_offences_mute_then_the_mute_ends() {
    let clock = clock();
    let t = TestApp::spawn_full(|c| c.moderation_batch_size = 3, Some(clock.clone())).await;
    let ana = t.register("Ana").await;
    let ben = t.register("Ben").await;
    let room = t.create_room(&ana, "general").await;
    t.bring_in(&ana, room.id, &ben).await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    let (mut b, _) = t.ws_in_room(&ben, room.id).await;

    for insult in &INSULTS[..3] {
        assert_eq!(say(&mut b, room.id, insult).await["type"], "ack");
    }
    let muted = a.recv_type("moderation").await;
    assert_eq!(muted["action"], "muted");
    assert_eq!(muted["user_id"], ben.id.to_string());
    assert_eq!(muted["until"], "2026-11-25T13:10:00Z");
    let system = a.recv_type("new_message").await;
    let system = if system["message"]["kind"] == "system" { system } else { a.recv_type("new_message").await };
    assert!(system["message"]["body"].as_str().unwrap().contains("muted"), "{system}");

    let stored = t.message_count().await;
    let refused = say(&mut b, room.id, "sorry everyone").await;
    assert_eq!(refused["code"], "muted");
    assert_eq!(refused["until"], "2026-11-25T13:10:00Z");
    assert!(refused["retry_after_ms"].as_u64().unwrap() > 0);
    assert_eq!(t.message_count().await, stored, "stored nowhere");
    assert_eq!(count(&t, "SELECT count(*) FROM moderation_flags").await, 3);

    clock.advance(chrono::Duration::minutes(11));
    let report = scheduler::tick(&t.local.app).await;
    assert_eq!(report.mutes_lifted, 1);
    let unmuted = a.recv_type("moderation").await;
    assert_eq!(unmuted["action"], "unmuted");
    assert_eq!(say(&mut b, room.id, "sorry everyone").await["type"], "ack", "Ben may speak again");
}

#[tokio::test]
async fn a_batch_delivered_twice_flags_and_strikes_once() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "general").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    let mut ids = Vec::new();
    for body in ["hello team", INSULTS[0], INSULTS[1], "Scunthorpe is lovely"] {
        ids.push(say(&mut a, room.id, body).await["message_id"].as_str().unwrap().parse::<Uuid>().unwrap());
    }
    let job = serde_json::to_string(&ModerationJob {
        job_id: Uuid::new_v4(),
        room_id: Some(room.id),
        message_ids: ids.clone(),
    })
    .unwrap();
    let app = &t.local.app;
    let (r1, r2) = tokio::join!(
        workers::handle(app, QueueName::Moderation, &job),
        workers::handle(app, QueueName::Moderation, &job)
    );
    r1.unwrap();
    r2.unwrap();
    workers::handle(app, QueueName::Moderation, &job).await.unwrap();
    let flagged: Vec<Uuid> = sqlx::query_scalar("SELECT message_id FROM moderation_flags ORDER BY created_at")
        .fetch_all(&t.db().await)
        .await
        .unwrap();
    assert_eq!(flagged.len(), 2, "one flag per offending message");
    assert_eq!(flagged.iter().collect::<HashSet<_>>(), [ids[1], ids[2]].iter().collect::<HashSet<_>>());
    let strikes = mathia::adapters::postgres::moderation::strikes(
        &t.db().await,
        room.id,
        ana.id,
        Utc::now() - chrono::Duration::hours(1),
    )
    .await
    .unwrap();
    assert_eq!(strikes, 2);
    assert_eq!(count(&t, "SELECT count(*) FROM mutes").await, 0, "two strikes do not mute");
}

#[tokio::test]
async fn racing_scheduler_ticks_moderate_each_buffered_message_once() {
    let clock = clock();
    let t = TestApp::spawn_with_clock(clock.clone()).await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "general").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    for body in ["one", "two", INSULTS[2]] {
        say(&mut a, room.id, body).await;
    }
    clock.advance(chrono::Duration::seconds(4));
    let (x, y, z) =
        tokio::join!(scheduler::tick(&t.local.app), scheduler::tick(&t.local.app), scheduler::tick(&t.local.app));
    assert_eq!(x.messages_sent_to_moderation + y.messages_sent_to_moderation + z.messages_sent_to_moderation, 3);
    for _ in 0..100 {
        if count(&t, "SELECT count(*) FROM moderation_flags").await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(count(&t, "SELECT count(*) FROM moderation_flags").await, 1);
    assert_eq!(scheduler::tick(&t.local.app).await.messages_sent_to_moderation, 0, "nothing left");
}

#[tokio::test]
async fn a_quiet_room_is_moderated_by_the_scheduler_once_quiet_for_the_flush_interval() {
    // The scheduler runs on its own timer, often; whether a room is quiet enough is read on the
    // test's clock, so what flushes the buffer is the interval, not the machine's speed.
    let clock = clock();
    let t = TestApp::spawn_full(|c| c.scheduler_every = Duration::from_millis(50), Some(clock.clone())).await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "quiet").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    let bodies = ["morning", INSULTS[3], "anyone?"];
    assert!(bodies.len() < t.local.app.config.moderation_batch_size as usize, "too few for a batch");
    let mut ids = Vec::new();
    for body in bodies {
        ids.push(say(&mut a, room.id, body).await["message_id"].as_str().unwrap().parse::<Uuid>().unwrap());
    }

    // Buffering follows each ack: wait until all three wait in the room's buffer.
    let config = &t.local.app.config;
    let mut redis =
        redis::Client::open(config.redis_url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let buffer = format!("{}mod:buf:{}", config.redis_prefix, room.id);
    crate::helpers::wait_until("the messages are buffered", || {
        let (mut redis, buffer) = (redis.clone(), buffer.clone());
        async move { redis::AsyncCommands::llen::<_, usize>(&mut redis, buffer).await.unwrap() == bodies.len() }
    })
    .await;

    // Short of the interval, nothing is taken, however often the scheduler looks.
    clock.advance(mathia::moderation::FLUSH_AFTER - chrono::Duration::milliseconds(1));
    assert_eq!(scheduler::tick(&t.local.app).await.messages_sent_to_moderation, 0, "not quiet long enough");
    assert_eq!(count(&t, "SELECT count(*) FROM moderation_flags").await, 0);
    let waiting: usize = redis::AsyncCommands::llen(&mut redis, &buffer).await.unwrap();
    assert_eq!(waiting, bodies.len(), "all still buffered");

    // At the interval the scheduler's own tick takes the whole buffer as one batch.
    clock.advance(chrono::Duration::milliseconds(1));
    crate::helpers::wait_until("the quiet room is moderated", || async {
        count(&t, "SELECT count(*) FROM moderation_flags").await == 1
    })
    .await;
    let flagged: Uuid =
        sqlx::query_scalar("SELECT message_id FROM moderation_flags").fetch_one(&t.db().await).await.unwrap();
    assert_eq!(flagged, ids[1], "the insult, and only it");
    let waiting: usize = redis::AsyncCommands::llen(&mut redis, &buffer).await.unwrap();
    assert_eq!(waiting, 0, "the buffer was emptied");
}

#[tokio::test]
async fn quiet_rooms_share_a_batch_and_each_message_is_judged_in_its_own_room() {
    let clock = clock();
    let t = TestApp::spawn_with_clock(clock.clone()).await;
    let ana = t.register("Ana").await;
    let ben = t.register("Ben").await;
    // Ben offends once in each of three rooms and says hello in a fourth: three strikes in all,
    // but one in each room, which mutes him nowhere.
    let said = in_new_rooms(
        &t,
        &ana,
        &ben,
        &[("one", &[INSULTS[0]]), ("two", &[INSULTS[1]]), ("three", &[INSULTS[2]]), ("four", &["hello all"])],
    )
    .await;
    let rooms: Vec<(Uuid, Uuid)> = said.iter().map(|(room, ids)| (*room, ids[0])).collect();
    wait_for_buffered_rooms(&t, 4).await;

    clock.advance(chrono::Duration::seconds(4));
    let report = scheduler::tick(&t.local.app).await;
    assert_eq!(report.messages_sent_to_moderation, 4);
    assert_eq!(report.moderation_batches, 1, "four quiet rooms, one job");
    crate::helpers::wait_until("the batch is moderated", || async {
        count(&t, "SELECT count(*) FROM moderation_flags").await == 3
    })
    .await;
    let flags: Vec<(Uuid, Uuid)> = sqlx::query_as("SELECT room_id, message_id FROM moderation_flags ORDER BY room_id")
        .fetch_all(&t.db().await)
        .await
        .unwrap();
    let mut offences: Vec<(Uuid, Uuid)> = rooms[..3].to_vec();
    offences.sort();
    assert_eq!(flags, offences, "each flag in the room its message was said in");
    for (room_id, _) in &rooms[..3] {
        let strikes = mathia::adapters::postgres::moderation::strikes(
            &t.db().await,
            *room_id,
            ben.id,
            clock.now() - chrono::Duration::hours(1),
        )
        .await
        .unwrap();
        assert_eq!(strikes, 1, "one strike in each room");
    }
    assert_eq!(count(&t, "SELECT count(*) FROM mutes").await, 0, "a strike per room mutes nobody");
    assert_eq!(scheduler::tick(&t.local.app).await.moderation_batches, 0, "nothing left");
}

/// Ana opens a room for each entry and brings Ben in; Ben says its bodies there. The rooms, each
/// with the ids of what he said, in order.
async fn in_new_rooms(t: &TestApp, ana: &TestUser, ben: &TestUser, said: &[(&str, &[&str])]) -> Vec<(Uuid, Vec<Uuid>)> {
    let mut out = Vec::new();
    for (name, bodies) in said {
        let room = t.create_room(ana, name).await;
        t.bring_in(ana, room.id, ben).await;
        let (mut b, _) = t.ws_in_room(ben, room.id).await;
        let mut ids = Vec::new();
        for body in *bodies {
            ids.push(say(&mut b, room.id, body).await["message_id"].as_str().unwrap().parse().unwrap());
        }
        out.push((room.id, ids));
    }
    out
}

/// How many rooms have a moderation buffer waiting.
async fn buffered_rooms(t: &TestApp) -> usize {
    let config = &t.local.app.config;
    let mut redis =
        redis::Client::open(config.redis_url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    redis::AsyncCommands::zcard(&mut redis, format!("{}mod:rooms", config.redis_prefix)).await.unwrap()
}

async fn wait_for_buffered_rooms(t: &TestApp, n: usize) {
    crate::helpers::wait_until("the rooms' buffers", || async { buffered_rooms(t).await == n }).await;
}

/// A batch the queue refuses goes back to its rooms' buffers, in order, and the next tick queues
/// it: nothing taken from Redis is left unmoderated.
#[tokio::test]
async fn a_batch_the_queue_refuses_goes_back_and_the_next_tick_moderates_it() {
    let clock = clock();
    let t = TestApp::spawn_with_clock(clock.clone()).await;
    let ana = t.register("Ana").await;
    let ben = t.register("Ben").await;
    let said = in_new_rooms(&t, &ana, &ben, &[("one", &[INSULTS[0], "hello"]), ("two", &[INSULTS[1]])]).await;
    wait_for_buffered_rooms(&t, 2).await;
    let config = &t.local.app.config;
    let mut redis =
        redis::Client::open(config.redis_url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let buffer = |room: Uuid| format!("{}mod:buf:{room}", config.redis_prefix);
    clock.advance(chrono::Duration::seconds(4));

    // The same stores, with a queue that refuses every job.
    let refusing = mathia::app::App::builder(config.clone(), t.db().await)
        .clock(clock.clone())
        .queue(Arc::new(LocalQueue::detached()))
        .build()
        .unwrap();
    let report = scheduler::tick(&refusing).await;
    assert_eq!((report.messages_sent_to_moderation, report.moderation_batches), (0, 0), "nothing queued");
    for (room, ids) in &said {
        let back: Vec<Uuid> = redis::AsyncCommands::lrange::<_, Vec<String>>(&mut redis, buffer(*room), 0, -1)
            .await
            .unwrap()
            .iter()
            .map(|id| id.parse().unwrap())
            .collect();
        assert_eq!(&back, ids, "back in the buffer, in order");
    }
    assert_eq!(buffered_rooms(&t).await, 2, "both rooms waiting again");
    assert_eq!(count(&t, "SELECT count(*) FROM moderation_flags").await, 0);

    // The next tick, with the queue working, queues them: both insults are flagged.
    let report = scheduler::tick(&t.local.app).await;
    assert_eq!((report.messages_sent_to_moderation, report.moderation_batches), (3, 1));
    crate::helpers::wait_until("the batch is moderated", || async {
        count(&t, "SELECT count(*) FROM moderation_flags").await == 2
    })
    .await;
    assert_eq!(scheduler::tick(&t.local.app).await.moderation_batches, 0, "nothing left");
}

#[tokio::test]
async fn owners_see_flags_and_mutes_and_can_unmute() {
    let t = TestApp::spawn_with(|c| c.moderation_batch_size = 3).await;
    let ana = t.register("Ana").await;
    let ben = t.register("Ben").await;
    let room = t.create_room(&ana, "general").await;
    t.bring_in(&ana, room.id, &ben).await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    let (mut b, _) = t.ws_in_room(&ben, room.id).await;
    for insult in &INSULTS[..3] {
        say(&mut b, room.id, insult).await;
    }
    a.recv_type("moderation").await;
    let path = format!("/api/rooms/{}/moderation", room.id);
    let view: Value = t.get(Some(&ana.token), &path).await.json().await.unwrap();
    assert_eq!(view["flags"].as_array().unwrap().len(), 3);
    assert_eq!(view["mutes"][0]["user"]["id"], ben.id.to_string());
    assert_eq!(t.get(Some(&ben.token), &path).await.status(), 403, "members do not moderate");

    let unmute = format!("/api/rooms/{}/mutes/{}", room.id, ben.id);
    assert_eq!(t.http.delete(t.url(&unmute)).bearer_auth(&ben.token).send().await.unwrap().status(), 403);
    assert_eq!(t.http.delete(t.url(&unmute)).bearer_auth(&ana.token).send().await.unwrap().status(), 204);
    assert_eq!(a.recv_type("moderation").await["action"], "unmuted");
    assert_eq!(say(&mut b, room.id, "thanks").await["type"], "ack");
    assert_eq!(t.http.delete(t.url(&unmute)).bearer_auth(&ana.token).send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn with_redis_down_messages_flow_and_moderation_is_queued_directly() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "general").await;
    // The same database, with Redis unreachable.
    let mut config = t.local.app.config.clone();
    config.redis_url = "redis://127.0.0.1:1".into();
    let push = LocalPush::new();
    let (queue, mut jobs) = LocalQueue::new();
    let app = mathia::App::builder(config, t.local.app.db.clone())
        .push(Arc::new(push.clone()))
        .queue(Arc::new(queue))
        .build()
        .unwrap();
    let conn = ConnectionId::new("redis-down");
    let mut outbox = push.attach(conn.clone());
    app.connections
        .register(ConnectionInfo { rooms: [room.id].into(), ..registry_entry("redis-down", ana.id, "Ana") })
        .await
        .unwrap();
    let frame =
        json!({"action": "new_message", "room_id": room.id, "body": INSULTS[0], "client_msg_id": "r"}).to_string();
    mathia::handlers::ws::on_message(&app, &conn, &frame).await;
    let ack: Value = serde_json::from_str(outbox.recv().await.unwrap().as_str()).unwrap();
    assert_eq!(ack["type"], "ack");
    let sent: Value = serde_json::from_str(outbox.recv().await.unwrap().as_str()).unwrap();
    assert_eq!(sent["type"], "new_message");
    let job = tokio::time::timeout(Duration::from_secs(5), jobs.get_mut(&QueueName::Moderation).unwrap().recv())
        .await
        .unwrap()
        .unwrap();
    workers::handle(&app, QueueName::Moderation, &job.body).await.unwrap();
    assert_eq!(count(&t, "SELECT count(*) FROM moderation_flags").await, 1, "nothing was lost");
}

#[tokio::test]
async fn an_edit_to_abuse_is_moderated() {
    let t = TestApp::spawn_with(|c| c.moderation_batch_size = 1).await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "general").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    let id = say(&mut a, room.id, "hello team").await["message_id"].as_str().unwrap().parse::<Uuid>().unwrap();
    // The clean version is moderated first (a batch of one goes straight to the queue).
    let config = &t.local.app.config;
    let redis =
        redis::Client::open(config.redis_url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let buffer = format!("{}mod:buf:{}", config.redis_prefix, room.id);
    crate::helpers::wait_until("the clean message was taken for moderation", || {
        let (mut redis, buffer) = (redis.clone(), buffer.clone());
        async move { redis::AsyncCommands::llen::<_, usize>(&mut redis, buffer).await.unwrap() == 0 }
    })
    .await;

    a.send(json!({"action": "edit_message", "room_id": room.id, "message_id": id, "body": INSULTS[0]})).await;
    a.recv_type("message_edited").await;
    crate::helpers::wait_until("the edited message is flagged", || async {
        count(&t, "SELECT count(*) FROM moderation_flags").await == 1
    })
    .await;
    let flagged: Uuid =
        sqlx::query_scalar("SELECT message_id FROM moderation_flags").fetch_one(&t.db().await).await.unwrap();
    assert_eq!(flagged, id);
}

#[tokio::test]
async fn a_message_deleted_at_once_is_still_moderated() {
    let clock = clock();
    let t = TestApp::spawn_with_clock(clock.clone()).await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "general").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    let id = say(&mut a, room.id, INSULTS[1]).await["message_id"].as_str().unwrap().parse::<Uuid>().unwrap();
    a.send(json!({"action": "delete_message", "room_id": room.id, "message_id": id})).await;
    a.recv_type("message_deleted").await;

    clock.advance(chrono::Duration::seconds(4));
    scheduler::tick(&t.local.app).await;
    crate::helpers::wait_until("the deleted insult is flagged", || async {
        count(&t, "SELECT count(*) FROM moderation_flags").await == 1
    })
    .await;
    let flagged: Uuid =
        sqlx::query_scalar("SELECT message_id FROM moderation_flags").fetch_one(&t.db().await).await.unwrap();
    assert_eq!(flagged, id);
    // Flagged once, however often it comes round.
    scheduler::tick(&t.local.app).await;
    assert_eq!(count(&t, "SELECT count(*) FROM moderation_flags").await, 1);
}
