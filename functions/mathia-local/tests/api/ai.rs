//! The assistant end to end, against a fake model server: streaming to everyone, the prompt's
//! contents, one reply and one charge per job, stop, provider failures, and the connectors.

use std::time::Duration;

use mathia::{
    adapters::local::OFFLINE_REPLY,
    ports::QueueName,
    workers::{self, AiJob},
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    fake_model::{Behaviour, FakeModel},
    helpers::{TestApp, WsClient},
};

/// start, chunks, end of the next AI stream on a socket.
async fn read_stream(ws: &mut WsClient) -> (Value, Vec<Value>, Value) {
    let start = ws.recv_type("ai_stream_start").await;
    let mut chunks = Vec::new();
    loop {
        let ev = ws.recv().await;
        match ev["type"].as_str().unwrap() {
            "ai_stream_chunk" => chunks.push(ev),
            "ai_stream_end" => return (start, chunks, ev),
            _ => {}
        }
    }
}

fn joined(chunks: &[Value]) -> String {
    chunks.iter().map(|c| c["delta"].as_str().unwrap()).collect()
}

async fn ai_replies(t: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM messages WHERE kind = 'ai'").fetch_one(&t.db().await).await.unwrap()
}

/// Replies paid for: charges not refunded.
async fn charges(t: &TestApp) -> i64 {
    sqlx::query_scalar(
        "SELECT (count(*) FILTER (WHERE reason = 'AI reply') - count(*) FILTER (WHERE reason = 'AI reply refund'))::bigint
         FROM ledger_entries",
    )
        .fetch_one(&t.db().await)
        .await
        .unwrap()
}

async fn spawn_with_model(behaviour: Behaviour) -> (TestApp, FakeModel) {
    let model = FakeModel::start(behaviour).await;
    let url = model.base_url.clone();
    let t = TestApp::spawn_with(|c| {
        c.ai_base_url = Some(url);
        c.ai_idle_timeout = Duration::from_secs(1);
    })
    .await;
    (t, model)
}

