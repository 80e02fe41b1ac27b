//! The assistant as an agent, against a fake OpenAI-compatible server that streams
//! `tool_calls`: one tool, two in a turn, a chain of rounds, a failing tool, a tool used past the
//! asker's rights, `stop_ai` mid-chain, and a job delivered again (its effects happen once).

use std::time::Duration;

use mathia::{
    domain::Room,
    ports::QueueName,
    workers::{self, AiJob},
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    fake_model::{Behaviour, FakeModel, Turn},
    helpers::{TestApp, TestUser, WsClient},
};

async fn spawn(turns: Vec<Turn>) -> (TestApp, FakeModel) {
    spawn_with(turns, |_| {}).await
}

async fn spawn_with(turns: Vec<Turn>, tweak: impl FnOnce(&mut mathia::config::Config)) -> (TestApp, FakeModel) {
    let model = FakeModel::start(Behaviour::Script(turns)).await;
    let url = model.base_url.clone();
    let t = TestApp::spawn_with(|c| {
        c.ai_base_url = Some(url);
        c.ai_idle_timeout = Duration::from_secs(600);
        tweak(c);
    })
    .await;
    (t, model)
}

/// Ana, her new room, and her socket in it.
async fn ana_in_a_room(t: &TestApp) -> (TestUser, Room, WsClient) {
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "general").await;
    let (ws, _) = t.ws_in_room(&ana, room.id).await;
    (ana, room, ws)
}

/// Posts `body` without the mention, so that nothing asks the assistant by itself, and answers
/// the AI job for it (and the message's id), for a test to deliver.
async fn unasked_job(ws: &mut WsClient, room_id: Uuid, user: &TestUser, body: &str) -> (String, Uuid) {
    ws.send(
        json!({"action": "new_message", "room_id": room_id, "body": body, "client_msg_id": Uuid::new_v4().to_string()}),
    )
    .await;
    let message_id: Uuid = ws.recv_type("ack").await["message_id"].as_str().unwrap().parse().unwrap();
    let job = AiJob { job_id: message_id, room_id, message_id, user_id: user.id, regenerates: None };
    (serde_json::to_string(&job).unwrap(), message_id)
}

/// Everything of the next AI stream: its start, tool calls and results, text, and end.
pub struct Stream {
    #[allow(dead_code, reason = "kept whole, for a failing test's output")]
    pub start: Value,
    pub calls: Vec<Value>,
    pub results: Vec<Value>,
    pub text: String,
    pub end: Value,
}

pub async fn read_stream(ws: &mut WsClient) -> Stream {
    let start = ws.recv_type("ai_stream_start").await;
    let (mut calls, mut results, mut text) = (Vec::new(), Vec::new(), String::new());
    loop {
        let ev = ws.recv().await;
        match ev["type"].as_str().unwrap() {
            "ai_tool_call" => {
                assert_eq!(ev["stream_id"], start["stream_id"]);
                calls.push(ev)
            }
            "ai_tool_result" => {
                let call = calls.iter().find(|c| c["call_id"] == ev["call_id"]).expect("a result follows its call");
                assert_eq!(call["name"], ev["name"]);
                results.push(ev)
            }
            "ai_stream_chunk" => text.push_str(ev["delta"].as_str().unwrap()),
            "ai_stream_end" => return Stream { start, calls, results, text, end: ev },
            _ => {}
        }
    }
}

pub async fn ask(ws: &mut WsClient, room_id: Uuid, body: &str) {
    ws.send(
        json!({"action": "new_message", "room_id": room_id, "body": body, "client_msg_id": Uuid::new_v4().to_string()}),
    )
    .await;
    ws.recv_type("ack").await;
}

/// The messages of the model's n-th request.
pub fn request_messages(model: &FakeModel, n: usize) -> Vec<Value> {
    model.requests()[n]["messages"].as_array().unwrap().clone()
}

