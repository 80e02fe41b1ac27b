//! The Lambda entry points, fed real API Gateway event JSON, behave exactly like the gateway.

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use mathia::{domain::ConnectionId, lambda};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::helpers::TestApp;

/// A WebSocket event as API Gateway sends it to Lambda.
fn ws_event(
    route: &str,
    event_type: &str,
    connection_id: &str,
    ticket: Option<&str>,
    body: Option<String>,
) -> ApiGatewayWebsocketProxyRequest {
    let mut event = json!({
        "requestContext": {
            "routeKey": route,
            "eventType": event_type,
            "extendedRequestId": "LQxm2Fy8IAMFz6A=",
            "requestTime": "25/Nov/2026:19:03:58 +0000",
            "messageDirection": "IN",
            "stage": "prod",
            "connectedAt": 1_795_000_000_000_i64,
            "requestTimeEpoch": 1_795_000_000_100_i64,
            "identity": { "sourceIp": "203.0.113.7", "userAgent": "test" },
            "requestId": "LQxm2Fy8IAMFz6A=",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "connectionId": connection_id,
            "apiId": "abc123"
        },
        "isBase64Encoded": false
    });
    if route == "$connect" {
        event["headers"] =
            json!({ "Host": "abc123.execute-api.us-east-1.amazonaws.com", "Sec-WebSocket-Version": "13" });
        event["multiValueHeaders"] = json!({ "Host": ["abc123.execute-api.us-east-1.amazonaws.com"] });
        if let Some(t) = ticket {
            event["queryStringParameters"] = json!({ "ticket": t });
            event["multiValueQueryStringParameters"] = json!({ "ticket": [t] });
        }
    }
    if let Some(b) = body {
        event["body"] = json!(b);
        event["requestContext"]["messageId"] = json!("LQxnBcXcIAMCJyQ=");
    }
    serde_json::from_value(event).expect("a valid API Gateway WebSocket event")
}

#[tokio::test]
async fn websocket_events_run_the_same_handlers_as_the_gateway() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let ben = t.register("Ben").await;
    let room = t.create_room(&ana, "general").await;
    t.bring_in(&ana, room.id, &ben).await;
    let app = &t.local.app;

    // Ben is on a real socket through the gateway.
    let (mut b, _) = t.ws_in_room(&ben, room.id).await;

    // Ana arrives through Lambda events; frames to her connection are captured where
    // API Gateway would deliver them.
    let conn = "L0SM9cOFvHcCIhw=";
    let mut outbox = t.push().attach(ConnectionId::new(conn));

    let refused = lambda::ws_connect(app, ws_event("$connect", "CONNECT", conn, Some("forged"), None)).await;
    assert_eq!(refused.status_code, 401);
    let ticket = t.ticket(&ana).await;
    let ok = lambda::ws_connect(app, ws_event("$connect", "CONNECT", conn, Some(&ticket), None)).await;
    assert_eq!(ok.status_code, 200);
    let reused = lambda::ws_connect(app, ws_event("$connect", "CONNECT", "other=", Some(&ticket), None)).await;
    assert_eq!(reused.status_code, 401, "tickets are one-time through Lambda too");

    let send = |body: Value| ws_event("$default", "MESSAGE", conn, None, Some(body.to_string()));
    // Ben's arrival is announced to the room after his `room_joined`, so it may reach Ana's
    // connection once that is subscribed, before or between her answers: it is passed over.
    let ben_online = |f: &Value| f["type"] == "presence_update" && f["user_id"] == ben.id.to_string();
    let mut next = || loop {
        let frame = outbox.try_recv().expect("a frame was pushed");
        let frame = serde_json::from_str::<Value>(frame.as_str()).unwrap();
        if !ben_online(&frame) {
            break frame;
        }
    };

    assert_eq!(
        lambda::ws_message(app, send(json!({"action": "join_room", "room_id": room.id}))).await.status_code,
        200
    );
    let joined = next();
    assert_eq!(joined["type"], "room_joined");
    assert_eq!(joined["online"].as_array().unwrap().len(), 2);
    assert_eq!(b.recv_type("presence_update").await["user_id"], ana.id.to_string());

    let res = lambda::ws_message(
        app,
        send(json!({"action": "new_message", "room_id": room.id, "body": "via lambda", "client_msg_id": "l1"})),
    )
    .await;
    assert_eq!(res.status_code, 200);
    let ack = next();
    assert_eq!(ack["type"], "ack");
    let own = next();
    assert_eq!(own["type"], "new_message");
    assert_eq!(own["message"]["id"], ack["message_id"]);
    let theirs = b.recv_type("new_message").await;
    assert_eq!(theirs, own, "the socket and the Lambda connection got the same event");

    // Bad input through Lambda: same codes, the invocation itself succeeds.
    lambda::ws_message(app, send(json!({"action": "nope"}))).await;
    assert_eq!(next()["code"], "unknown_action");
    let raw = ws_event("$default", "MESSAGE", conn, None, Some("not json".into()));
    assert_eq!(lambda::ws_message(app, raw).await.status_code, 200);
    assert_eq!(next()["code"], "bad_request");

    // And the gateway's socket answers the same bad input identically.
    b.send_raw("not json".into()).await;
    let gateway_error = b.recv_type("error").await;
    lambda::ws_message(app, ws_event("$default", "MESSAGE", conn, None, Some("not json".into()))).await;
    assert_eq!(next(), gateway_error);

    let gone = lambda::ws_disconnect(app, ws_event("$disconnect", "DISCONNECT", conn, None, None)).await;
    assert_eq!(gone.status_code, 200);
    let offline = b.recv_type("presence_update").await;
    assert_eq!(offline["status"], "offline");
    assert_eq!(offline["user_id"], ana.id.to_string());
}

