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

use crate::helpers::TestApp;

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

/// Runs a function binary on `events` and returns its answers, in order.
async fn invoke(t: &TestApp, name: &str, events: Vec<Value>) -> Vec<Value> {
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

#[tokio::test]
async fn every_lambda_binary_answers_real_events() {
    let t = TestApp::spawn().await;
    let ana = t.register("Ana").await;
    let ticket = t.ticket(&ana).await;

    let answers = invoke(
        &t,
        "ws-connect",
        vec![ws_event("$connect", "c1", Some("forged"), None), ws_event("$connect", "c1", Some(&ticket), None)],
    )
    .await;
    assert_eq!(answers[0]["statusCode"], 401);
    assert_eq!(answers[1]["statusCode"], 200);

    let answers = invoke(&t, "ws-message", vec![ws_event("$default", "c9", None, Some(r#"{"action":"ping"}"#))]).await;
    assert_eq!(answers[0]["statusCode"], 200);
    let answers = invoke(&t, "ws-disconnect", vec![ws_event("$disconnect", "c9", None, None)]).await;
    assert_eq!(answers[0]["statusCode"], 200);

    let health = json!({
        "version": "2.0", "routeKey": "$default", "rawPath": "/healthz", "rawQueryString": "",
        "headers": {"host": "x.execute-api.us-east-1.amazonaws.com"},
        "requestContext": {"accountId": "123456789012", "apiId": "x", "domainName": "x.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "x", "http": {"method": "GET", "path": "/healthz", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7",
            "userAgent": "test"}, "requestId": "r", "routeKey": "$default", "stage": "$default",
            "time": "25/Nov/2026:19:03:58 +0000", "timeEpoch": 1_795_000_000_000_i64},
        "isBase64Encoded": false
    });
    let answers = invoke(&t, "http-api", vec![health]).await;
    assert_eq!(answers[0]["statusCode"], 200);
    let body: Value = serde_json::from_str(answers[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["postgres"], "ok");

    for worker in ["ai-worker", "moderation-worker", "reminder-worker"] {
        let sqs = json!({"Records": [{
            "messageId": "bad-1", "receiptHandle": "h", "body": "not a job",
            "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}, "md5OfBody": "",
            "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": "us-east-1"
        }]});
        let answers = invoke(&t, worker, vec![sqs]).await;
        assert_eq!(answers[0], json!({"batchItemFailures": [{"itemIdentifier": "bad-1"}]}), "{worker}");
    }

    let scheduled = json!({
        "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event",
        "source": "aws.events", "account": "123456789012", "time": "2026-11-25T19:00:00Z", "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/mathia-scheduler"], "detail": {}
    });
    let answers = invoke(&t, "scheduler", vec![scheduled]).await;
    assert!(answers[0].get("stale_connections_dropped").is_some(), "{}", answers[0]);
}
