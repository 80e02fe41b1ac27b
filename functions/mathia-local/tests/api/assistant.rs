//! The assistant's issue-14 features against fake model servers: regenerating a reply (in
//! place, billed once more, once per job, refused to whoever may not), the notes a reply drew on
//! (`sources`, never another room's note by name), and a model per workspace.

use std::time::Duration;

use chrono::Utc;
use mathia::{
    adapters::postgres::moderation,
    config::AiModelConfig,
    ports::QueueName,
    workers::{self, AiJob},
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    fake_model::{Behaviour, FakeModel},
    helpers::{TestApp, TestUser, WsClient},
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

async fn spawn_with_model(behaviour: Behaviour, rate_limit_per_min: u32) -> (TestApp, FakeModel) {
    let model = FakeModel::start(behaviour).await;
    let url = model.base_url.clone();
    let t = TestApp::spawn_with(|c| {
        c.ai_base_url = Some(url);
        c.ai_idle_timeout = Duration::from_secs(5);
        c.rate_limit_per_min = rate_limit_per_min;
    })
    .await;
    (t, model)
}

fn words(text: &str) -> Behaviour {
    FakeModel::words(text, Duration::from_millis(2))
}

/// Asks `@mathia {question}` on `ws` and reads the reply's stream: (question id, reply).
async fn ask(ws: &mut WsClient, room: Uuid, question: &str) -> (Uuid, Value) {
    ws.send(json!({"action": "new_message", "room_id": room, "body": format!("@mathia {question}"), "client_msg_id": Uuid::new_v4().to_string()}))
        .await;
    let question_id = ws.recv_type("ack").await["message_id"].as_str().unwrap().parse().unwrap();
    let (_, _, end) = read_stream(ws).await;
    (question_id, end["message"].clone())
}

async fn stored(t: &TestApp, user: &TestUser, room: Uuid, id: &str) -> Value {
    let history: Value = t.get(Some(&user.token), &format!("/api/rooms/{room}/messages")).await.json().await.unwrap();
    history["messages"].as_array().unwrap().iter().find(|m| m["id"] == id).cloned().expect("the message is listed")
}

#[tokio::test]
async fn regenerating_replaces_the_reply_in_place_and_bills_once_more() {
    let (t, model) = spawn_with_model(words("The first answer."), 30).await;
    let ana = t.register("Ana").await;
    let ben = t.register("Ben").await;
    let room = t.create_room(&ana, "launch").await;
    t.bring_in(&ana, room.id, &ben).await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    let (mut b, _) = t.ws_in_room(&ben, room.id).await;
    let (_, reply) = ask(&mut a, room.id, "what should we do first?").await;
    read_stream(&mut b).await;
    assert_eq!(reply["body"], "The first answer.");

    model.set(words("A better second answer."));
    a.send(json!({"action": "regenerate", "room_id": room.id, "message_id": reply["id"]})).await;
    let (start, _, end) = read_stream(&mut b).await;
    assert_eq!(start["replaces"], reply["id"], "the stream says which reply it replaces");
    assert_eq!(start["reply_to"], reply["reply_to"]["id"]);
    let message = &end["message"];
    assert_eq!(message["id"], reply["id"], "the same message, rewritten");
    assert_eq!(message["body"], "A better second answer.");
    assert!(message["edited_at"].is_string());
    assert_eq!(&stored(&t, &ben, room.id, reply["id"].as_str().unwrap()).await, message);

    assert_eq!(ai_replies(&t).await, 1, "replaced, not added");
    assert_eq!(charges(&t).await, 2, "billed like a new reply");
    let requests = model.requests();
    assert_eq!(requests.len(), 2);
    let last_turn = requests[1]["messages"].as_array().unwrap().last().unwrap().clone();
    assert!(last_turn["content"].as_str().unwrap().contains("what should we do first?"), "{last_turn}");
}

#[tokio::test]
async fn a_regenerate_job_delivered_again_answers_once_and_bills_once() {
    let (t, model) = spawn_with_model(words("One answer."), 30).await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "general").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    let (question, reply) = ask(&mut a, room.id, "how are we doing?").await;
    let reply_id: Uuid = reply["id"].as_str().unwrap().parse().unwrap();
    a.send(json!({"action": "regenerate", "room_id": room.id, "message_id": reply_id})).await;
    read_stream(&mut a).await;

    let job_id: Uuid = sqlx::query_scalar("SELECT job_id FROM ai_jobs WHERE regenerates = $1")
        .bind(reply_id)
        .fetch_one(&t.db().await)
        .await
        .unwrap();
    let job = serde_json::to_string(&AiJob {
        job_id,
        room_id: room.id,
        message_id: question,
        user_id: ana.id,
        regenerates: Some(reply_id),
    })
    .unwrap();
    let app = &t.local.app;
    let (r1, r2) = tokio::join!(workers::handle(app, QueueName::Ai, &job), workers::handle(app, QueueName::Ai, &job));
    r1.unwrap();
    r2.unwrap();
    a.none_of_before_pong(&["ai_stream_start"]).await;
    assert_eq!(model.requests().len(), 2, "the model was asked once for the regeneration");
    assert_eq!(charges(&t).await, 2);
    assert_eq!(ai_replies(&t).await, 1);
}