pub fn tool_results(messages: &[Value]) -> Vec<(String, Value)> {
    messages
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| {
            (
                m["tool_call_id"].as_str().unwrap().to_owned(),
                serde_json::from_str(m["content"].as_str().unwrap()).unwrap(),
            )
        })
        .collect()
}

async fn scalar(t: &TestApp, sql: &str, id: Uuid) -> i64 {
    sqlx::query_scalar(sql).bind(id).fetch_one(&t.db().await).await.unwrap()
}

async fn reminders_of(t: &TestApp, user: Uuid) -> i64 {
    scalar(t, "SELECT count(*) FROM reminders WHERE user_id = $1", user).await
}

/// Charges taken from a workspace's wallet for AI replies, less refunds.
async fn charged(t: &TestApp, user: Uuid) -> i64 {
    scalar(
        t,
        "SELECT (count(*) FILTER (WHERE l.reason = 'AI reply') - count(*) FILTER (WHERE l.reason = 'AI reply refund'))::bigint
         FROM ledger_entries l JOIN workspaces w ON w.id = l.workspace_id WHERE w.owner_id = $1",
        user,
    )
    .await
}

#[tokio::test]
async fn one_tool_call_is_made_shown_fed_back_and_answered() {
    let (t, model) = spawn(vec![
        Turn::call(&[("c1", "set_reminder", json!({"text": "call John", "when": "in 10 mins"}))]),
        Turn::say("Done: I will remind you to call John in 10 minutes."),
    ])
    .await;
    let ana = t.register("Ana").await;
    let ben = t.register("Ben").await;
    let room = t.create_room(&ana, "launch").await;
    t.bring_in(&ana, room.id, &ben).await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    let (mut b, _) = t.ws_in_room(&ben, room.id).await;
    ask(&mut a, room.id, "@mathia could you make sure I call John in 10 mins?").await;

    let s = read_stream(&mut a).await;
    assert_eq!(s.calls.len(), 1);
    assert_eq!(s.calls[0]["name"], "set_reminder");
    assert_eq!(s.calls[0]["arguments"], json!({"text": "call John", "when": "in 10 mins"}));
    assert_eq!(s.results[0]["ok"], true, "{}", s.results[0]);
    assert!(s.results[0]["summary"].as_str().unwrap().contains("call John"), "{}", s.results[0]);
    assert_eq!(s.text, "Done: I will remind you to call John in 10 minutes.");
    let message = &s.end["message"];
    assert_eq!(message["body"], s.text);
    assert_eq!(message["tools"][0]["name"], "set_reminder");
    assert_eq!(message["tools"][0]["ok"], true);
    // Everyone in the room sees the same lines.
    let seen_by_ben = read_stream(&mut b).await;
    assert_eq!(seen_by_ben.calls, s.calls);
    assert_eq!(seen_by_ben.results, s.results);

    // The reminder is Ana's, and real.
    assert_eq!(reminders_of(&t, ana.id).await, 1);
    assert_eq!(reminders_of(&t, ben.id).await, 0);
    // The model was offered the tools, then given the result.
    let first = &model.requests()[0];
    let offered: Vec<&str> =
        first["tools"].as_array().unwrap().iter().map(|t| t["function"]["name"].as_str().unwrap()).collect();
    for name in
        ["set_reminder", "remember_note", "search_messages", "room_people", "wallet_balance", "schedule_meeting"]
    {
        assert!(offered.contains(&name), "{name} not offered: {offered:?}");
    }
    let second = request_messages(&model, 1);
    let asked =
        second.iter().find(|m| m["role"] == "assistant" && m["tool_calls"].is_array()).expect("the call is replayed");
    assert_eq!(asked["tool_calls"][0]["function"]["name"], "set_reminder");
    let results = tool_results(&second);
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].0, "c1");
    assert_eq!(results[0].1["text"], "call John");
    assert!(results[0].1["reminder_id"].is_string());
    assert_eq!(model.requests().len(), 2);
    // Two model calls: the reply and its one tool round.
    assert_eq!(charged(&t, ana.id).await, 2);

    // The history keeps the tool line with the reply.
    let history: Value =
        t.get(Some(&ben.token), &format!("/api/rooms/{}/messages", room.id)).await.json().await.unwrap();
    let stored = history["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(stored["tools"], message["tools"]);
}

