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

/// Frames as they cross the wire, read without a WebSocket client that would join them.
mod wire {
    use std::io::Cursor;

    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpStream,
    };
    use tokio_tungstenite::tungstenite::protocol::frame::{
        FrameHeader,
        coding::{Data, OpCode},
    };

    /// The key and accept value of RFC 6455's own example handshake (§1.3).
    pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
    pub const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    pub struct Raw {
        pub stream: TcpStream,
        buf: Vec<u8>,
    }

    impl Raw {
        /// Opens `/ws` by hand; the server's handshake response head.
        pub async fn open(addr: std::net::SocketAddr, ticket: &str) -> (Self, String) {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            let request = format!(
                "GET /ws?ticket={ticket} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
                 Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            );
            stream.write_all(request.as_bytes()).await.unwrap();
            let mut buf = Vec::new();
            let head_end = loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                let mut chunk = [0u8; 1024];
                let n = tokio::time::timeout(crate::helpers::WAIT, stream.read(&mut chunk)).await.unwrap().unwrap();
                assert!(n > 0, "closed during the handshake");
                buf.extend_from_slice(&chunk[..n]);
            };
            let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
            buf.drain(..head_end);
            (Self { stream, buf }, head)
        }

        /// Sends one text frame, masked as a client must.
        pub async fn send_text(&mut self, text: &str) {
            let header = FrameHeader {
                opcode: OpCode::Data(Data::Text),
                mask: Some([0x37, 0xfa, 0x21, 0x3d]),
                ..FrameHeader::default()
            };
            let mut out = Vec::new();
            header.format(text.len() as u64, &mut out).unwrap();
            out.extend(text.bytes().enumerate().map(|(i, b)| b ^ [0x37, 0xfa, 0x21, 0x3d][i % 4]));
            self.stream.write_all(&out).await.unwrap();
        }

        /// The next frame's header and payload.
        pub async fn frame(&mut self) -> (FrameHeader, Vec<u8>) {
            loop {
                let mut cursor = Cursor::new(&self.buf);
                if let Some((header, len)) = FrameHeader::parse(&mut cursor).unwrap() {
                    let start = cursor.position() as usize;
                    let end = start + len as usize;
                    if self.buf.len() >= end {
                        assert!(header.mask.is_none(), "a server's frames are not masked");
                        let payload = self.buf[start..end].to_vec();
                        self.buf.drain(..end);
                        return (header, payload);
                    }
                }
                let mut chunk = [0u8; 4096];
                let n =
                    tokio::time::timeout(crate::helpers::WAIT, self.stream.read(&mut chunk)).await.unwrap().unwrap();
                assert!(n > 0, "the server closed the connection");
                self.buf.extend_from_slice(&chunk[..n]);
            }
        }
    }
}

#[tokio::test]
async fn a_long_event_goes_out_as_continuation_frames_cut_between_characters() {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "long").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    // Two-byte characters after one ASCII byte: a cut every 1,024 bytes would split one.
    let bodies: Vec<String> = (0..8).map(|i| format!("{i}{}", "é".repeat(300))).collect();
    for (i, body) in bodies.iter().enumerate() {
        a.send(json!({"action": "new_message", "room_id": room.id, "body": body, "client_msg_id": format!("c{i}")}))
            .await;
    }
    wait_until("all eight stored", || async { t.message_count().await == 8 }).await;

    let (mut raw, head) = wire::Raw::open(t.addr, &t.ticket(&ana).await).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains(&format!("sec-websocket-accept: {}", wire::ACCEPT).to_ascii_lowercase()),
        "{head}"
    );
    raw.send_text(&json!({"action": "join_room", "room_id": room.id}).to_string()).await;

    // Other events may come first; each is read whole from its frames.
    let (frames, joined) = loop {
        let mut frames = Vec::new();
        let mut text = Vec::new();
        loop {
            let (header, payload) = raw.frame().await;
            let expected = if frames.is_empty() { OpCode::Data(Data::Text) } else { OpCode::Data(Data::Continue) };
            assert_eq!(header.opcode, expected, "frame {} of an event", frames.len());
            text.extend_from_slice(&payload);
            let last = header.is_final;
            frames.push(payload);
            if last {
                break;
            }
        }
        let event: Value = serde_json::from_slice(&text).unwrap();
        if event["type"] == "room_joined" {
            break (frames, event);
        }
    };
    let got: Vec<&str> = joined["messages"].as_array().unwrap().iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(got, bodies.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(frames.len() >= 5, "{} frames", frames.len());
    for (i, payload) in frames.iter().enumerate() {
        assert!(payload.len() <= 1024 && !payload.is_empty(), "frame {i}: {} bytes", payload.len());
        assert!(std::str::from_utf8(payload).is_ok(), "frame {i} holds whole characters");
    }

    // A WebSocket client reads the same event whole.
    let (_, whole) = t.ws_in_room(&ana, room.id).await;
    assert_eq!(whole["messages"], joined["messages"]);
}