#[tokio::test]
async fn regenerate_is_refused_to_others_outsiders_the_muted_the_logged_out_and_a_flood() {
    // Two actions a minute: the question and one regeneration.
    let (t, model) = spawn_with_model(words("Only answer."), 2).await;
    let ana = t.register("Ana").await;
    let ben = t.register("Ben").await;
    let cara = t.register("Cara").await;
    let room = t.create_room(&ana, "general").await;
    t.bring_in(&ana, room.id, &ben).await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    let (mut b, _) = t.ws_in_room(&ben, room.id).await;
    let mut c = t.ws(&cara).await;
    let (question, reply) = ask(&mut a, room.id, "what is next?").await;
    read_stream(&mut b).await;
    let regenerate = json!({"action": "regenerate", "room_id": room.id, "message_id": reply["id"]});

    b.send(regenerate.clone()).await;
    assert_eq!(b.recv_type("error").await["code"], "forbidden", "only the asker regenerates");
    c.send(regenerate.clone()).await;
    assert_eq!(c.recv_type("error").await["code"], "not_member");
    a.send(json!({"action": "regenerate", "room_id": room.id, "message_id": question})).await;
    assert_eq!(a.recv_type("error").await["code"], "bad_request", "a person's message is no AI reply");
    a.send(json!({"action": "regenerate", "room_id": room.id, "message_id": Uuid::new_v4()})).await;
    assert_eq!(a.recv_type("error").await["code"], "not_found");

    // The flood: the first regeneration is the minute's last action; the next is refused.
    model.set(words("The regenerated answer."));
    a.send(regenerate.clone()).await;
    a.send(regenerate.clone()).await;
    let refused = a.recv_type("error").await;
    assert_eq!(refused["code"], "rate_limited", "{refused}");
    let (_, _, end) = read_stream(&mut b).await;
    assert_eq!(end["message"]["body"], "The regenerated answer.");

    let now = Utc::now();
    moderation::mute(&t.db().await, room.id, ana.id, now + chrono::Duration::minutes(10), "test", now)
        .await
        .unwrap()
        .expect("muted");
    a.send(regenerate.clone()).await;
    assert_eq!(a.recv_type("error").await["code"], "muted");
    a.assert_alive().await;

    let out = t.post(Some(&ana.token), "/api/auth/logout", json!({})).await;
    assert_eq!(out.status(), 204);
    let _ =
        futures::SinkExt::send(&mut a.stream, tokio_tungstenite::tungstenite::Message::text(regenerate.to_string()))
            .await;

    b.none_of_before_pong(&["ai_stream_start"]).await;
    assert_eq!(model.requests().len(), 2, "one question, one regeneration");
    assert_eq!(charges(&t).await, 2);
    assert_eq!(ai_replies(&t).await, 1);
    let now_reads = stored(&t, &ben, room.id, reply["id"].as_str().unwrap()).await;
    assert_eq!(now_reads["body"], "The regenerated answer.");
}

#[tokio::test]
async fn a_connectors_reply_is_not_regenerated() {
    let (t, model) = spawn_with_model(words("unused"), 30).await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "general").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    let (_, reply) = ask(&mut a, room.id, "remember that the launch is on Friday").await;
    let before = reply["body"].clone();
    a.send(json!({"action": "regenerate", "room_id": room.id, "message_id": reply["id"]})).await;
    let refused = a.recv_type("error").await;
    assert_eq!(refused["code"], "bad_request", "{refused}");
    a.none_of_before_pong(&["ai_stream_start", "note_added"]).await;
    assert_eq!(stored(&t, &ana, room.id, reply["id"].as_str().unwrap()).await["body"], before);
    assert!(model.requests().is_empty());
}