#[tokio::test]
async fn a_reply_streams_to_everyone_and_knows_goals_notes_and_history() {
    let answer = "Ship the launch on Friday: freeze features on Wednesday, then run the checklist together.";
    let (t, model) = spawn_with_model(FakeModel::words(answer, Duration::from_millis(5))).await;
    let ana = t.register("Ana").await;
    let ben = t.register("Ben").await;
    let room = t.create_room(&ana, "launch").await;
    t.bring_in(&ana, room.id, &ben).await;
    let other = t.create_room(&ana, "elsewhere").await;
    for (room_id, text, priority) in [
        (room.id, "The launch is on Friday", "normal"),
        (other.id, "Budget is capped at 10k", "high"),
        (other.id, "Lunch at noon", "normal"),
    ] {
        let res = t
            .post(Some(&ana.token), &format!("/api/rooms/{room_id}/notes"), json!({"text": text, "priority": priority}))
            .await;
        assert_eq!(res.status(), 201);
    }
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    let (mut b, _) = t.ws_in_room(&ben, room.id).await;
    b.send(json!({"action": "new_message", "room_id": room.id, "body": "We still need the release notes", "client_msg_id": "h1"})).await;
    b.recv_type("ack").await;
    a.send(json!({"action": "new_message", "room_id": room.id, "body": "@mathia what should we do this week?", "client_msg_id": "q1"})).await;

    let (start_a, chunks_a, end_a) = read_stream(&mut a).await;
    let (start_b, chunks_b, end_b) = read_stream(&mut b).await;
    assert_eq!(start_a, start_b);
    assert_eq!(chunks_a, chunks_b, "everyone sees the same stream");
    assert_eq!(end_a, end_b);
    let seqs: Vec<u64> = chunks_a.iter().map(|c| c["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (0..chunks_a.len() as u64).collect::<Vec<_>>(), "gapless from 0");
    assert!(chunks_a.len() < answer.split(' ').count(), "deltas are coalesced ({} chunks)", chunks_a.len());
    assert_eq!(joined(&chunks_a), answer);
    let message = &end_a["message"];
    assert_eq!(message["body"], answer);
    assert_eq!(message["kind"], "ai");
    assert!(message["author"].is_null());
    assert_eq!(message["reply_to"]["id"], start_a["reply_to"]);
    assert_eq!(end_a["stream_id"], start_a["stream_id"]);

    let history: Value =
        t.get(Some(&ana.token), &format!("/api/rooms/{}/messages", room.id)).await.json().await.unwrap();
    let stored = history["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(&stored, message, "the stored message matches");

    let requests = model.requests();
    assert_eq!(requests.len(), 1);
    let prompt = serde_json::to_string(&requests[0]["messages"]).unwrap();
    assert_eq!(requests[0]["stream"], true);
    for expected in [
        "ship the launch",
        "quality",
        "concise",
        "The launch is on Friday",
        "Budget is capped at 10k",
        "We still need the release notes",
        "what should we do this week?",
    ] {
        assert!(prompt.contains(expected), "the prompt lacks {expected:?}: {prompt}");
    }
    assert!(!prompt.contains("Lunch at noon"), "normal notes of other rooms stay there");
    assert_eq!(charges(&t).await, 1);
}

#[tokio::test]
async fn the_same_job_twice_gives_one_reply_and_one_charge() {
    let (t, model) = spawn_with_model(FakeModel::words("Once only.", Duration::from_millis(5))).await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "general").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    // A plain message, then its AI job delivered twice at once, then again later.
    a.send(json!({"action": "new_message", "room_id": room.id, "body": "what is 2+2?", "client_msg_id": "m"})).await;
    let message_id: Uuid = a.recv_type("ack").await["message_id"].as_str().unwrap().parse().unwrap();
    let job = serde_json::to_string(&AiJob {
        job_id: message_id,
        room_id: room.id,
        message_id,
        user_id: ana.id,
        regenerates: None,
    })
    .unwrap();
    let app = &t.local.app;
    let (r1, r2) = tokio::join!(workers::handle(app, QueueName::Ai, &job), workers::handle(app, QueueName::Ai, &job));
    r1.unwrap();
    r2.unwrap();
    workers::handle(app, QueueName::Ai, &job).await.unwrap();
    read_stream(&mut a).await;
    a.expect_nothing_but(&["new_message", "ack"], Duration::from_millis(300)).await;
    assert_eq!(ai_replies(&t).await, 1);
    assert_eq!(charges(&t).await, 1);
    assert_eq!(model.requests().len(), 1, "the model was asked once");
}

/// A test app on `model`, whose silence the assistant waits out far longer than any test
/// runs: a stream on a gated model ends only by `stop_ai` or by the model going on.
async fn spawn_with_patient_model(behaviour: Behaviour) -> (TestApp, FakeModel) {
    let model = FakeModel::start(behaviour).await;
    let url = model.base_url.clone();
    let t = TestApp::spawn_with(|c| {
        c.ai_base_url = Some(url);
        c.ai_idle_timeout = Duration::from_secs(600);
    })
    .await;
    (t, model)
}

#[tokio::test]
async fn stop_ends_the_stream_early_keeps_the_partial_reply_and_bills_it() {
    let (first, rest) = ("The first part of a long essay, ", "and the rest that is never written.");
    let (t, model) = spawn_with_patient_model(FakeModel::gated(first, rest)).await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "general").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    a.send(json!({"action": "new_message", "room_id": room.id, "body": "@mathia write a long essay", "client_msg_id": "e"})).await;
    let start = a.recv_type("ai_stream_start").await;
    // The model has said its first part and now waits: only a stop can end this stream.
    let mut chunks = Vec::new();
    while joined(&chunks) != first {
        chunks.push(a.recv_type("ai_stream_chunk").await);
        assert!(first.starts_with(&joined(&chunks)), "{}", joined(&chunks));
    }
    a.send(json!({"action": "stop_ai", "room_id": room.id, "stream_id": start["stream_id"]})).await;
    let end = loop {
        let ev = a.recv().await;
        match ev["type"].as_str().unwrap() {
            "ai_stream_chunk" => chunks.push(ev),
            "ai_stream_end" => break ev,
            "error" => panic!("stop refused: {ev}"),
            _ => {}
        }
    };
    assert_eq!(end["stream_id"], start["stream_id"]);
    let body = end["message"]["body"].as_str().unwrap();
    assert_eq!(body, joined(&chunks));
    assert_eq!(body, first, "the reply is what was said before the stop, and nothing after");
    assert_eq!(end["message"]["stopped"], true);
    assert_eq!(charges(&t).await, 1, "a stopped reply that delivered text is billed once");
    // Released now, the model's rest reaches nobody: the stream is over.
    model.release();
    a.expect_nothing_but(&[], Duration::from_millis(300)).await;
    let history: Value =
        t.get(Some(&ana.token), &format!("/api/rooms/{}/messages", room.id)).await.json().await.unwrap();
    assert_eq!(history["messages"].as_array().unwrap().last().unwrap(), &end["message"], "stored as ended");
    // Stopping a stream of another room, or one that does not exist, is refused.
    a.send(json!({"action": "stop_ai", "room_id": room.id, "stream_id": Uuid::new_v4().to_string()})).await;
    assert_eq!(a.recv_type("error").await["code"], "not_found");
}

#[tokio::test]
async fn a_non_member_cannot_stop_a_stream_and_the_answer_keeps_coming() {
    let (first, rest) = ("Here is the plan: ", "freeze on Wednesday, ship on Friday.");
    let (t, model) = spawn_with_patient_model(FakeModel::gated(first, rest)).await;
    let ana = t.register("Ana").await;
    let eve = t.register("Eve").await;
    let room = t.create_room(&ana, "general").await;
    let eves = t.create_room(&eve, "eve's").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    let (mut e, _) = t.ws_in_room(&eve, eves.id).await;
    a.send(json!({"action": "new_message", "room_id": room.id, "body": "@mathia plan the week", "client_msg_id": "p"}))
        .await;
    let start = a.recv_type("ai_stream_start").await;
    let stream_id = start["stream_id"].clone();
    let mut chunks = vec![a.recv_type("ai_stream_chunk").await];

    // Eve learnt the stream id somehow: naming Ana's room she is not a member, naming her own
    // room the stream is not there.
    e.send(json!({"action": "stop_ai", "room_id": room.id, "stream_id": stream_id})).await;
    assert_eq!(e.recv_error().await["code"], "not_member");
    e.send(json!({"action": "stop_ai", "room_id": eves.id, "stream_id": stream_id})).await;
    assert_eq!(e.recv_error().await["code"], "not_found");
    e.assert_alive().await;
    let stop_flag = t.local.app.redis.stop_requested(stream_id.as_str().unwrap().parse().unwrap()).await.unwrap();
    assert!(!stop_flag, "no stop was recorded for the stream");

    model.release();
    let end = loop {
        let ev = a.recv().await;
        match ev["type"].as_str().unwrap() {
            "ai_stream_chunk" => chunks.push(ev),
            "ai_stream_end" => break ev,
            _ => {}
        }
    };
    assert_eq!(end["stream_id"], stream_id);
    assert_eq!(end["message"]["body"], format!("{first}{rest}"), "the whole answer");
    assert_eq!(joined(&chunks), format!("{first}{rest}"));
    assert_eq!(end["message"]["stopped"], false);
    e.expect_nothing_but(&[], Duration::from_millis(300)).await;
}

#[tokio::test]
async fn provider_failures_end_clearly_and_charge_nothing() {
    let (t, model) = spawn_with_model(Behaviour::Status(500)).await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "general").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    for (i, behaviour) in [Behaviour::Status(500), Behaviour::Hang, Behaviour::Malformed].into_iter().enumerate() {
        model.set(behaviour.clone());
        a.send(json!({"action": "new_message", "room_id": room.id, "body": format!("@mathia try {i}"), "client_msg_id": format!("f{i}")})).await;
        let (_, chunks, end) = read_stream(&mut a).await;
        let body = end["message"]["body"].as_str().unwrap();
        assert!(body.contains("unavailable") && body.contains("Nothing was charged"), "{behaviour:?}: {body}");
        assert_eq!(body, joined(&chunks));
        a.assert_alive().await;
    }
    assert_eq!(charges(&t).await, 0);
    let balance: i64 = sqlx::query_scalar(
        "SELECT balance_cents FROM wallets w JOIN rooms r ON r.workspace_id = w.workspace_id WHERE r.id = $1",
    )
    .bind(room.id)
    .fetch_one(&t.db().await)
    .await
    .unwrap();
    assert_eq!(balance, 500, "failed replies cost nothing in the end");
    assert_eq!(ai_replies(&t).await, 3);
    assert!(model.requests().len() >= 4, "a 500 is retried once");
}