#[tokio::test]
async fn a_request_that_is_not_a_websocket_upgrade_is_refused_and_serves_nothing() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let ticket = t.ticket(&ana).await;
    let http = reqwest::Client::new();
    let url = format!("http://{}/ws?ticket={ticket}", t.addr);
    // A plain GET, a POST, and an upgrade of the wrong version: none of them spends the ticket.
    assert_eq!(http.get(&url).send().await.unwrap().status(), 400);
    assert_eq!(http.post(&url).send().await.unwrap().status(), 405);
    let wrong_version = http
        .get(&url)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-key", wire::KEY)
        .header("sec-websocket-version", "8")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_version.status(), 400);
    assert_eq!(t.local.app.connections.of_user(ana.id).await.unwrap().len(), 0, "no connection was made");
    let (_, head) = wire::Raw::open(t.addr, &ticket).await;
    assert!(head.starts_with("HTTP/1.1 101"), "the ticket is still good: {head}");
}

#[tokio::test]
async fn a_transport_ping_is_answered_with_its_pong_and_the_socket_stays_usable() {
    use futures::SinkExt;

    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "pings").await;
    let (mut a, _) = t.ws_in_room(&ana, room.id).await;
    a.stream.send(Message::Ping(b"are you there".to_vec().into())).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, a.stream.next()).await {
            Ok(Some(Ok(Message::Pong(payload)))) => {
                assert_eq!(&payload[..], b"are you there");
                break;
            }
            Ok(Some(Ok(_))) => continue,
            other => panic!("no pong: {other:?}"),
        }
    }
    a.send(json!({"action": "new_message", "room_id": room.id, "body": "after the ping", "client_msg_id": "p"})).await;
    assert_eq!(a.recv_type("ack").await["client_msg_id"], "p");
}

/// The status and body of a refused ticket request.
async fn ticket_refusal(t: &crate::helpers::Api, token: &str) -> (u16, Value, Option<String>) {
    let res = t.post(Some(token), "/api/ws-ticket", json!({})).await;
    let status = res.status().as_u16();
    let retry = res.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    (status, res.json().await.unwrap(), retry)
}

