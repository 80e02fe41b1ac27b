//! Random frames over a real socket: whatever a client sends, the connection stays open, every
//! frame is answered in order (a `ping` after each one gets its `pong`), nothing is stored for a
//! frame that got an error, and a member's room is never touched by a non-member's frames.

use proptest::{
    prelude::*,
    strategy::{Strategy, ValueTree},
    test_runner::{Config, RngAlgorithm, TestRng, TestRunner},
};
use serde_json::{Map, Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{TestApp, WAIT};

/// Frames per run; `FUZZ_CASES` raises it for a longer hunt.
fn cases() -> usize {
    std::env::var("FUZZ_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(300)
}

/// `rooms[0]` is the member's own room.
fn frame_strategy(rooms: Vec<String>) -> impl Strategy<Value = String> {
    let rooms_own = rooms[0].clone();
    let text = prop_oneof![
        6 => ".{1,30}".prop_map(Value::String),
        1 => Just(Value::String(String::new())),
        1 => Just(Value::String("x".repeat(4001))),
        1 => any::<i64>().prop_map(Value::from),
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => Just(json!({"nested": [1, 2]})),
    ];
    let id = prop_oneof![
        3 => prop::sample::select(rooms).prop_map(Value::String),
        1 => Just(Value::String(uuid::Uuid::new_v4().to_string())),
        1 => text.clone(),
    ];
    // Every action but `ping` (its `pong` would end the next frame's answers early),
    // `new_message` four times as often, and one that does not exist.
    let mut actions: Vec<&str> = mathia::protocol::ACTIONS.iter().copied().filter(|a| *a != "ping").collect();
    actions.extend(["new_message", "new_message", "new_message", "fly"]);
    let action = prop::sample::select(actions);
    let shaped = (
        action,
        id.clone(),
        prop::option::weighted(0.9, text.clone()),
        prop::option::weighted(0.9, text.clone()),
        prop::option::of(id.clone()),
        prop::option::of(text),
    )
        .prop_map(|(action, room_id, body, client_msg_id, message_id, emoji)| {
            let mut frame = Map::new();
            frame.insert("action".into(), action.into());
            frame.insert("room_id".into(), room_id);
            for (key, value) in
                [("body", body), ("client_msg_id", client_msg_id), ("message_id", message_id), ("emoji", emoji)]
            {
                if let Some(value) = value {
                    frame.insert(key.into(), value);
                }
            }
            Value::Object(frame).to_string()
        });
    // Well-formed messages to the member's own room, so the storing path is exercised too.
    let own = rooms_own.clone();
    let message =
        ("[a-zA-Z0-9 .,!?\u{e9}\u{df}\u{65e5}\u{1F642}]{1,40}", "[a-z0-9-]{1,16}").prop_map(move |(body, cmid)| {
            json!({"action": "new_message", "room_id": own, "body": body, "client_msg_id": cmid}).to_string()
        });
    prop_oneof![
        4 => shaped,
        1 => message,
        1 => ".{0,200}",
        1 => Just("{}".to_owned()),
        1 => Just("[]".to_owned())
    ]
}

#[tokio::test]
async fn random_frames_never_close_the_socket_and_only_acknowledged_messages_are_stored() {
    // Frames as fast as the server answers them: this is about parsing, not pacing, so the
    // per-socket frame budget (sockets.rs tests it) is out of the way.
    let t = TestApp::spawn_gateway(|_| {}, None, |local| local.frame_budget = (u32::MAX, u32::MAX)).await;
    let ana = t.register("Ana").await;
    let eve = t.register("Eve").await;
    let own = t.create_room(&ana, "general").await;
    let theirs = t.create_room(&eve, "private").await;
    let (mut a, _) = t.ws_in_room(&ana, own.id).await;

    let strategy = frame_strategy(vec![own.id.to_string(), theirs.id.to_string()]);
    // A fixed seed, so CI sees the same frames every run and a failure names a frame that
    // reproduces; `FUZZ_RANDOM=1` draws fresh ones.
    let cases = cases();
    let config = Config { cases: cases as u32, ..Config::default() };
    let mut runner = if std::env::var_os("FUZZ_RANDOM").is_some() {
        TestRunner::new(config)
    } else {
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha))
    };
    let mut refused = 0usize;
    let mut acked = std::collections::HashSet::new();
    for case in 0..cases {
        let frame = strategy.new_tree(&mut runner).expect("a frame").current();
        a.send_raw(frame.clone()).await;
        a.send(json!({"action": "ping"})).await;
        // Everything up to the pong answers the frame; the socket must still be open.
        let mut answers = Vec::new();
        loop {
            let msg = tokio::time::timeout(WAIT, futures::StreamExt::next(&mut a.stream))
                .await
                .unwrap_or_else(|_| panic!("case {case}: no pong after {frame:.120}"))
                .unwrap_or_else(|| panic!("case {case}: socket closed after {frame:.120}"))
                .expect("socket ok");
            let Message::Text(text) = msg else {
                assert!(!matches!(msg, Message::Close(_)), "case {case}: closed after {frame:.120}");
                continue;
            };
            let event: Value = serde_json::from_str(text.as_str()).expect("events are JSON");
            if event["type"] == "pong" {
                break;
            }
            answers.push(event);
        }
        for event in &answers {
            if event["type"] == "error" {
                refused += 1;
                assert!(event["message"].as_str().is_some_and(|m| !m.is_empty()), "case {case}: {event}");
                assert_ne!(event["code"], "internal", "case {case}: {frame:.120} → {event}");
            }
            if event["type"] == "ack" {
                acked.insert(event["message_id"].as_str().expect("acks name the message").to_owned());
            }
        }
    }
    assert!(
        !acked.is_empty() && refused > cases / 2,
        "both paths were exercised: {} acks, {refused} errors",
        acked.len()
    );
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM messages WHERE room_id = $1 AND author_id = $2")
        .bind(own.id)
        .bind(ana.id)
        .fetch_one(&t.db().await)
        .await
        .unwrap();
    assert_eq!(stored as usize, acked.len(), "every stored message was acknowledged, and only those");
    assert_eq!(
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM messages WHERE room_id = $1")
            .bind(theirs.id)
            .fetch_one(&t.db().await)
            .await
            .unwrap(),
        0,
        "a non-member's frames never reach another room"
    );
}