#[tokio::test]
async fn an_empty_wallet_answers_insufficient_funds_before_the_model() {
    let model = FakeModel::start(FakeModel::words("never", Duration::ZERO)).await;
    let url = model.base_url.clone();
    let t = TestApp::spawn_with(|c| {
        c.ai_base_url = Some(url);
        c.welcome_credit_cents = 0;
    })
    .await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "general").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    a.send(json!({"action": "new_message", "room_id": room.id, "body": "@mathia hello", "client_msg_id": "broke"}))
        .await;
    let err = a.recv_type("error").await;
    assert_eq!(err["code"], "insufficient_funds");
    assert_eq!(err["ref"], "broke");
    assert!(model.requests().is_empty(), "the model was not called");
    assert_eq!(ai_replies(&t).await, 0);
    // Free connectors still answer.
    a.send(json!({"action": "new_message", "room_id": room.id, "body": "@mathia help", "client_msg_id": "h"})).await;
    let (_, _, end) = read_stream(&mut a).await;
    assert!(end["message"]["body"].as_str().unwrap().contains("Reminders"));
}

#[tokio::test]
async fn without_a_model_the_offline_responder_is_honest_and_intents_still_work() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "general").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    a.send(json!({"action": "new_message", "room_id": room.id, "body": "@mathia what's the weather?", "client_msg_id": "w"})).await;
    let (_, _, end) = read_stream(&mut a).await;
    assert_eq!(end["message"]["body"], OFFLINE_REPLY);
    assert_eq!(charges(&t).await, 0, "the offline responder is free");

    a.send(json!({"action": "new_message", "room_id": room.id, "body": "@mathia remember that the launch is on Friday", "client_msg_id": "n"})).await;
    let note = a.recv_type("note_added").await;
    assert_eq!(note["note"]["text"], "the launch is on Friday");
    let (_, _, end) = read_stream(&mut a).await;
    assert!(end["message"]["body"].as_str().unwrap().contains("the launch is on Friday"));
    let notes: Value = t.get(Some(&ana.token), &format!("/api/rooms/{}/notes", room.id)).await.json().await.unwrap();
    assert_eq!(notes[0]["text"], "the launch is on Friday");

    a.send(json!({"action": "new_message", "room_id": room.id, "body": "@mathia what's our wallet balance?", "client_msg_id": "b"})).await;
    let (_, _, end) = read_stream(&mut a).await;
    assert!(end["message"]["body"].as_str().unwrap().contains("500 cents"), "{}", end["message"]["body"]);
    a.send(
        json!({"action": "new_message", "room_id": room.id, "body": "@mathia check my calendar", "client_msg_id": "c"}),
    )
    .await;
    let (_, _, end) = read_stream(&mut a).await;
    assert!(end["message"]["body"].as_str().unwrap().contains("Calendly"));
}