/// One person's sockets are bounded (`MATHIA_SOCKETS_PER_PERSON`), or one person could open
/// sockets until nobody else can connect. Tickets fetched beforehand are refused at the handshake
/// (429) past the bound; once there, the ticket endpoint says why (429 `too_many_sockets`). The
/// person's open sockets go on working, another person connects and chats, and closing a socket
/// or logging out makes room again. A logged-out session gets no ticket at all.
#[tokio::test]
async fn one_persons_sockets_are_bounded_and_everyone_else_still_connects() {
    let t = TestApp::spawn_with(|c| c.sockets_per_person = 3).await;
    let (ana, bob) = (t.register("Ana").await, t.register("Bob").await);
    let room = t.create_room(&ana, "bounded").await;
    t.bring_in(&ana, room.id, &bob).await;
    let (mut open, statuses) = t.open_with_tickets(&ana, 5).await;
    assert_eq!(statuses, [101, 101, 101, 429, 429]);
    assert_eq!(t.local.app.connections.of_user(ana.id).await.unwrap().len(), 3, "the refused were not kept");
    let (status, body, retry) = ticket_refusal(&t, &ana.token).await;
    assert_eq!((status, body["error"]["code"].as_str()), (429, Some("too_many_sockets")), "{body}");
    assert!(retry.is_some(), "the refusal says when to try again");

    // Ana's sockets work; Bob connects and hears her.
    let (mut b, _) = t.ws_in_room(&bob, room.id).await;
    open[0].send(json!({"action": "join_room", "room_id": room.id})).await;
    open[0].recv_type("room_joined").await;
    open[0]
        .send(json!({"action": "new_message", "room_id": room.id, "body": "still here", "client_msg_id": "m1"}))
        .await;
    open[0].recv_type("ack").await;
    assert_eq!(b.recv_type("new_message").await["message"]["body"], "still here");

    // Closing one makes room for one.
    open.pop().unwrap().close().await;
    wait_until("the closed socket is forgotten", || async {
        t.local.app.connections.of_user(ana.id).await.unwrap().len() == 2
    })
    .await;
    let ticket = t.ticket(&ana).await;
    let mut again = t.open(&ticket).await.expect("room for one more");
    again.assert_alive().await;

    // Logging out closes the session's sockets, and the session gets no more tickets.
    assert_eq!(t.post(Some(&ana.token), "/api/auth/logout", json!({})).await.status(), 204);
    assert!(closed_with(&mut again).await.is_some());
    let (status, _, _) = ticket_refusal(&t, &ana.token).await;
    assert_eq!(status, 401);
    b.assert_alive().await;
}

/// Many handshakes of one person at once: never more than the bound get through (each is
/// counted once registered), the refused leave nothing behind, and another person's socket is
/// opened and served meanwhile.
#[tokio::test]
async fn a_flood_of_handshakes_never_opens_more_than_the_bound() {
    let t = TestApp::spawn_with(|c| c.sockets_per_person = 4).await;
    let (ana, bob) = (t.register("Ana").await, t.register("Bob").await);
    let mut tickets = Vec::new();
    for _ in 0..60 {
        tickets.push(t.ticket(&ana).await);
    }
    let api = std::sync::Arc::new(t.api.clone());
    let flood: Vec<_> = tickets
        .into_iter()
        .map(|ticket| {
            let api = api.clone();
            tokio::spawn(async move { api.open(&ticket).await })
        })
        .collect();
    let mut b = t.ws(&bob).await;
    b.assert_alive().await;
    let mut open = Vec::new();
    for f in flood {
        match f.await.unwrap() {
            Ok(ws) => open.push(ws),
            Err(status) => assert_eq!(status, 429),
        }
    }
    assert!((1..=4).contains(&open.len()), "{} of 60 opened", open.len());
    assert_eq!(t.local.app.connections.of_user(ana.id).await.unwrap().len(), open.len());
    for ws in &mut open {
        ws.assert_alive().await;
    }
    b.assert_alive().await;
}

/// What a raw HTTP connection heard after asking `/healthz`.
#[derive(Debug, PartialEq)]
enum Heard {
    /// Answered 200 (and, kept alive, held by the server).
    Ok,
    /// Closed (or reset) without an answer.
    Closed,
    /// Nothing within the wait: not accepted yet.
    Nothing,
}

/// A connection of its own from `ip` that asked `/healthz` (keep-alive).
async fn ask_from(t: &TestApp, ip: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{ip}:0").parse().unwrap()).unwrap();
    let mut tcp = socket.connect(t.addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nhost: mathia\r\n\r\n").await.unwrap();
    tcp
}

/// What `tcp` hears within `wait`.
async fn heard(tcp: &mut tokio::net::TcpStream, wait: Duration) -> Heard {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0; 4096];
    match tokio::time::timeout(wait, tcp.read(&mut buf)).await {
        Ok(Ok(n)) if n > 0 => {
            let answer = String::from_utf8_lossy(&buf[..n]);
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
            Heard::Ok
        }
        Ok(_) => Heard::Closed,
        Err(_) => Heard::Nothing,
    }
}

