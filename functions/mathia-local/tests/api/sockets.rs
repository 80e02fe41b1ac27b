//! Abuse of the socket layer: the local gateway's management API without credentials, a
//! flooding client, a client that stops reading, and sockets outliving their session.

use std::time::Duration;

use futures::StreamExt;
use mathia::{domain::ConnectionId, ports::Frame};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::helpers::{TestApp, WAIT, WsClient, wait_until};

/// The connection id of the user's only socket.
async fn connection_of(t: &TestApp, user: Uuid) -> ConnectionId {
    let mut ids = t.local.app.connections.of_user(user).await.unwrap();
    assert_eq!(ids.len(), 1, "one socket");
    ids.pop().unwrap().id
}

/// Reads until the server closes the socket; its close code (None if it just ended). Fails if
/// the socket stays open for `WAIT`.
pub async fn closed_with(ws: &mut WsClient) -> Option<u16> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, ws.stream.next()).await {
            Err(_) => panic!("the socket is still open after {WAIT:?}"),
            Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(_)) | None) => return None,
        }
    }
}

#[tokio::test]
async fn the_management_api_refuses_unsigned_requests() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "private").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    let id = connection_of(&t, ana.id).await;
    let url = t.url(&format!("/@connections/{}", id.as_str()));

    let forged = json!({"type": "new_message", "room_id": room.id, "message": {"body": "forged"}}).to_string();
    let post = t.http.post(&url).body(forged).send().await.unwrap();
    assert_eq!(post.status(), 403, "an unsigned POST is refused");
    let get = t.http.get(&url).send().await.unwrap();
    assert_eq!(get.status(), 403, "an unsigned GET is refused");
    let delete = t.http.delete(&url).send().await.unwrap();
    assert_eq!(delete.status(), 403, "an unsigned DELETE is refused");
    let signed_by_a_stranger = t
        .http
        .post(&url)
        .header("authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=00")
        .header("x-amz-date", "20260101T000000Z")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(signed_by_a_stranger.status(), 403, "a signature by other credentials is refused");

    // Nothing reached the socket, and it is still open and registered.
    a.expect_nothing_but(&[], Duration::from_millis(300)).await;
    a.assert_alive().await;
    assert!(t.push().holds(&id));
}