#[tokio::test]
async fn two_tools_in_one_turn_both_run() {
    let (t, model) = spawn(vec![
        Turn::call(&[
            ("n1", "remember_note", json!({"text": "The launch is on Friday", "kind": "decision"})),
            ("w1", "wallet_balance", json!({})),
        ]),
        Turn::say("Noted, and the wallet holds 5.00 USD."),
    ])
    .await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "launch").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    ask(
        &mut a,
        room.id,
        "@mathia can you note that we decided to launch on Friday, and tell me how much credit is left?",
    )
    .await;
    let s = read_stream(&mut a).await;
    let names: Vec<&str> = s.calls.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["remember_note", "wallet_balance"]);
    assert!(s.results.iter().all(|r| r["ok"] == true), "{:?}", s.results);
    let results = tool_results(&request_messages(&model, 1));
    assert_eq!(results.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), ["n1", "w1"]);
    assert!(results[1].1["balance_cents"].is_i64());
    let notes: Value = t.get(Some(&ana.token), &format!("/api/rooms/{}/notes", room.id)).await.json().await.unwrap();
    let texts: Vec<&str> = notes.as_array().unwrap().iter().map(|n| n["text"].as_str().unwrap()).collect();
    assert!(texts.contains(&"The launch is on Friday"), "{notes}");
}

#[tokio::test]
async fn a_chain_of_two_rounds_searches_then_acts() {
    let (t, model) = spawn(vec![
        Turn::call(&[("s1", "search_messages", json!({"query": "launch"}))]),
        Turn::call(&[(
            "r1",
            "set_reminder",
            json!({"text": "check the launch checklist", "when": "on Friday at 9am"}),
        )]),
        Turn::say("You decided to launch on Friday; I'll remind you that morning."),
    ])
    .await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "launch").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    ask(&mut a, room.id, "We agreed: the launch moves to Friday").await;
    ask(&mut a, room.id, "@mathia what did we decide about the launch, and remind me about it on Friday").await;
    let s = read_stream(&mut a).await;
    let names: Vec<&str> = s.calls.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["search_messages", "set_reminder"]);
    assert_eq!(model.requests().len(), 3);
    let found = &tool_results(&request_messages(&model, 1))[0].1;
    let texts: Vec<&str> = found["messages"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert!(texts.contains(&"We agreed: the launch moves to Friday"), "{found}");
    // The last round sees both rounds' results, in order.
    let last = tool_results(&request_messages(&model, 2));
    assert_eq!(last.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), ["s1", "r1"]);
    assert_eq!(reminders_of(&t, ana.id).await, 1);
    assert_eq!(s.end["message"]["tools"].as_array().unwrap().len(), 2);
    assert_eq!(charged(&t, ana.id).await, 3);
}