/// Kept-alive connections, each answered within `wait`, until one is not: that one waits at the
/// bound. Returns the answered ones and the waiting one.
async fn fill_to_the_bound(
    t: &TestApp,
    bound: usize,
    wait: Duration,
) -> (Vec<tokio::net::TcpStream>, tokio::net::TcpStream) {
    let mut held = Vec::new();
    loop {
        let mut tcp = ask_from(t, "127.0.0.1").await;
        match heard(&mut tcp, wait).await {
            Heard::Ok => held.push(tcp),
            Heard::Nothing => return (held, tcp),
            Heard::Closed => panic!("the server closed a connection it had not served"),
        }
        assert!(held.len() < bound, "the bound holds");
    }
}

/// Past `MATHIA_MAX_CONNECTIONS` the server accepts no more connections until one closes, so
/// a connection flood cannot take the descriptors its own Postgres and Redis connections need:
/// the newcomer waits, the chat already open goes on, and a closing connection lets it in.
#[tokio::test]
async fn past_the_connection_bound_newcomers_wait_and_open_chat_goes_on() {
    const BOUND: usize = 8;
    let t = TestApp::spawn_with(|c| c.max_connections = Some(BOUND)).await;
    let (ana, ben, room) = t.ana_and_ben().await;
    let (mut a, _) = t.ws_in_room(&ana, room).await;
    let (mut b, _) = t.ws_in_room(&ben, room).await;

    let (mut held, mut waiting) = fill_to_the_bound(&t, BOUND, Duration::from_millis(500)).await;
    // Besides the test's own HTTP client (one connection or more) and the two sockets.
    assert!(!held.is_empty() && held.len() <= BOUND - 3, "{} held", held.len());

    // The open chat goes on.
    a.send(json!({"action": "new_message", "room_id": room, "body": "still here", "client_msg_id": "c1"})).await;
    assert_eq!(a.recv_type("ack").await["client_msg_id"], "c1");
    assert_eq!(b.recv_type("new_message").await["message"]["body"], "still here");

    // One connection closes: the newcomer is let in and answered.
    drop(held.pop());
    assert_eq!(heard(&mut waiting, WAIT).await, Heard::Ok, "the waiting connection is served once one closes");
}

/// One address holds at most `MATHIA_CONNECTIONS_PER_ADDRESS` connections, so one script cannot
/// fill the process's bound alone: its next connection is closed at once, another address is
/// served, and a connection the first address closes makes room for one more of its own.
#[tokio::test]
async fn one_address_holds_at_most_its_share_of_connections() {
    const SHARE: usize = 6;
    let t = TestApp::spawn_with(|c| c.connections_per_address = SHARE).await;
    // Keep-alive connections until one is closed unanswered.
    let mut held = Vec::new();
    loop {
        let mut tcp = ask_from(&t, "127.0.0.1").await;
        match heard(&mut tcp, WAIT).await {
            Heard::Ok => held.push(tcp),
            Heard::Closed => break,
            Heard::Nothing => panic!("a connection past the share is closed at once, not kept waiting"),
        }
        assert!(held.len() <= SHARE, "the share holds");
    }
    // The test's own HTTP client holds none here (it has not asked anything yet).
    assert_eq!(held.len(), SHARE);

    let mut other = ask_from(&t, "127.0.0.2").await;
    assert_eq!(heard(&mut other, WAIT).await, Heard::Ok, "another address is served");

    // One of the first address's connections closes: it may open one more, once the server has
    // seen it go.
    drop(held.pop());
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut tcp = ask_from(&t, "127.0.0.1").await;
        match heard(&mut tcp, WAIT).await {
            Heard::Ok => break,
            _ if tokio::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(20)).await,
            other => panic!("no room for one more once one closed: {other:?}"),
        }
    }
}