#[tokio::test]
async fn sources_name_the_rooms_notes_and_only_count_the_askers_notes_from_elsewhere() {
    let (t, _model) = spawn_with_model(words("Plan: launch on Friday."), 30).await;
    let ana = t.register("Ana").await;
    let ben = t.register("Ben").await;
    let room = t.create_room(&ana, "launch").await;
    t.bring_in(&ana, room.id, &ben).await;
    let elsewhere = t.create_room(&ana, "ana-private").await;
    let add = |room_id: Uuid, text: &'static str, priority: &'static str, who: &TestUser| {
        let token = who.token.clone();
        let t = &t;
        async move {
            let res = t
                .post(Some(&token), &format!("/api/rooms/{room_id}/notes"), json!({"text": text, "priority": priority}))
                .await;
            assert_eq!(res.status(), 201);
            res.json::<Value>().await.unwrap()
        }
    };
    let room_note = add(room.id, "The launch is on Friday", "normal", &ana).await;
    add(elsewhere.id, "Secret budget is 10k", "high", &ana).await;

    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    let (mut b, _) = t.ws_in_room(&ben, room.id).await;
    let (_, reply) = ask(&mut a, room.id, "when do we launch?").await;
    let (_, _, end_b) = read_stream(&mut b).await;
    assert_eq!(
        reply["sources"],
        json!([{"note_id": room_note["id"], "room_id": room.id, "excerpt": "The launch is on Friday"}])
    );
    assert_eq!(reply["private_sources"], 1, "Ana's note from another room is counted");
    for seen in [end_b.to_string(), stored(&t, &ben, room.id, reply["id"].as_str().unwrap()).await.to_string()] {
        assert!(!seen.contains("Secret budget"), "another room's note is never named: {seen}");
        assert!(!seen.contains(&elsewhere.id.to_string()), "nor its room: {seen}");
    }
    assert_eq!(stored(&t, &ben, room.id, reply["id"].as_str().unwrap()).await, reply);

    // Sealed at rest: the note's text is not in the row.
    let raw: Vec<u8> = sqlx::query_scalar("SELECT sources_ciphertext FROM messages WHERE id = $1")
        .bind(reply["id"].as_str().unwrap().parse::<Uuid>().unwrap())
        .fetch_one(&t.db().await)
        .await
        .unwrap();
    assert!(!raw.is_empty());
    assert!(!String::from_utf8_lossy(&raw).contains("launch"));

    // Ben asks: the room's note, and none of Ana's others.
    let (_, reply) = ask(&mut b, room.id, "and what else?").await;
    assert_eq!(reply["sources"].as_array().unwrap().len(), 1);
    assert!(reply.get("private_sources").is_none(), "{reply}");
}

fn offered(fast: &FakeModel, big: &FakeModel) -> Vec<AiModelConfig> {
    vec![
        AiModelConfig {
            id: "fast".into(),
            label: "Fast".into(),
            base_url: fast.base_url.clone(),
            model: Some("fast-1".into()),
            api_key: Some("sk-fast-secret".into()),
        },
        AiModelConfig {
            id: "big".into(),
            label: "Big".into(),
            base_url: big.base_url.clone(),
            model: None,
            api_key: None,
        },
    ]
}

async fn spawn_with_models(rate_limit_per_min: u32) -> (TestApp, FakeModel, FakeModel, FakeModel) {
    let default = FakeModel::start(words("From the default.")).await;
    let fast = FakeModel::start(words("From fast.")).await;
    let big = FakeModel::start(words("From big.")).await;
    let (url, models) = (default.base_url.clone(), offered(&fast, &big));
    let t = TestApp::spawn_with(|c| {
        c.ai_base_url = Some(url);
        c.ai_models = models;
        c.rate_limit_per_min = rate_limit_per_min;
    })
    .await;
    (t, default, fast, big)
}

