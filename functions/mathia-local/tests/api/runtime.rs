//! Each Lambda binary, built with plain cargo, answers real events through a local stand-in for
//! the Lambda Runtime API (`GET …/invocation/next`, `POST …/invocation/{id}/response`).

use std::{collections::VecDeque, path::PathBuf, process::Stdio, sync::Arc, time::Duration};

use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue},
    routing::{get, post},
};
use base64::Engine;
use serde_json::{Value, json};
use tokio::{
    process::Command,
    sync::{Mutex, mpsc},
};

use mathia::{adapters::aws::DynamoConnections, domain::ConnectionId, ports::Connections};

use crate::{emulator::Emulator, helpers::TestApp};

/// The workspace's debug binaries sit two levels above this test executable.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --bins` first (scripts/test does)",
        path.display()
    );
    path
}

#[derive(Clone)]
struct RuntimeState {
    events: Arc<Mutex<VecDeque<Value>>>,
    answers: mpsc::UnboundedSender<(String, Value)>,
}

async fn next(State(s): State<RuntimeState>) -> (HeaderMap, String) {
    let Some(event) = s.events.lock().await.pop_front() else {
        // No more work: block like the real API does until the process is stopped.
        std::future::pending::<()>().await;
        unreachable!()
    };
    let mut headers = HeaderMap::new();
    let id = uuid::Uuid::new_v4().to_string();
    headers.insert("Lambda-Runtime-Aws-Request-Id", HeaderValue::from_str(&id).unwrap());
    let deadline = chrono::Utc::now().timestamp_millis() + 30_000;
    headers.insert("Lambda-Runtime-Deadline-Ms", HeaderValue::from_str(&deadline.to_string()).unwrap());
    headers.insert(
        "Lambda-Runtime-Invoked-Function-Arn",
        HeaderValue::from_static("arn:aws:lambda:us-east-1:123456789012:function:mathia-test"),
    );
    headers.insert("Lambda-Runtime-Trace-Id", HeaderValue::from_static("Root=1-5759e988-bd862e3fe1be46a994272793"));
    (headers, event.to_string())
}

async fn respond(State(s): State<RuntimeState>, Path(id): Path<String>, body: Bytes) -> &'static str {
    let _ = s.answers.send((id, serde_json::from_slice(&body).unwrap_or(Value::Null)));
    "{}"
}

async fn error(State(s): State<RuntimeState>, body: Bytes) -> &'static str {
    let _ = s.answers.send(("error".into(), json!({"error": String::from_utf8_lossy(&body)})));
    "{}"
}

/// Runs a function binary on `events` and returns its answers, in order. `env` adds to (or
/// overrides) the local backend's variables.
async fn invoke(t: &TestApp, name: &str, events: Vec<Value>, env: &[(&str, String)]) -> Vec<Value> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let n = events.len();
    let state = RuntimeState { events: Arc::new(Mutex::new(events.into())), answers: tx };
    let api = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/response", post(respond))
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(error))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, api).await });

    let config = &t.local.app.config;
    let mut child = Command::new(binary(name))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env("AWS_REGION", "us-east-1")
        .env("DATABASE_URL", &config.database_url)
        .env("REDIS_URL", &config.redis_url)
        .env("MATHIA_REDIS_PREFIX", &config.redis_prefix)
        .env("MATHIA_MASTER_KEY", base64::engine::general_purpose::STANDARD.encode(config.master_key))
        .env("MATHIA_BACKEND", "local")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("the function starts");
    let mut answers = Vec::new();
    for _ in 0..n {
        let (id, answer) = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await.expect("an answer").unwrap();
        assert_ne!(id, "error", "{name} failed: {answer}");
        answers.push(answer);
    }
    let _ = child.kill().await;
    answers
}