#[tokio::test]
async fn a_failing_tool_gives_the_model_an_error_and_the_answer_still_comes() {
    let (t, model) = spawn(vec![
        Turn::call(&[
            ("x1", "cancel_reminder", json!({"reminder_id": Uuid::new_v4()})),
            ("x2", "no_such_tool", json!({})),
            ("x3", "set_reminder", json!({"text": "water the plants", "when": "on feb 30 at 10"})),
        ]),
        Turn::say("I could not do that."),
    ])
    .await;
    let (ana, room, mut a) = ana_in_a_room(&t).await;
    ask(&mut a, room.id, "@mathia could you cancel that reminder and set another?").await;
    let s = read_stream(&mut a).await;
    assert_eq!(s.results.len(), 3);
    assert!(s.results.iter().all(|r| r["ok"] == false), "{:?}", s.results);
    assert_eq!(s.text, "I could not do that.");
    assert_eq!(s.end["message"]["stopped"], false);
    let results = tool_results(&request_messages(&model, 1));
    assert_eq!(results[0].1["error"]["code"], "not_found", "{:?}", results[0]);
    assert_eq!(results[1].1["error"]["code"], "not_found");
    assert!(results[1].1["error"]["message"].as_str().unwrap().contains("no_such_tool"));
    assert_eq!(results[2].1["error"]["code"], "bad_request", "{:?}", results[2]);
    assert_eq!(reminders_of(&t, ana.id).await, 0, "an impossible date stores nothing");
}

#[tokio::test]
async fn a_tool_never_reads_past_the_askers_rights() {
    let secret = "the acquisition closes on the 14th";
    let (t, model) = spawn(vec![Turn::Say("unused".into())]).await;
    let ana = t.register("Ana").await;
    let bo = t.register("Bo").await;
    let room = t.create_room(&ana, "general").await;
    // Ana's own other room, and a room of Bo's that Ana is not in.
    let anas_other = t.create_room(&ana, "board").await;
    let bos = t.create_room(&bo, "private").await;
    for (who, room_id) in [(&ana, anas_other.id), (&bo, bos.id)] {
        let (mut ws, _) = t.ws_in_room(who, room_id).await;
        ask(&mut ws, room_id, &format!("note: {secret}")).await;
    }
    model.set(Behaviour::Script(vec![
        Turn::call(&[
            ("p1", "search_messages", json!({"query": "acquisition", "room_id": bos.id})),
            ("p2", "room_history", json!({"room_id": anas_other.id})),
            ("p3", "room_people", json!({"room_id": bos.id})),
            ("p4", "remember_note", json!({"text": "planted", "room_id": bos.id})),
        ]),
        Turn::say("I can't look there."),
    ]));
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    ask(&mut a, room.id, "@mathia what does the other room say about the acquisition?").await;
    let s = read_stream(&mut a).await;
    assert_eq!(s.results.len(), 4);
    assert!(s.results.iter().all(|r| r["ok"] == false), "{:?}", s.results);
    let second = request_messages(&model, 1);
    let results = tool_results(&second);
    for (_, r) in &results {
        assert_eq!(r["error"]["code"], "forbidden", "{r}");
    }
    let told = serde_json::to_string(&second).unwrap();
    assert!(!told.contains(secret), "another room's words reached the model: {told}");
    assert!(!serde_json::to_string(&s.end).unwrap().contains(secret));
    let planted = scalar(&t, "SELECT count(*) FROM notes WHERE room_id = $1", bos.id).await;
    assert_eq!(planted, 0, "nothing was written into a room Ana is not in");
}

