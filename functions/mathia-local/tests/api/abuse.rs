//! One member floods every action the protocol has while another talks: a third member still
//! hears every message of the one who talks, none lost, in order.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::helpers::{TestApp, WAIT};

const FLOOD: Duration = Duration::from_secs(3);
const SPOKEN: usize = 20;

#[tokio::test]
async fn a_flood_of_every_action_does_not_cost_a_room_mate_a_message() {
    let t = TestApp::spawn().await;
    let (ana, flo, rex) = (t.register("Ana").await, t.register("Flo").await, t.register("Rex").await);
    let room = t.create_room(&ana, "busy").await;
    t.bring_in(&ana, room.id, &flo).await;
    t.bring_in(&ana, room.id, &rex).await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    let (mut r, _) = t.ws_in_room(&rex, room.id).await;
    let (mut f, _) = t.ws_in_room(&flo, room.id).await;
    // Something to edit and react to.
    f.send(json!({"action": "new_message", "room_id": room.id, "body": "first", "client_msg_id": "f0"})).await;
    let own = f.recv_type("ack").await["message_id"].as_str().unwrap().to_owned();

    let (mut flood_tx, mut flood_rx) = f.stream.split();
    // Flo's socket is read throughout, as a client would; what it hears does not matter.
    let drain = tokio::spawn(async move { while let Some(Ok(_)) = flood_rx.next().await {} });
    let frames = move |n: usize| -> Message {
        let other = Uuid::new_v4();
        let frame = match n % 14 {
            0 => {
                json!({"action": "new_message", "room_id": room.id, "body": format!("flood {n}"), "client_msg_id": format!("f{n}")})
            }
            1 => json!({"action": "edit_message", "room_id": room.id, "message_id": own, "body": format!("edit {n}")}),
            2 => json!({"action": "delete_message", "room_id": room.id, "message_id": other}),
            3 => json!({"action": "react", "room_id": room.id, "message_id": own, "emoji": "👍", "on": n % 28 == 3}),
            4 => json!({"action": "typing", "room_id": room.id, "typing": false}),
            5 => json!({"action": "typing", "room_id": room.id, "typing": true}),
            6 => json!({"action": "leave_room", "room_id": room.id}),
            7 => json!({"action": "join_room", "room_id": room.id}),
            8 => json!({"action": "ping"}),
            9 => json!({"action": "stop_ai", "room_id": room.id, "stream_id": other}),
            10 => json!({"action": "join_room", "room_id": other}),
            11 => json!({"action": "no_such_action"}),
            12 => return Message::text("{not json"),
            _ => return Message::binary(vec![0u8, 1, 2]),
        };
        Message::text(frame.to_string())
    };
    let flood = tokio::spawn(async move {
        let (started, mut n) = (tokio::time::Instant::now(), 0usize);
        while started.elapsed() < FLOOD {
            if flood_tx.send(frames(n)).await.is_err() {
                break;
            }
            n += 1;
        }
        n
    });

    // Meanwhile Ana talks at a human pace.
    let mut sent = Vec::new();
    for i in 0..SPOKEN {
        let id = format!("ana-{i}");
        a.send(json!({"action": "new_message", "room_id": room.id, "body": format!("said {i}"), "client_msg_id": id}))
            .await;
        sent.push(id);
        tokio::time::sleep(FLOOD / SPOKEN as u32).await;
    }
    let flooded = flood.await.unwrap();
    assert!(flooded > 1000, "the flood sent only {flooded} frames");

    // Rex heard each of Ana's messages once, in order, with consecutive seqs among hers.
    let mut heard = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while heard.len() < SPOKEN {
        let ev: Value = tokio::time::timeout_at(deadline, r.recv())
            .await
            .unwrap_or_else(|_| panic!("Rex heard {} of Ana's {SPOKEN} messages", heard.len()));
        if ev["type"] == "new_message" && ev["message"]["author"]["id"] == json!(ana.id) {
            heard.push(ev["message"]["client_msg_id"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(heard, sent, "in the order Ana sent them");
    r.assert_alive().await;
    a.assert_alive().await;
    drain.abort();
}