fn ws_event(route: &str, connection: &str, ticket: Option<&str>, body: Option<&str>) -> Value {
    let mut e = json!({
        "requestContext": {
            "routeKey": route, "eventType": route.trim_start_matches('$').to_uppercase(),
            "stage": "prod", "connectionId": connection, "apiId": "abc123", "requestId": "r1",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com", "connectedAt": 1_795_000_000_000_i64,
            "requestTimeEpoch": 1_795_000_000_000_i64, "messageDirection": "IN", "identity": {"sourceIp": "203.0.113.7"}
        },
        "isBase64Encoded": false
    });
    if let Some(t) = ticket {
        e["queryStringParameters"] = json!({"ticket": t});
    }
    if let Some(b) = body {
        e["body"] = json!(b);
    }
    e
}

/// API Gateway's management API, as the WebSocket functions reach it: records each frame
/// posted to a connection, by connection id.
async fn management_api() -> (String, mpsc::UnboundedReceiver<(String, Value)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let api = Router::new()
        .route(
            "/prod/@connections/{id}",
            post(|State(tx): State<mpsc::UnboundedSender<(String, Value)>>, Path(id): Path<String>, body: Bytes| async move {
                let _ = tx.send((id, serde_json::from_slice(&body).unwrap_or(Value::Null)));
                ""
            }),
        )
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, api).await });
    (format!("http://{addr}/prod"), rx)
}

/// The frames posted so far, as `(connection, type)`, after the invocation that posted them.
fn posted_types(posted: &mut mpsc::UnboundedReceiver<(String, Value)>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    while let Ok((id, frame)) = posted.try_recv() {
        out.push((id, frame["type"].as_str().unwrap_or("?").to_owned()));
    }
    out
}