#[tokio::test]
async fn stop_ai_ends_a_chain_between_rounds_and_no_round_follows() {
    let (t, model) = spawn(vec![
        Turn::call(&[("p1", "room_people", json!({}))]),
        Turn::Gated("Let me think ".into()),
        Turn::call(&[("p2", "room_people", json!({}))]),
    ])
    .await;
    let (_ana, room, mut a) = ana_in_a_room(&t).await;
    ask(&mut a, room.id, "@mathia who is here, and then think about it at length").await;
    let start = a.recv_type("ai_stream_start").await;
    a.recv_type("ai_tool_result").await;
    a.send(json!({"action": "stop_ai", "room_id": room.id, "stream_id": start["stream_id"]})).await;
    let end = a.recv_type("ai_stream_end").await;
    assert_eq!(end["message"]["stopped"], true);
    model.release();
    a.none_of_before_pong(&["ai_tool_call"]).await;
    assert!(model.requests().len() <= 2, "no round after the stop: {}", model.requests().len());
    assert_eq!(end["message"]["tools"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_job_delivered_again_acts_once_even_when_rerun() {
    let (t, model) = spawn(vec![
        Turn::call(&[("r1", "set_reminder", json!({"text": "call John", "when": "in 10 mins"}))]),
        Turn::say("Set."),
    ])
    .await;
    let (ana, room, mut a) = ana_in_a_room(&t).await;
    let (job, message_id) = unasked_job(&mut a, room.id, &ana, "could you make sure I call John in 10 mins").await;
    let app = &t.local.app;
    let (r1, r2) = tokio::join!(workers::handle(app, QueueName::Ai, &job), workers::handle(app, QueueName::Ai, &job));
    r1.unwrap();
    r2.unwrap();
    workers::handle(app, QueueName::Ai, &job).await.unwrap();
    read_stream(&mut a).await;
    assert_eq!(model.requests().len(), 2, "one chain");
    assert_eq!(reminders_of(&t, ana.id).await, 1);

    // A retry after a crash runs the chain again (its claim is gone): the model is asked
    // again, but the reminder it asks for again is the one already set.
    sqlx::query("DELETE FROM ai_jobs WHERE job_id = $1").bind(message_id).execute(&t.db().await).await.unwrap();
    workers::handle(app, QueueName::Ai, &job).await.unwrap();
    let again = read_stream(&mut a).await;
    assert_eq!(again.results[0]["ok"], true);
    assert_eq!(model.requests().len(), 4);
    assert_eq!(reminders_of(&t, ana.id).await, 1, "the reminder was set once");
}

#[tokio::test]
async fn an_exact_command_still_goes_to_its_connector_without_the_model() {
    let (t, model) = spawn(vec![Turn::say("unused")]).await;
    let (ana, room, mut a) = ana_in_a_room(&t).await;
    ask(&mut a, room.id, "@mathia remind me to stretch in 10 mins").await;
    let s = read_stream(&mut a).await;
    assert!(s.calls.is_empty());
    assert!(s.text.contains("stretch"), "{}", s.text);
    assert_eq!(model.requests().len(), 0);
    assert_eq!(reminders_of(&t, ana.id).await, 1);
}

#[tokio::test]
async fn a_muted_asker_changes_nothing_through_tools_but_may_still_look() {
    let (t, model) = spawn(vec![
        Turn::call(&[
            ("m1", "remember_note", json!({"text": "planted while muted"})),
            ("m2", "set_reminder", json!({"text": "post later", "when": "in 10 mins"})),
            ("m3", "room_people", json!({})),
        ]),
        Turn::say("Done."),
    ])
    .await;
    let (ana, room, mut a) = ana_in_a_room(&t).await;
    let (job, _) = unasked_job(&mut a, room.id, &ana, "could you note this and remind me").await;
    // Muted after asking, before the assistant acts.
    let now = chrono::Utc::now();
    mathia::adapters::postgres::moderation::mute(
        &t.db().await,
        room.id,
        ana.id,
        now + chrono::Duration::minutes(10),
        "test",
        now,
    )
    .await
    .expect("muted");
    workers::handle(&t.local.app, QueueName::Ai, &job).await.unwrap();
    let s = read_stream(&mut a).await;
    let oks: Vec<bool> = s.results.iter().map(|r| r["ok"].as_bool().unwrap()).collect();
    assert_eq!(oks, [false, false, true], "{:?}", s.results);
    let results = tool_results(&request_messages(&model, 1));
    assert_eq!(results[0].1["error"]["code"], "muted");
    assert_eq!(scalar(&t, "SELECT count(*) FROM notes WHERE room_id = $1", room.id).await, 0);
    assert_eq!(reminders_of(&t, ana.id).await, 0);
}

/// Calendly's tools use the asker's own account: Ana's books with her token, and Bo, who has not
/// connected Calendly, reads nobody's calendar — not even that of Ana, in the same room.
#[tokio::test]
async fn calendly_tools_act_with_the_askers_own_account_only() {
    use wiremock::{
        Mock, MockServer, ResponseTemplate,
        matchers::{method, path},
    };
    let calendly = MockServer::start().await;
    let user_uri = "https://api.calendly.com/users/ANA";
    let type_uri = "https://api.calendly.com/event_types/T1";
    Mock::given(method("GET"))
        .and(path("/users/me"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"resource": {
            "uri": user_uri, "name": "Ana", "email": "ana@example.com", "timezone": "UTC",
            "scheduling_url": "https://calendly.com/ana", "current_organization": "https://api.calendly.com/organizations/O"
        }})))
        .mount(&calendly)
        .await;
    Mock::given(method("GET"))
        .and(path("/event_types"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "collection": [{"uri": type_uri, "name": "30 Minute Meeting", "active": true, "duration": 30,
                            "scheduling_url": "https://calendly.com/ana/30min"}],
            "pagination": {"count": 1, "next_page": null}
        })))
        .mount(&calendly)
        .await;
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).format("%Y-%m-%dT13:00:00.000000Z").to_string();
    Mock::given(method("GET"))
        .and(path("/event_type_available_times"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"collection": [
            {"status": "available", "invitees_remaining": 1, "start_time": tomorrow, "scheduling_url": "https://calendly.com/ana/30min/x"}
        ]})))
        .mount(&calendly)
        .await;
    Mock::given(method("POST"))
        .and(path("/invitees"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"resource": {"uri": "https://api.calendly.com/invitees/I"}})),
        )
        .mount(&calendly)
        .await;

    let model = FakeModel::start(Behaviour::Script(vec![
        Turn::call(&[("k1", "schedule_meeting", json!({"when": "tomorrow afternoon", "email": "bo@example.com"}))]),
        Turn::say("Booked."),
    ]))
    .await;
    let (model_url, calendly_url) = (model.base_url.clone(), calendly.uri());
    let t = TestApp::spawn_with(move |c| {
        c.ai_base_url = Some(model_url);
        c.ai_idle_timeout = Duration::from_secs(600);
        c.calendly_base_url = calendly_url.clone();
        c.calendly_auth_url = calendly_url;
    })
    .await;
    let ana = t.register("Ana").await;
    let bo = t.register("Bo").await;
    let room = t.create_room(&ana, "plans").await;
    t.bring_in(&ana, room.id, &bo).await;
    let res = t.post(Some(&ana.token), "/api/calendly/connect", json!({"personal_access_token": "pat-ana"})).await;
    assert!(res.status().is_success(), "{}", res.status());
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    ask(&mut a, room.id, "@mathia can you book something with bo@example.com tomorrow afternoon?").await;
    let s = read_stream(&mut a).await;
    assert_eq!(s.results[0]["ok"], true, "{:?}", s.results);
    let booked = calendly
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.url.path() == "/invitees")
        .expect("a booking");
    assert_eq!(booked.headers.get("authorization").unwrap(), "Bearer pat-ana");
    let body: Value = serde_json::from_slice(&booked.body).unwrap();
    assert_eq!(body["invitee"]["email"], "bo@example.com");

    // Bo asks for calendars: his own is not connected, and Ana's is not his to read.
    let before = calendly.received_requests().await.unwrap().len();
    model.set(Behaviour::Script(vec![
        Turn::call(&[
            ("k2", "calendar_events", json!({})),
            ("k3", "check_availability", json!({"when": "tomorrow at 3pm"})),
        ]),
        Turn::say("You have not connected Calendly."),
    ]));
    let (mut b, _) = t.ws_in_room(&bo, room.id).await;
    ask(&mut b, room.id, "@mathia what is on the calendar tomorrow?").await;
    let s = read_stream(&mut b).await;
    assert!(s.results.iter().all(|r| r["ok"] == false), "{:?}", s.results);
    let results = tool_results(&request_messages(&model, 3));
    assert_eq!(results[0].1["error"]["code"], "forbidden", "{:?}", results[0]);
    assert_eq!(calendly.received_requests().await.unwrap().len(), before, "Calendly was not asked for Bo");
}