async fn workspace_of(t: &TestApp, user: &TestUser) -> Uuid {
    let me: Value = t.get(Some(&user.token), "/api/me").await.json().await.unwrap();
    me["workspaces"][0]["id"].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn two_workspaces_choosing_two_models_reach_two_servers() {
    let (t, default, fast, big) = spawn_with_models(30).await;
    let ana = t.register("Ana").await;
    let ben = t.register("Ben").await;

    let res = t.get(Some(&ana.token), "/api/ai/models").await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    let models: Value = serde_json::from_str(&text).unwrap();
    let ids: Vec<&str> = models.as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["default", "fast", "big"]);
    for m in models.as_array().unwrap() {
        assert_eq!(m.as_object().unwrap().len(), 2, "only id and label: {m}");
    }
    for leak in ["127.0.0.1", "http", "sk-fast", "fast-1"] {
        assert!(!text.contains(leak), "the list leaks {leak}: {text}");
    }
    assert_eq!(t.get(None, "/api/ai/models").await.status(), 401);

    for (user, model) in [(&ana, "fast"), (&ben, "big")] {
        let ws = workspace_of(&t, user).await;
        let res = t.put(&user.token, &format!("/api/workspaces/{ws}/ai-model"), json!({"model_id": model})).await;
        assert_eq!(res.status(), 200);
        let chosen: Value =
            t.get(Some(&user.token), &format!("/api/workspaces/{ws}/ai-model")).await.json().await.unwrap();
        assert_eq!(chosen["model_id"], model);
    }
    for (user, answer) in [(&ana, "From fast."), (&ben, "From big.")] {
        let room = t.create_room(user, "general").await;
        let (mut ws, _) = t.ws_in_room(user, room.id).await;
        let (_, reply) = ask(&mut ws, room.id, "hello?").await;
        assert_eq!(reply["body"], answer);
    }
    assert_eq!(fast.requests().len(), 1);
    assert_eq!(big.requests().len(), 1);
    assert_eq!(fast.requests()[0]["model"], "fast-1");
    assert!(default.requests().is_empty());
}

#[tokio::test]
async fn only_the_owner_chooses_a_known_model_and_refusals_change_nothing() {
    let (t, _default, _fast, _big) = spawn_with_models(3).await;
    let ana = t.register("Ana").await;
    let ben = t.register("Ben").await;
    let cara = t.register("Cara").await;
    let room = t.create_room(&ana, "general").await;
    t.bring_in(&ana, room.id, &ben).await;
    let ws = workspace_of(&t, &ana).await;
    let path = format!("/api/workspaces/{ws}/ai-model");
    let chosen = |token: String| {
        let (t, path) = (&t, path.clone());
        async move {
            let v: Value = t.get(Some(&token), &path).await.json().await.unwrap();
            v["model_id"].clone()
        }
    };

    assert_eq!(t.put(&ana.token, &path, json!({"model_id": "fast"})).await.status(), 200);
    let member = t.put(&ben.token, &path, json!({"model_id": "big"})).await;
    assert_eq!(member.status(), 403, "a member is not the owner");
    assert_eq!(t.put(&cara.token, &path, json!({"model_id": "big"})).await.status(), 403, "an outsider");
    assert_eq!(t.get(Some(&cara.token), &path).await.status(), 403, "an outsider cannot read it either");
    let unknown = t.put(&ana.token, &path, json!({"model_id": "gpt-9"})).await;
    assert_eq!(unknown.status(), 400);
    assert_eq!(t.put(&ana.token, &path, json!({})).await.status(), 400);
    assert_eq!(chosen(ben.token.clone()).await, "fast", "members may read the choice");

    // A flood: three choices a minute (the refused unknown id counted as one).
    assert_eq!(t.put(&ana.token, &path, json!({"model_id": "big"})).await.status(), 200);
    assert_eq!(t.put(&ana.token, &path, json!({"model_id": "default"})).await.status(), 429);
    assert_eq!(chosen(ben.token.clone()).await, "big", "the refused choice changed nothing");

    let stale = ana.token.clone();
    assert_eq!(t.post(Some(&ana.token), "/api/auth/logout", json!({})).await.status(), 204);
    assert_eq!(t.put(&stale, &path, json!({"model_id": "default"})).await.status(), 401);
    let stored: Option<String> = sqlx::query_scalar("SELECT ai_model FROM workspaces WHERE id = $1")
        .bind(ws)
        .fetch_one(&t.db().await)
        .await
        .unwrap();
    assert_eq!(stored.as_deref(), Some("big"));
}