#[tokio::test]
async fn summarize_posts_the_models_summary_and_keeps_it_as_an_insight() {
    let summary = "- Decided: ship on Friday\n- Action: Ben writes the release notes";
    let (t, model) = spawn_with_model(FakeModel::words(summary, Duration::from_millis(2))).await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "launch").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    a.send(json!({"action": "new_message", "room_id": room.id, "body": "we ship on Friday", "client_msg_id": "s0"}))
        .await;
    a.recv_type("ack").await;
    a.send(
        json!({"action": "new_message", "room_id": room.id, "body": "@mathia summarize today", "client_msg_id": "s1"}),
    )
    .await;
    let (_, _, end) = read_stream(&mut a).await;
    assert_eq!(end["message"]["body"], summary);
    let note = a.recv_type("note_added").await;
    assert_eq!(note["note"]["kind"], "insight");
    assert_eq!(note["note"]["text"], summary);
    let prompt = serde_json::to_string(&model.requests()[0]["messages"]).unwrap();
    assert!(
        prompt.contains("Summarize this room's conversation from today") && prompt.contains("we ship on Friday"),
        "{prompt}"
    );
}

async fn balance_of_room(t: &TestApp, room_id: Uuid) -> i64 {
    sqlx::query_scalar(
        "SELECT w.balance_cents FROM wallets w JOIN rooms r ON r.workspace_id = w.workspace_id WHERE r.id = $1",
    )
    .bind(room_id)
    .fetch_one(&t.db().await)
    .await
    .unwrap()
}