#[tokio::test]
async fn signed_management_requests_reach_the_socket() {
    let t = TestApp::spawn_gateway(
        |_| {},
        None,
        |local| {
            local.management = Some(mathia_local::ManagementCredentials {
                access_key_id: "gateway-key".into(),
                secret_access_key: "gateway-secret".into(),
            });
        },
    )
    .await;
    let ana = t.register("Ana").await;
    let (mut a, _) = t.ws_in_room(&ana, t.create_room(&ana, "signed").await.id).await;
    let id = connection_of(&t, ana.id).await;

    let unsigned = t.http.post(t.url(&format!("/@connections/{}", id.as_str()))).body("{}").send().await.unwrap();
    assert_eq!(unsigned.status(), 403);
    let client = |secret: &str| {
        let sdk = aws_config::SdkConfig::builder()
            .region(aws_config::Region::new("us-east-1"))
            .behavior_version(aws_config::BehaviorVersion::latest())
            .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new("gateway-key", secret, None, None, "test"),
            ))
            .endpoint_url(t.base.clone())
            .build();
        aws_sdk_apigatewaymanagement::Client::new(&sdk)
    };
    let post = |secret: &'static str, body: &'static str| {
        let (client, id) = (client(secret), id.as_str().to_owned());
        async move {
            client
                .post_to_connection()
                .connection_id(id)
                .data(aws_sdk_apigatewaymanagement::primitives::Blob::new(body))
                .send()
                .await
        }
    };
    assert!(post("wrong-secret", r#"{"type":"forged"}"#).await.is_err(), "a wrong secret is refused");
    a.expect_nothing_but(&[], Duration::from_millis(200)).await;
    post("gateway-secret", r#"{"type":"pong"}"#).await.expect("the gateway's own credentials are accepted");
    assert_eq!(a.recv().await["type"], "pong");
    client("gateway-secret").delete_connection().connection_id(id.as_str()).send().await.expect("signed DELETE");
    assert_eq!(closed_with(&mut a).await, Some(1000));
}

#[tokio::test]
async fn a_flooding_socket_is_throttled_with_one_error_per_window() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let mut a = t.ws(&ana).await;
    const FRAMES: usize = 3000;
    let started = tokio::time::Instant::now();
    for _ in 0..FRAMES {
        a.send(json!({"action": "ping"})).await;
    }
    let (mut pongs, mut errors) = (0, Vec::new());
    while let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_millis(500), a.stream.next()).await {
        if let Message::Text(text) = msg {
            let ev: Value = serde_json::from_str(text.as_str()).unwrap();
            match ev["type"].as_str() {
                Some("pong") => pongs += 1,
                Some("error") => errors.push(ev),
                _ => panic!("unexpected {ev}"),
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    assert!(pongs < FRAMES, "every one of {FRAMES} frames was served: no throttle");
    assert!(!errors.is_empty(), "frames over the budget are answered with rate_limited");
    assert!(errors.len() as f64 <= seconds + 1.0, "{} errors in {seconds:.1} s: the error floods too", errors.len());
    for e in &errors {
        assert_eq!(e["code"], "rate_limited", "{e}");
        assert!(e["retry_after_ms"].as_u64().is_some_and(|ms| ms > 0 && ms <= 1000), "{e}");
    }
    // The budget refills: the socket is served again.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    a.assert_alive().await;
}

#[tokio::test]
async fn a_socket_whose_outbox_overflows_is_closed_not_left_deaf() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let mut a = t.ws(&ana).await;
    let id = connection_of(&t, ana.id).await;
    // Ana stops reading; frames pile up until her outbox is full.
    let frame = Frame::json(&json!({"type": "pong", "padding": "x".repeat(16 * 1024)}));
    let mut overflowed = false;
    for n in 0..200_000 {
        if t.push().deliver(&id, &frame).is_err() {
            overflowed = true;
            break;
        }
        if n % 64 == 0 {
            tokio::task::yield_now().await;
        }
    }
    assert!(overflowed, "the outbox never filled");
    // The server stopped serving the socket: it must say so by closing it, with a code the
    // client reconnects on, and forget it everywhere.
    assert_eq!(closed_with(&mut a).await, Some(1013), "closed with 1013 (try again later)");
    wait_until("the registry forgets the socket", || async {
        t.local.app.connections.get(&id).await.unwrap().is_none()
    })
    .await;
    assert!(!t.push().holds(&id));
}

#[tokio::test]
async fn logging_out_closes_the_sessions_sockets() {
    let t = TestApp::spawn().await;
    let (ana, bob) = (t.register("Ana").await, t.register("Bob").await);
    let room = t.create_room(&ana, "after-hours").await;
    t.bring_in(&ana, room.id, &bob).await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    let (mut b, _) = t.ws_in_room(&bob, room.id).await;
    // Ana's other session (another browser) keeps its socket.
    let login = t.post(None, "/api/auth/login", json!({"email": ana.email, "password": "correct horse battery"})).await;
    let other_token = login.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned();
    let other_user = crate::helpers::TestUser { token: other_token, ..ana.clone() };
    let (mut other, _) = t.ws_in_room(&other_user, room.id).await;
    let unused_ticket = t.ticket(&ana).await;
    let before = t.message_count().await;

    let out = t.post(Some(&ana.token), "/api/auth/logout", json!({})).await;
    assert_eq!(out.status(), 204);

    assert!(closed_with(&mut a).await.is_some_and(|code| code == 1000 || code == 1008), "Ana's socket closed");
    // A frame on the old socket stores nothing and reaches nobody.
    let _ = futures::SinkExt::send(
        &mut a.stream,
        Message::text(
            json!({"action": "new_message", "room_id": room.id, "body": "ghost", "client_msg_id": "g1"}).to_string(),
        ),
    )
    .await;
    b.none_of_before_pong(&["new_message"]).await;
    assert_eq!(t.message_count().await, before, "the old socket stored nothing");
    // A ticket fetched before the logout no longer opens a socket.
    assert!(
        tokio_tungstenite::connect_async(t.ws_url(&unused_ticket)).await.is_err(),
        "the session's ticket is refused"
    );
    // The other session is untouched.
    other.assert_alive().await;
    other.send(json!({"action": "new_message", "room_id": room.id, "body": "still here", "client_msg_id": "s1"})).await;
    other.recv_type("ack").await;
}
