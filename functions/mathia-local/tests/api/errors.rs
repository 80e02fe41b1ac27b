//! Every bad input of the protocol gets its code, changes nothing, and leaves the socket open.

use serde_json::{Value, json};

use crate::helpers::TestApp;

#[tokio::test]
async fn every_bad_frame_gets_its_code_stores_nothing_and_keeps_the_socket_open() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let eve = t.register("Eve").await;
    let room = t.create_room(&ana, "general").await;
    let elsewhere = t.create_room(&eve, "eve's room").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;

    let msg = |body: Value| json!({"action": "new_message", "room_id": room.id, "body": body, "client_msg_id": "c1"});
    let cases: Vec<(String, &str, Option<&str>)> = vec![
        ("not json at all".into(), "bad_request", None),
        ("[1, 2, 3]".into(), "bad_request", None),
        (r#"{"room_id": "x"}"#.into(), "bad_request", None),
        (json!({"action": 42}).to_string(), "bad_request", None),
        (json!({"action": "fly_to_the_moon"}).to_string(), "unknown_action", None),
        (
            json!({"action": "new_message", "room_id": room.id, "client_msg_id": "c1"}).to_string(),
            "bad_request",
            Some("c1"),
        ),
        (
            json!({"action": "new_message", "room_id": "not-a-uuid", "body": "hi", "client_msg_id": "c1"}).to_string(),
            "bad_request",
            Some("c1"),
        ),
        (msg(json!(12)).to_string(), "bad_request", Some("c1")),
        (
            json!({"action": "new_message", "room_id": room.id, "body": "hi", "client_msg_id": 7}).to_string(),
            "bad_request",
            None,
        ),
        (json!({"action": "join_room"}).to_string(), "bad_request", None),
        (json!({"action": "typing", "room_id": room.id, "typing": "yes"}).to_string(), "bad_request", None),
        (msg(json!("")).to_string(), "bad_request", Some("c1")),
        (msg(json!("a NUL \u{0} inside")).to_string(), "bad_request", Some("c1")),
        (msg(json!("   \n\t ")).to_string(), "bad_request", Some("c1")),
        (msg(json!("x".repeat(4001))).to_string(), "bad_request", Some("c1")),
        (msg(json!("y".repeat(33 * 1024))).to_string(), "too_large", None),
        (
            json!({"action": "new_message", "room_id": elsewhere.id, "body": "let me in", "client_msg_id": "c2"})
                .to_string(),
            "not_member",
            Some("c2"),
        ),
        (json!({"action": "join_room", "room_id": elsewhere.id}).to_string(), "not_member", None),
        (json!({"action": "typing", "room_id": elsewhere.id, "typing": true}).to_string(), "not_member", None),
    ];
    for (frame, code, reference) in cases {
        a.send_raw(frame.clone()).await;
        let err = a.recv_type("error").await;
        let shown = &frame[..frame.len().min(80)];
        assert_eq!(err["code"], code, "{shown}: {err}");
        assert!(err["message"].as_str().is_some_and(|m| !m.is_empty()), "{shown}");
        match reference {
            Some(r) => assert_eq!(err["ref"], r, "{shown}"),
            None => assert!(err.get("ref").is_none(), "{shown}: {err}"),
        }
        a.assert_alive().await;
    }
    // A binary frame too.
    use futures::SinkExt;
    a.stream.send(tokio_tungstenite::tungstenite::Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(a.recv_type("error").await["code"], "bad_request");
    a.assert_alive().await;

    assert_eq!(t.message_count().await, 0, "nothing was stored");
    // A body of exactly 4,000 characters is fine.
    a.send(msg(json!("é".repeat(4000)))).await;
    assert_eq!(a.recv_type("ack").await["client_msg_id"], "c1");
    assert_eq!(t.message_count().await, 1);
}

#[tokio::test]
async fn the_31st_message_within_a_minute_is_rate_limited() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "general").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    for i in 0..30 {
        a.send(json!({"action": "new_message", "room_id": room.id, "body": format!("m{i}"), "client_msg_id": format!("c{i}")})).await;
        a.recv_type("ack").await;
    }
    a.send(json!({"action": "new_message", "room_id": room.id, "body": "one too many", "client_msg_id": "c30"})).await;
    let err = a.recv_type("error").await;
    assert_eq!(err["code"], "rate_limited");
    assert_eq!(err["ref"], "c30");
    let retry = err["retry_after_ms"].as_u64().expect("retry_after_ms");
    assert!(retry > 0 && retry <= 60_000, "{retry}");
    a.assert_alive().await;
    assert_eq!(t.message_count().await, 30);

    // The limit is per user: someone else in the room can still talk.
    let ben = t.register("Ben").await;
    t.bring_in(&ana, room.id, &ben).await;
    let (mut b, _) = t.ws_in_room(&ben, room.id).await;
    b.send(json!({"action": "new_message", "room_id": room.id, "body": "hi", "client_msg_id": "b1"})).await;
    b.recv_type("ack").await;
}

#[tokio::test]
async fn http_errors_have_the_protocol_shape() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let cases = [
        (t.post(None, "/api/rooms", json!({"name": "x"})).await, 401, "unauthorized"),
        (t.post(Some("not-a-token"), "/api/rooms", json!({"name": "x"})).await, 401, "invalid_token"),
        (t.post(Some(&ana.token), "/api/rooms", json!({"name": ""})).await, 400, "bad_request"),
        (t.post(Some(&ana.token), "/api/rooms", json!({"name": "n".repeat(81)})).await, 400, "bad_request"),
        (t.post(Some(&ana.token), "/api/rooms", json!({"nom": "x"})).await, 400, "bad_request"),
        (t.get(Some(&ana.token), "/api/rooms/not-a-uuid/messages").await, 400, "bad_request"),
        (
            t.get(Some(&ana.token), &format!("/api/rooms/{}/messages", uuid::Uuid::new_v4())).await,
            404,
            "room_not_found",
        ),
        (t.get(Some(&ana.token), "/api/no-such-thing").await, 404, "not_found"),
        (
            t.http
                .post(t.url("/api/rooms"))
                .bearer_auth(&ana.token)
                .body("{not json")
                .header("content-type", "application/json")
                .send()
                .await
                .unwrap(),
            400,
            "bad_request",
        ),
    ];
    for (res, status, code) in cases {
        assert_eq!(res.status(), status);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(body["error"]["message"].is_string());
    }
    let rooms: Value = t.get(Some(&ana.token), "/api/rooms").await.json().await.unwrap();
    let names: Vec<_> = rooms.as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["general"], "no bad request created a room (general comes with the workspace)");
}

#[tokio::test]
async fn text_with_nul_characters_is_refused_over_http_and_changes_nothing() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let res = t.post(Some(&ana.token), "/api/rooms", json!({"name": "bad\u{0}name"})).await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request");
    assert!(body["error"]["message"].as_str().unwrap().contains("NUL"));
    let res = t
        .post(
            None,
            "/api/auth/register",
            json!({"email": "nul\u{0}@example.com", "password": "correct horse battery", "display_name": "Nul"}),
        )
        .await;
    assert_eq!(res.status(), 400);
    let rooms: i64 =
        sqlx::query_scalar("SELECT count(*) FROM rooms WHERE name LIKE 'bad%'").fetch_one(&t.db().await).await.unwrap();
    assert_eq!(rooms, 0);
}