#[tokio::test]
async fn the_scheduler_forgets_tool_outcomes_past_any_redelivery() {
    let (t, _model) = spawn(vec![
        Turn::call(&[("r1", "set_reminder", json!({"text": "call John", "when": "in 10 mins"}))]),
        Turn::say("Set."),
    ])
    .await;
    let (_ana, room, mut a) = ana_in_a_room(&t).await;
    ask(&mut a, room.id, "@mathia could you make sure I call John in 10 mins").await;
    read_stream(&mut a).await;
    let kept = || async { scalar(&t, "SELECT count(*) FROM ai_tool_calls WHERE room_id = $1", room.id).await };
    assert_eq!(kept().await, 1, "the changing call's outcome is kept");
    let tick = mathia::workers::scheduler::tick(&t.local.app).await;
    assert_eq!(tick.tool_outcomes_forgotten, 0);
    assert_eq!(kept().await, 1, "a fresh outcome stays");
    sqlx::query("UPDATE ai_tool_calls SET created_at = now() - interval '16 days' WHERE room_id = $1")
        .bind(room.id)
        .execute(&t.db().await)
        .await
        .unwrap();
    let tick = mathia::workers::scheduler::tick(&t.local.app).await;
    assert_eq!(tick.tool_outcomes_forgotten, 1);
    assert_eq!(kept().await, 0);
}