/// A connection that says nothing cannot keep its place under the bound: an HTTP connection
/// that sends no request head within `MATHIA_HEADER_TIMEOUT_S` of its start or of its previous
/// response is closed, and so is a socket that passes no byte either way for
/// `MATHIA_IDLE_TIMEOUT_S`; a newcomer waiting at the bound takes their place. A socket that
/// talks, and one that only hears its room, stay open past the deadline.
#[tokio::test]
async fn silent_connections_are_closed_and_newcomers_take_their_places() {
    const BOUND: usize = 12;
    const HEADER: Duration = Duration::from_secs(1);
    const IDLE: Duration = Duration::from_secs(2);
    let t = TestApp::spawn_with(|c| {
        c.max_connections = Some(BOUND);
        c.header_timeout = HEADER;
        c.idle_timeout = IDLE;
    })
    .await;
    let start = tokio::time::Instant::now();
    let (ana, ben, room) = t.ana_and_ben().await;
    let cleo = t.register("cleo").await;
    let (mut a, _) = t.ws_in_room(&ana, room).await;
    let (mut b, _) = t.ws_in_room(&ben, room).await;
    let mut c = t.ws(&cleo).await; // in no room: hears nothing, says nothing

    // Ana talks in the room until told to stop; Ben only listens.
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let talker = tokio::spawn(async move {
        for i in 0.. {
            a.send(json!({"action": "new_message", "room_id": room, "body": format!("still here {i}"), "client_msg_id": format!("c{i}")})).await;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(400)) => {}
                _ = &mut stopped => break,
            }
        }
        a
    });

    // A connection that never speaks.
    let silent_since = tokio::time::Instant::now();
    let mut silent = tokio::net::TcpStream::connect(t.addr).await.unwrap();
    assert_eq!(heard(&mut silent, Duration::from_millis(300)).await, Heard::Nothing);

    let (held, mut waiting) = fill_to_the_bound(&t, BOUND, Duration::from_millis(200)).await;
    assert!(!held.is_empty(), "the bound was reached by kept-alive connections");

    assert_eq!(heard(&mut silent, WAIT).await, Heard::Closed, "a connection that never asks is closed");
    assert!(silent_since.elapsed() >= HEADER, "not before its deadline");
    assert_eq!(heard(&mut waiting, WAIT).await, Heard::Ok, "the newcomer is served once silent ones close");
    for mut tcp in held {
        assert_eq!(
            heard(&mut tcp, WAIT).await,
            Heard::Closed,
            "a kept-alive connection that asks nothing more is closed"
        );
    }

    // Cleo's silent socket ends, and she is gone from the registry.
    match tokio::time::timeout(WAIT, c.stream.next()).await.expect("the silent socket ends within the wait") {
        None | Some(Err(_)) | Some(Ok(Message::Close(_))) => {}
        Some(Ok(other)) => panic!("a silent socket heard {other:?}"),
    }
    let registry = t.local.app.connections.clone();
    wait_until("the silent socket is unregistered", || {
        let registry = registry.clone();
        async move { registry.of_user(cleo.id).await.unwrap().is_empty() }
    })
    .await;

    // Ana's and Ben's sockets outlived the deadline twice over: talking, and hearing, keep them.
    tokio::time::sleep_until(start + IDLE * 2 + Duration::from_millis(500)).await;
    stop.send(()).unwrap();
    let mut a = talker.await.unwrap();
    assert_eq!(b.recv_type("new_message").await["message"]["room_id"], json!(room));
    a.assert_alive().await;
    b.assert_alive().await;
}