/// An HTTP API (payload 2.0) event as API Gateway sends it to Lambda.
fn http_event(method: &str, path: &str, token: &str, body: Option<Value>) -> Value {
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {
            "authorization": format!("Bearer {token}"),
            "content-type": "application/json",
            "host": "xyz789.execute-api.us-east-1.amazonaws.com"
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "xyz789",
            "domainName": "xyz789.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "xyz789",
            "http": { "method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "test" },
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": "$default",
            "stage": "$default",
            "time": "25/Nov/2026:19:03:58 +0000",
            "timeEpoch": 1_795_000_000_000_i64
        },
        "body": body.map(|b| b.to_string()),
        "isBase64Encoded": false
    })
}

async fn through_lambda(t: &TestApp, event: Value) -> (u16, Value) {
    let request: lambda_http::request::LambdaRequest = serde_json::from_value(event).expect("a valid HTTP API event");
    let request: http::Request<lambda_http::Body> = request.into();
    let response = mathia::handlers::http::router(t.local.app.clone()).oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn http_api_events_answer_like_the_gateway() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;

    let (status, created) =
        through_lambda(&t, http_event("POST", "/api/rooms", &ana.token, Some(json!({"name": "from lambda"})))).await;
    assert_eq!(status, 201);
    assert_eq!(created["name"], "from lambda");

    // The same listing through Lambda and through the gateway.
    let (status, via_lambda) = through_lambda(&t, http_event("GET", "/api/rooms", &ana.token, None)).await;
    assert_eq!(status, 200);
    let via_gateway: Value = t.get(Some(&ana.token), "/api/rooms").await.json().await.unwrap();
    assert_eq!(via_lambda, via_gateway);
    assert!(via_lambda.as_array().unwrap().iter().any(|r| r["id"] == created["id"]));

    // Errors too.
    let (status, err) =
        through_lambda(&t, http_event("POST", "/api/rooms", &ana.token, Some(json!({"name": ""})))).await;
    let res = t.post(Some(&ana.token), "/api/rooms", json!({"name": ""})).await;
    assert_eq!(status, res.status().as_u16());
    assert_eq!(err, res.json::<Value>().await.unwrap());
    let (status, _) = through_lambda(&t, http_event("GET", "/api/me", "bogus", None)).await;
    assert_eq!(status, 401);
}