#[tokio::test]
async fn concurrent_asks_call_the_model_only_as_often_as_the_wallet_pays() {
    const PAID: usize = 3;
    const ASKS: usize = 15;
    let model = FakeModel::start(FakeModel::words("A paid answer, slowly.", Duration::from_millis(30))).await;
    let url = model.base_url.clone();
    let t = TestApp::spawn_with(|c| {
        c.ai_base_url = Some(url);
        c.welcome_credit_cents = PAID as i64;
        c.rate_limit_per_min = 1000;
    })
    .await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "general").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    for i in 0..ASKS {
        a.send(json!({"action": "new_message", "room_id": room.id, "body": format!("@mathia question {i}"), "client_msg_id": format!("q{i}")})).await;
    }
    let (mut ends, mut broke) = (0, 0);
    while ends + broke < ASKS {
        let ev = a.recv().await;
        match ev["type"].as_str().unwrap() {
            "ai_stream_end" => ends += 1,
            "error" => {
                assert_eq!(ev["code"], "insufficient_funds", "{ev}");
                broke += 1;
            }
            _ => {}
        }
    }
    assert_eq!(model.requests().len(), PAID, "one model call per paid reply");
    assert_eq!((ends, broke), (PAID, ASKS - PAID));
    assert_eq!(balance_of_room(&t, room.id).await, 0, "spent exactly, never below zero");
    a.assert_alive().await;
}

#[tokio::test]
async fn every_model_request_carries_max_tokens() {
    let model = FakeModel::start(FakeModel::words("Short.", Duration::ZERO)).await;
    let url = model.base_url.clone();
    let t = TestApp::spawn_with(|c| {
        c.ai_base_url = Some(url);
        c.ai_max_tokens = 77;
    })
    .await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "general").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    a.send(json!({"action": "new_message", "room_id": room.id, "body": "@mathia hi", "client_msg_id": "m"})).await;
    read_stream(&mut a).await;
    assert_eq!(model.requests()[0]["max_tokens"], 77);
}

/// Reads the next stream, failing if it does not end within `limit`.
async fn stream_within(ws: &mut WsClient, limit: Duration) -> (Value, Vec<Value>, Value) {
    tokio::time::timeout(limit, read_stream(ws)).await.expect("the stream ends")
}