/// A request head trickled a byte at a time is never silent, so only its own deadline can end
/// it: cut at `MATHIA_HEADER_TIMEOUT_S`, however long the idle deadline, while an honest request
/// on another connection is served.
#[tokio::test]
async fn a_request_head_trickled_a_byte_at_a_time_is_cut_at_its_deadline() {
    use tokio::io::AsyncWriteExt;
    const HEADER: Duration = Duration::from_secs(1);
    let t = TestApp::spawn_with(|c| {
        c.header_timeout = HEADER;
        c.idle_timeout = Duration::from_secs(3600);
    })
    .await;
    let started = tokio::time::Instant::now();
    let mut slow = tokio::net::TcpStream::connect(t.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: mathia\r\nx-slow: ").await.unwrap();
    let mut sent = 0;
    let ended = loop {
        if slow.write_all(b"a").await.is_err() {
            break Heard::Closed;
        }
        sent += 1;
        match heard(&mut slow, Duration::from_millis(100)).await {
            Heard::Nothing => assert!(started.elapsed() < WAIT, "the trickle went on past the wait"),
            other => break other,
        }
    };
    assert_eq!(ended, Heard::Closed, "the trickled head is cut, not answered");
    assert!(started.elapsed() >= HEADER && sent >= 5, "not before its deadline ({sent} bytes sent)");
    let mut honest = ask_from(&t, "127.0.0.1").await;
    assert_eq!(heard(&mut honest, WAIT).await, Heard::Ok);
}

/// A request body trickled a byte at a time is never silent either: once
/// `MATHIA_HEADER_TIMEOUT_S` has passed since its head, a body that came slower on average than
/// `MIN_BODY_RATE` is cut with 408 `request_timeout`, on a JSON endpoint and on an upload alike,
/// and its connection closed. A body that takes longer than that but keeps the pace is read
/// whole, and an honest request meanwhile is served.
#[tokio::test]
async fn a_request_body_trickled_below_the_minimum_pace_is_cut_once_its_grace_is_over() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const GRACE: Duration = Duration::from_secs(1);
    let t = TestApp::spawn_with(|c| {
        c.header_timeout = GRACE;
        c.idle_timeout = Duration::from_secs(3600);
    })
    .await;
    let heads = [
        "POST /api/auth/login HTTP/1.1\r\nhost: mathia\r\ncontent-type: application/json\r\ncontent-length: 4096\r\n\r\n"
            .to_owned(),
        format!(
            "PUT /api/uploads/{}?expires=4102444800&sig=00 HTTP/1.1\r\nhost: mathia\r\ncontent-length: 4096\r\n\r\n",
            Uuid::new_v4()
        ),
    ];
    for head in heads {
        let started = tokio::time::Instant::now();
        let mut slow = tokio::net::TcpStream::connect(t.addr).await.unwrap();
        slow.write_all(head.as_bytes()).await.unwrap();
        let mut buf = vec![0; 4096];
        let mut sent = 0;
        let answer = loop {
            // A write just after the answer may find the connection closed: the answer is read below.
            if slow.write_all(b" ").await.is_ok() {
                sent += 1;
            }
            match tokio::time::timeout(Duration::from_millis(100), slow.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => break String::from_utf8_lossy(&buf[..n]).into_owned(),
                Ok(_) => panic!("{head}: closed without an answer"),
                Err(_) => assert!(started.elapsed() < WAIT, "{head}: the trickle went on past the wait"),
            }
        };
        assert!(answer.starts_with("HTTP/1.1 408"), "{head}: {answer}");
        assert!(answer.contains(r#""code":"request_timeout""#), "{answer}");
        assert!(started.elapsed() >= GRACE && sent >= 5, "not before its grace ({sent} bytes sent)");
        let rest = tokio::time::timeout(WAIT, async {
            loop {
                match slow.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        });
        rest.await.expect("the connection is closed after its answer");
        let mut honest = ask_from(&t, "127.0.0.1").await;
        assert_eq!(heard(&mut honest, WAIT).await, Heard::Ok);
    }

    // Four pieces of 1 KiB, 0.8 s apart: past the grace, but at more than the pace.
    const PIECE: usize = 1024;
    assert!(mathia_local::MIN_BODY_RATE as f64 * 0.8 < PIECE as f64, "the pieces come faster than the pace");
    let mut body = br#"{"email":"nobody@example.com","password":""#.to_vec();
    body.resize(4 * PIECE - 2, b'p');
    body.extend_from_slice(br#""}"#);
    let started = tokio::time::Instant::now();
    let mut paced = tokio::net::TcpStream::connect(t.addr).await.unwrap();
    let head = format!(
        "POST /api/auth/login HTTP/1.1\r\nhost: mathia\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    paced.write_all(head.as_bytes()).await.unwrap();
    for (i, piece) in body.chunks(PIECE).enumerate() {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(800)).await;
        }
        paced.write_all(piece).await.expect("a body at the pace is not cut");
    }
    assert!(started.elapsed() > GRACE, "the body took longer than the grace");
    let mut buf = vec![0; 4096];
    let n = tokio::time::timeout(WAIT, paced.read(&mut buf)).await.expect("answered").unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 401"), "read whole and checked: {answer}");
    assert!(answer.contains(r#""code":"invalid_credentials""#), "{answer}");
}