#[tokio::test]
async fn a_workspace_that_cannot_pay_the_next_round_gets_a_clear_end_and_pays_nothing_for_no_answer() {
    // 500 cents of welcome credit pay one 300-cent round, not two.
    let (t, model) = spawn_with(vec![Turn::call(&[("p1", "room_people", json!({}))]), Turn::say("unused")], |c| {
        c.ai_reply_cost_cents = 300;
        c.welcome_credit_cents = 500;
    })
    .await;
    let (ana, room, mut a) = ana_in_a_room(&t).await;
    ask(&mut a, room.id, "@mathia who is in here, and then tell me about each of them").await;
    let s = read_stream(&mut a).await;
    assert_eq!(s.results.len(), 1, "the first round's call ran");
    assert!(s.text.contains("ran out of credits"), "{}", s.text);
    assert_eq!(model.requests().len(), 1, "no model call the wallet cannot pay for");
    assert_eq!(charged(&t, ana.id).await, 0, "no answer was delivered, so the first round is refunded");
    let balance: i64 = sqlx::query_scalar(
        "SELECT w.balance_cents FROM wallets w JOIN rooms r ON r.workspace_id = w.workspace_id WHERE r.id = $1",
    )
    .bind(room.id)
    .fetch_one(&t.db().await)
    .await
    .unwrap();
    assert_eq!(balance, 500);
}

#[tokio::test]
async fn calls_asked_for_in_the_last_round_are_not_heard_and_the_reply_ends() {
    let (t, model) = spawn_with(
        vec![
            Turn::call(&[("p1", "room_people", json!({}))]),
            Turn::Call {
                text: "Here is who is here.".into(),
                calls: vec![("p2".into(), "room_people".into(), "{}".into())],
            },
        ],
        |c| c.ai_tool_rounds = 1,
    )
    .await;
    let (_ana, room, mut a) = ana_in_a_room(&t).await;
    ask(&mut a, room.id, "@mathia who is here?").await;
    let s = read_stream(&mut a).await;
    assert_eq!(s.calls.len(), 1, "only the first round's call ran");
    assert_eq!(s.text, "Here is who is here.");
    assert_eq!(model.requests().len(), 2);
    assert!(model.requests()[1].get("tools").is_none(), "the last round is offered no tools");
}