#[tokio::test]
async fn the_websocket_functions_register_deliver_store_and_unregister() {
    // Tickets issued into Redis, where the ws-connect function takes them.
    let t = TestApp::spawn_with_tickets_in_redis(|_| {}).await;
    let ana = t.register("Ana").await;
    let ben = t.register("Ben").await;
    let room = t.create_room(&ana, "general").await;
    t.bring_in(&ana, room.id, &ben).await;
    // The deployment's shape: the registry on DynamoDB (moto), frames to API Gateway's
    // management API (a recorder), the same Postgres and Redis as the app.
    let emu = Emulator::start().await;
    let prefix = format!("rt{}-", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    emu.create_resources(&prefix, 5, 30).await;
    let (endpoint, mut posted) = management_api().await;
    let aws = [
        ("MATHIA_BACKEND", "aws".to_owned()),
        ("AWS_ENDPOINT_URL", emu.url.clone()),
        ("AWS_ACCESS_KEY_ID", "test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
        ("MATHIA_CONNECTIONS_TABLE", format!("{prefix}connections")),
        ("MATHIA_QUEUE_PREFIX", prefix.clone()),
        ("MATHIA_FILES_BUCKET", format!("{prefix}files")),
        ("MATHIA_WS_ENDPOINT", endpoint),
    ];
    let registry =
        DynamoConnections::new(aws_sdk_dynamodb::Client::new(&emu.sdk().await), format!("{prefix}connections"));
    let registered = |id: &'static str| {
        let registry = &registry;
        async move { registry.get(&ConnectionId::new(id)).await.unwrap() }
    };

    // $connect: a forged ticket is refused and registers nothing; good ones register their user.
    let (ana_ticket, ben_ticket) = (t.ticket(&ana).await, t.ticket(&ben).await);
    let answers = invoke(
        &t,
        "ws-connect",
        vec![
            ws_event("$connect", "c0", Some("forged"), None),
            ws_event("$connect", "c1", Some(&ana_ticket), None),
            ws_event("$connect", "c2", Some(&ben_ticket), None),
        ],
        &aws,
    )
    .await;
    let statuses: Vec<&Value> = answers.iter().map(|a| &a["statusCode"]).collect();
    assert_eq!(statuses, [&json!(401), &json!(200), &json!(200)]);
    assert!(registered("c0").await.is_none(), "the forged ticket registered a connection");
    assert_eq!(registered("c1").await.expect("c1 registered").user_id, ana.id);
    assert_eq!(registered("c2").await.expect("c2 registered").user_id, ben.id);

    // $default: both join, Ana says something; it is stored and posted to both connections.
    let frame = |conn: &str, body: Value| ws_event("$default", conn, None, Some(&body.to_string()));
    let answers = invoke(
        &t,
        "ws-message",
        vec![
            frame("c1", json!({"action": "join_room", "room_id": room.id})),
            frame("c2", json!({"action": "join_room", "room_id": room.id})),
            frame(
                "c1",
                json!({"action": "new_message", "room_id": room.id, "body": "via Lambda", "client_msg_id": "l1"}),
            ),
        ],
        &aws,
    )
    .await;
    assert!(answers.iter().all(|a| a["statusCode"] == 200), "{answers:?}");
    let frames = posted_types(&mut posted);
    for expected in [
        ("c1", "room_joined"),
        ("c2", "room_joined"),
        ("c1", "presence_update"),
        ("c1", "ack"),
        ("c1", "new_message"),
        ("c2", "new_message"),
    ] {
        assert!(
            frames.iter().any(|(id, ty)| (id.as_str(), ty.as_str()) == expected),
            "{expected:?} was not posted: {frames:?}"
        );
    }
    let history: Value =
        t.get(Some(&ben.token), &format!("/api/rooms/{}/messages", room.id)).await.json().await.unwrap();
    let bodies: Vec<&Value> = history["messages"].as_array().unwrap().iter().map(|m| &m["body"]).collect();
    assert_eq!(bodies, [&json!("via Lambda")], "stored once");

    // $disconnect: Ben's connection is forgotten, and Ana's hears that he left.
    let answers = invoke(&t, "ws-disconnect", vec![ws_event("$disconnect", "c2", None, None)], &aws).await;
    assert_eq!(answers[0]["statusCode"], 200);
    assert!(registered("c2").await.is_none(), "c2 is still registered");
    assert!(registered("c1").await.is_some(), "only c2 was forgotten");
    let frames = posted_types(&mut posted);
    assert_eq!(frames, [("c1".to_owned(), "presence_update".to_owned())]);
}

#[tokio::test]
async fn the_http_worker_and_scheduler_binaries_answer_real_events() {
    let t = TestApp::spawn().await;

    let health = json!({
        "version": "2.0", "routeKey": "$default", "rawPath": "/healthz", "rawQueryString": "",
        "headers": {"host": "x.execute-api.us-east-1.amazonaws.com"},
        "requestContext": {"accountId": "123456789012", "apiId": "x", "domainName": "x.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "x", "http": {"method": "GET", "path": "/healthz", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7",
            "userAgent": "test"}, "requestId": "r", "routeKey": "$default", "stage": "$default",
            "time": "25/Nov/2026:19:03:58 +0000", "timeEpoch": 1_795_000_000_000_i64},
        "isBase64Encoded": false
    });
    let answers = invoke(&t, "http-api", vec![health], &[]).await;
    assert_eq!(answers[0]["statusCode"], 200);
    let body: Value = serde_json::from_str(answers[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["postgres"], "ok");

    for worker in ["ai-worker", "moderation-worker", "reminder-worker"] {
        let sqs = json!({"Records": [{
            "messageId": "bad-1", "receiptHandle": "h", "body": "not a job",
            "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}, "md5OfBody": "",
            "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": "us-east-1"
        }]});
        let answers = invoke(&t, worker, vec![sqs], &[]).await;
        assert_eq!(answers[0], json!({"batchItemFailures": [{"itemIdentifier": "bad-1"}]}), "{worker}");
    }

    let scheduled = json!({
        "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event",
        "source": "aws.events", "account": "123456789012", "time": "2026-11-25T19:00:00Z", "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/mathia-scheduler"], "detail": {}
    });
    let answers = invoke(&t, "scheduler", vec![scheduled], &[]).await;
    assert!(answers[0].get("stale_connections_dropped").is_some(), "{}", answers[0]);
}