#[tokio::test]
async fn a_model_that_never_stops_is_cut_at_the_reply_cap_and_stored() {
    let model = FakeModel::start(Behaviour::Forever { delta: "blah ".into(), delay: Duration::from_millis(1) }).await;
    let url = model.base_url.clone();
    let t = TestApp::spawn_with(|c| {
        c.ai_base_url = Some(url);
        c.ai_reply_max_chars = 300;
    })
    .await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "general").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    a.send(json!({"action": "new_message", "room_id": room.id, "body": "@mathia talk forever", "client_msg_id": "f"}))
        .await;
    let (_, chunks, end) = stream_within(&mut a, Duration::from_secs(15)).await;
    let body = end["message"]["body"].as_str().unwrap();
    assert_eq!(body, joined(&chunks));
    assert!(body.chars().count() <= 300, "{} characters", body.chars().count());
    assert!(body.starts_with("blah blah") && body.contains("length limit"), "{body}");
    let history: Value =
        t.get(Some(&ana.token), &format!("/api/rooms/{}/messages", room.id)).await.json().await.unwrap();
    assert_eq!(history["messages"].as_array().unwrap().last().unwrap(), &end["message"], "stored as ended");
    assert_eq!(charges(&t).await, 1, "a cut reply delivered text: billed once");
    a.assert_alive().await;
}

#[tokio::test]
async fn a_model_that_never_stops_is_cut_at_the_deadline_and_stored() {
    let model = FakeModel::start(Behaviour::Forever { delta: "slow ".into(), delay: Duration::from_millis(50) }).await;
    let url = model.base_url.clone();
    let t = TestApp::spawn_with(|c| {
        c.ai_base_url = Some(url);
        c.ai_deadline = Duration::from_secs(1);
    })
    .await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "general").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    let asked = std::time::Instant::now();
    a.send(json!({"action": "new_message", "room_id": room.id, "body": "@mathia talk slowly forever", "client_msg_id": "d"})).await;
    let (_, chunks, end) = stream_within(&mut a, Duration::from_secs(15)).await;
    assert!(asked.elapsed() < Duration::from_secs(5), "ended at the deadline, after {:?}", asked.elapsed());
    let body = end["message"]["body"].as_str().unwrap();
    assert_eq!(body, joined(&chunks));
    assert!(body.starts_with("slow slow") && body.contains("time limit"), "{body}");
    let history: Value =
        t.get(Some(&ana.token), &format!("/api/rooms/{}/messages", room.id)).await.json().await.unwrap();
    assert_eq!(history["messages"].as_array().unwrap().last().unwrap(), &end["message"], "stored as ended");
    a.assert_alive().await;
}

/// A job whose attempt fails after it was claimed (here: a table it reads is briefly gone, as
/// in a failover) is retried by the local queue within seconds, and the retry must be allowed
/// to run it: the reply arrives, once.
#[tokio::test]
async fn a_claimed_job_that_fails_is_answered_on_the_retry() {
    let (t, model) = spawn_with_model(FakeModel::words("Back again.", Duration::from_millis(5))).await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "general").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    let db = t.db().await;
    sqlx::query("ALTER TABLE notes RENAME TO notes_away").execute(&db).await.unwrap();

    a.send(json!({"action": "new_message", "room_id": room.id, "body": "@mathia what is 2+2?", "client_msg_id": "q"}))
        .await;
    a.recv_type("ack").await;
    let pool = &db;
    crate::helpers::wait_until("the job was claimed", || async move {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM ai_jobs").fetch_one(pool).await.unwrap() == 1
    })
    .await;
    // The first attempt fails reading the notes; then the table is back.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(model.requests().len(), 0, "the first attempt never reached the model");
    sqlx::query("ALTER TABLE notes_away RENAME TO notes").execute(&db).await.unwrap();

    let (_, chunks, end) = read_stream(&mut a).await;
    assert_eq!(joined(&chunks), "Back again.");
    assert_eq!(end["message"]["body"], "Back again.");
    a.expect_nothing_but(&[], Duration::from_millis(300)).await;
    assert_eq!(ai_replies(&t).await, 1);
    assert_eq!(model.requests().len(), 1);
}
