//! The AWS adapters through the real AWS SDK: SQS and DynamoDB on the emulator, the `Push`
//! adapter against a local HTTP server standing in for API Gateway's management API.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::Utc;
use mathia::{
    adapters::aws::{ApiGatewayPush, DynamoConnections, SqsQueue, sdk_config},
    adapters::local::ManualClock,
    config::AwsSettings,
    domain::ConnectionId,
    lambda::aws_lambda_events::sqs::SqsEvent,
    ports::{Clock, ConnectionInfo, Connections, Push, PushError, Queue, QueueName, Recipient},
    protocol::ServerEvent,
    realtime::{push_to_room, push_to_user},
    workers::{ModerationJob, run_sqs_batch},
};
use serde_json::json;
use uuid::Uuid;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

use crate::{
    emulator::Emulator,
    helpers::{TestApp, registry_entry},
};

fn conn(id: &str, user: Uuid, endpoint: Option<&str>) -> ConnectionInfo {
    ConnectionInfo { endpoint: endpoint.map(str::to_owned), ..registry_entry(id, user, &format!("user {id}")) }
}

#[tokio::test]
async fn sqs_round_trip_and_delayed_delivery() {
    let emu = Emulator::start().await;
    let urls = emu.create_resources("t1-", 3, 30).await;
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&emu.sdk().await), urls);

    queue.send(QueueName::Ai, r#"{"hello":"now"}"#, Duration::ZERO).await.unwrap();
    queue.send(QueueName::Ai, r#"{"hello":"later"}"#, Duration::from_secs(2)).await.unwrap();
    let first = queue.receive(QueueName::Ai, 10, Duration::from_secs(1)).await.unwrap();
    assert_eq!(first.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(), vec![r#"{"hello":"now"}"#]);
    assert_eq!(first[0].receive_count, 1);
    queue.delete(QueueName::Ai, &first).await.unwrap();

    let mut later = Vec::new();
    for _ in 0..10 {
        later = queue.receive(QueueName::Ai, 10, Duration::from_secs(1)).await.unwrap();
        if !later.is_empty() {
            break;
        }
    }
    assert_eq!(later.len(), 1, "the delayed message arrives once its delay has passed");
    assert_eq!(later[0].body, r#"{"hello":"later"}"#);
    // Other queues are separate.
    assert!(queue.receive(QueueName::Reminders, 10, Duration::ZERO).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_poison_message_is_reported_alone_and_redriven_to_the_dlq() {
    let t = TestApp::spawn().await;
    let emu = Emulator::start().await;
    let urls = emu.create_resources("t2-", 2, 1).await;
    let sdk = emu.sdk().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue = SqsQueue::new(sqs.clone(), urls.clone());

    let good = serde_json::to_string(&ModerationJob {
        job_id: Uuid::new_v4(),
        room_id: Some(Uuid::new_v4()),
        message_ids: vec![],
    })
    .unwrap();
    queue.send(QueueName::Moderation, &good, Duration::ZERO).await.unwrap();
    queue.send(QueueName::Moderation, "this is not a job", Duration::ZERO).await.unwrap();

    let dlq_url = sqs.get_queue_url().queue_name("t2-moderation-dlq").send().await.unwrap().queue_url.unwrap();
    let mut dead_letters = Vec::new();
    let mut poison_id = None;
    let mut handled_good = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    // Drive the queue the way the Lambda event source mapping does, with the real batch helper.
    while tokio::time::Instant::now() < deadline {
        let received = queue.receive(QueueName::Moderation, 10, Duration::from_secs(1)).await.unwrap();
        if received.is_empty() {
            let dead = sqs.receive_message().queue_url(&dlq_url).max_number_of_messages(10).send().await.unwrap();
            dead_letters.extend(dead.messages.unwrap_or_default().into_iter().filter_map(|m| m.body));
            if !dead_letters.is_empty() {
                break;
            }
            continue;
        }
        let event: SqsEvent = serde_json::from_value(json!({
            "Records": received.iter().map(|m| json!({
                "messageId": m.message_id, "receiptHandle": m.receipt_handle, "body": m.body,
                "attributes": {"ApproximateReceiveCount": m.receive_count.to_string()},
                "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:t2-moderation", "awsRegion": "us-east-1"
            })).collect::<Vec<_>>()
        }))
        .unwrap();
        let response = run_sqs_batch(&t.local.app, QueueName::Moderation, event).await;
        let failed: Vec<_> = response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
        for m in &received {
            if m.body == "this is not a job" {
                assert_eq!(failed, vec![m.message_id.clone()], "only the poison message is reported");
                poison_id = Some(m.message_id.clone());
            } else {
                handled_good = true;
            }
        }
        let succeeded: Vec<_> = received.into_iter().filter(|m| !failed.contains(&m.message_id)).collect();
        queue.delete(QueueName::Moderation, &succeeded).await.unwrap();
    }
    assert!(handled_good && poison_id.is_some());
    assert_eq!(dead_letters, vec!["this is not a job".to_string()], "the poison message ends in the DLQ, alone");
}

#[tokio::test]
async fn the_dynamodb_registry_finds_rooms_and_users_without_scans_and_forgets() {
    let emu = Emulator::start().await;
    emu.create_resources("t3-", 5, 30).await;
    // The registry talks to the emulator through the call-counting pass-through.
    let counter = mathia_local::emulate::aws_calls::AwsProxy::new(&emu.url);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let counted = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, counter.clone().router()).into_future());
    let sdk = emu.sdk().await.into_builder().endpoint_url(&counted).build();
    let registry = DynamoConnections::new(aws_sdk_dynamodb::Client::new(&sdk), "t3-connections");
    let (ana, ben) = (Uuid::new_v4(), Uuid::new_v4());
    let (room, other) = (Uuid::new_v4(), Uuid::new_v4());

    registry.register(conn("a1", ana, Some("http://gw-1"))).await.unwrap();
    registry.register(conn("a2", ana, None)).await.unwrap();
    registry.register(conn("b1", ben, Some("http://gw-2"))).await.unwrap();
    assert!(registry.join(&ConnectionId::new("a1"), room).await.unwrap());
    assert!(registry.join(&ConnectionId::new("b1"), room).await.unwrap());
    assert!(registry.join(&ConnectionId::new("a2"), other).await.unwrap());
    assert!(!registry.join(&ConnectionId::new("nobody"), room).await.unwrap(), "unknown connections cannot join");

    let mut in_room: Vec<_> =
        registry.in_room(room).await.unwrap().into_iter().map(|c| (c.id.to_string(), c.endpoint)).collect();
    in_room.sort();
    assert_eq!(in_room, vec![("a1".into(), Some("http://gw-1".into())), ("b1".into(), Some("http://gw-2".into()))]);
    let mut anas: Vec<_> = registry.of_user(ana).await.unwrap().into_iter().map(|c| c.id.to_string()).collect();
    anas.sort();
    assert_eq!(anas, vec!["a1", "a2"]);
    let a1 = registry.get(&ConnectionId::new("a1")).await.unwrap().unwrap();
    assert_eq!(a1.rooms, HashSet::from([room]));
    assert_eq!(a1.user_id, ana);

    // A rename reaches every item of the user's connections (the room entries fan-out reads too).
    assert_eq!(registry.rename(ana, "Ana Lima").await.unwrap(), HashSet::from([room, other]));
    let mut named: Vec<_> =
        registry.in_room(room).await.unwrap().into_iter().map(|c| (c.id.to_string(), c.display_name)).collect();
    named.sort();
    assert_eq!(named, vec![("a1".into(), "Ana Lima".into()), ("b1".into(), "user b1".into())]);
    assert_eq!(registry.get(&ConnectionId::new("a2")).await.unwrap().unwrap().display_name, "Ana Lima");
    assert_eq!(registry.get(&ConnectionId::new("a2")).await.unwrap().unwrap().rooms, HashSet::from([other]));

    registry.leave(&ConnectionId::new("a1"), room).await.unwrap();
    assert_eq!(registry.in_room(room).await.unwrap().len(), 1);
    let removed = registry.remove(&ConnectionId::new("b1")).await.unwrap().unwrap();
    assert_eq!(removed.rooms, HashSet::from([room]));
    assert!(registry.in_room(room).await.unwrap().is_empty());
    assert!(registry.get(&ConnectionId::new("b1")).await.unwrap().is_none());
    assert!(registry.remove(&ConnectionId::new("b1")).await.unwrap().is_none());
    assert!(registry.rename(ben, "Ben B.").await.unwrap().is_empty());
    assert!(registry.get(&ConnectionId::new("b1")).await.unwrap().is_none(), "a rename brings nothing back");

    let calls = counter.calls();
    assert!(calls.get("dynamodb.Query").copied().unwrap_or(0) >= 3, "rooms and users are queried: {calls:?}");
    assert!(!calls.contains_key("dynamodb.Scan"), "nothing above scans the table: {calls:?}");

    let stale = registry.older_than(Utc::now() + chrono::Duration::seconds(5)).await.unwrap();
    assert_eq!(stale.len(), 2);
    assert!(registry.older_than(Utc::now() - chrono::Duration::hours(1)).await.unwrap().is_empty());
}

/// Answers every push to connection `id` as API Gateway answers one to a gone connection.
async fn answer_gone(server: &MockServer, id: &str) {
    Mock::given(method("POST"))
        .and(path(format!("/@connections/{id}")))
        .respond_with(
            ResponseTemplate::new(410)
                .insert_header("x-amzn-errortype", "GoneException")
                .set_body_json(json!({"message": "Gone"})),
        )
        .mount(server)
        .await;
}

/// SDK settings that reach no emulator: the management API under test is a wiremock server.
async fn emulator_free_sdk() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new("test", "test", None, None, "test"))
        .load()
        .await
}

/// The management API answering 200 to every push to `id`.
async fn answer_ok(server: &MockServer, id: &str) {
    Mock::given(method("POST"))
        .and(path(format!("/@connections/{id}")))
        .respond_with(ResponseTemplate::new(200))
        .mount(server)
        .await;
}

/// The test app's settings and database, pushing through `push` on `clock`'s time.
fn app_pushing_with(t: &TestApp, push: ApiGatewayPush, clock: Arc<ManualClock>) -> mathia::App {
    mathia::App::builder(t.local.app.config.clone(), t.local.app.db.clone())
        .push(Arc::new(push))
        .clock(clock)
        .build()
        .unwrap()
}

/// An app pushing through the mocked API Gateway at `server`, on a clock the test moves (the
/// `TestApp` serving its database is kept beside it).
async fn app_pushing_to(server: &MockServer) -> (TestApp, mathia::App, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let t = TestApp::spawn_with_clock(clock.clone()).await;
    let push = ApiGatewayPush::new(emulator_free_sdk().await, Some(server.uri()));
    let app = app_pushing_with(&t, push, clock.clone());
    (t, app, clock)
}

#[tokio::test]
async fn push_reaches_live_connections_and_forgets_gone_ones() {
    let server = MockServer::start().await;
    answer_ok(&server, "alive").await;
    answer_gone(&server, "dead").await;
    // A transient failure is retried with backoff.
    Mock::given(method("POST"))
        .and(path("/@connections/flaky"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    answer_ok(&server, "flaky").await;

    let push = ApiGatewayPush::new(emulator_free_sdk().await, Some(server.uri()));
    let frame = mathia::ports::Frame::json(&ServerEvent::Pong);
    let id = |s: &str| ConnectionId::new(s);
    push.send(Recipient { id: &id("alive"), endpoint: None }, &frame).await.unwrap();
    push.send(Recipient { id: &id("flaky"), endpoint: None }, &frame).await.unwrap();
    assert!(matches!(push.send(Recipient { id: &id("dead"), endpoint: None }, &frame).await, Err(PushError::Gone)));

    // Through the fan-out: the live connection gets the frame. The gone one is noted, skipped by
    // this process's later pushes, and left to its own `$disconnect` for a few seconds; then the
    // scheduler forgets it and tells the room it left.
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let t = TestApp::spawn_with_clock(clock.clone()).await;
    let app = app_pushing_with(&t, push, clock.clone());
    let room = Uuid::new_v4();
    for c in ["alive", "dead"] {
        app.connections.register(conn(c, Uuid::new_v4(), Some(&server.uri()))).await.unwrap();
        app.connections.join(&id(c), room).await.unwrap();
    }
    push_to_room(&app, room, &ServerEvent::Pong, None).await;
    push_to_room(&app, room, &ServerEvent::Pong, None).await;
    let listed = || async {
        let mut listed: Vec<_> =
            app.connections.in_room(room).await.unwrap().into_iter().map(|c| c.id.to_string()).collect();
        listed.sort();
        listed
    };
    assert_eq!(listed().await, vec!["alive", "dead"], "left to its $disconnect");
    let posts = server.received_requests().await.unwrap();
    assert_eq!(
        posts.iter().filter(|r| r.url.path() == "/@connections/dead").count(),
        2,
        "the first push and the first fan-out tried it; the second skipped it"
    );
    let tick = || mathia::workers::scheduler::tick(&app);
    assert_eq!(tick().await.gone_connections_forgotten, 0, "its $disconnect may still come");

    clock.advance(chrono::Duration::seconds(6));
    assert_eq!(tick().await.gone_connections_forgotten, 1);
    assert_eq!(listed().await, vec!["alive"]);
    let posts = server.received_requests().await.unwrap();
    let to_alive: Vec<_> = posts.iter().filter(|r| r.url.path() == "/@connections/alive").collect();
    assert_eq!(to_alive.len(), 4, "the first push, both fan-outs and the departure");
    assert_eq!(to_alive[2].body, br#"{"type":"pong"}"#.to_vec());
    let offline: serde_json::Value = serde_json::from_slice(&to_alive[3].body).unwrap();
    assert_eq!(offline["type"], "presence_update", "the room heard that the gone connection left");
    assert_eq!(offline["status"], "offline");
    assert_eq!(posts.iter().filter(|r| r.url.path() == "/@connections/flaky").count(), 2, "retried once");
    clock.advance(chrono::Duration::seconds(6));
    assert_eq!(tick().await.gone_connections_forgotten, 0, "forgotten once");
}

/// Registers each (connection, person) and one more connection, `alive`, and joins them all
/// to `room`, every one pushed to through the mocked API Gateway.
async fn join_with_one_more(app: &mathia::App, server: &MockServer, room: Uuid, people: &[(String, Uuid)]) {
    for (c, person) in people.iter().map(|(c, p)| (c.as_str(), *p)).chain([("alive", Uuid::new_v4())]) {
        app.connections.register(conn(c, person, Some(&server.uri()))).await.unwrap();
        app.connections.join(&ConnectionId::new(c), room).await.unwrap();
    }
}

/// The connections the registry lists in a room.
async fn listed_in(app: &mathia::App, room: Uuid) -> Vec<String> {
    app.connections.in_room(room).await.unwrap().into_iter().map(|c| c.id.to_string()).collect()
}

/// The presence updates pushed to `connection` through the mocked API Gateway, from its
/// `from`th request on.
async fn presence_pushed_to(server: &MockServer, connection: &str, from: usize) -> Vec<serde_json::Value> {
    let path = format!("/@connections/{connection}");
    server.received_requests().await.unwrap()[from..]
        .iter()
        .filter(|r| r.url.path() == path)
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .filter(|e: &serde_json::Value| e["type"] == "presence_update")
        .collect()
}

/// Who the presence updates say left; each must be a departure.
fn who_left(heard: &[serde_json::Value]) -> HashSet<Uuid> {
    assert!(heard.iter().all(|e| e["status"] == "offline"), "{heard:?}");
    heard.iter().map(|e| e["user_id"].as_str().unwrap().parse().unwrap()).collect()
}

/// A tick takes many gone connections at once and forgets them side by side: each is forgotten,
/// and the room hears each person leave, the announcement with the highest number counting
/// only the one still there.
#[tokio::test]
async fn a_tick_forgets_many_gone_connections_and_the_room_hears_each_leave() {
    let server = MockServer::start().await;
    answer_ok(&server, "alive").await;
    let gone: Vec<String> = (0..40).map(|i| format!("gone-{i}")).collect();
    for id in &gone {
        answer_gone(&server, id).await;
    }
    let (_t, app, clock) = app_pushing_to(&server).await;
    let room = Uuid::new_v4();
    let people: Vec<(String, Uuid)> = gone.iter().map(|c| (c.clone(), Uuid::new_v4())).collect();
    join_with_one_more(&app, &server, room, &people).await;
    push_to_room(&app, room, &ServerEvent::Pong, None).await;
    clock.advance(chrono::Duration::seconds(6));
    let tick = || mathia::workers::scheduler::tick(&app);
    assert_eq!(tick().await.gone_connections_forgotten, gone.len());
    assert_eq!(listed_in(&app, room).await, vec!["alive"]);

    let heard = presence_pushed_to(&server, "alive", 0).await;
    assert_eq!(heard.len(), gone.len(), "each departure told once");
    assert_eq!(who_left(&heard), people.iter().map(|(_, p)| *p).collect(), "one departure for each");
    let last = heard.iter().max_by_key(|e| e["presence_seq"].as_u64().expect("numbered")).unwrap();
    assert_eq!(last["online_count"], 1, "the highest number counts only the one still there");
    assert_eq!(tick().await.gone_connections_forgotten, 0, "forgotten once");
}

/// Many departures cut off midway (half before the connection's removal, half after) are
/// finished in one tick, side by side: the room hears each person leave once, and every cut-off
/// connection is gone from the registry.
#[tokio::test]
async fn a_tick_finishes_many_cut_off_departures_and_the_room_hears_each_leave() {
    let server = MockServer::start().await;
    answer_ok(&server, "alive").await;
    let (_t, app, clock) = app_pushing_to(&server).await;
    let room = Uuid::new_v4();
    let cut: Vec<(String, Uuid)> = (0..40).map(|i| (format!("cut-{i}"), Uuid::new_v4())).collect();
    join_with_one_more(&app, &server, room, &cut).await;
    // Everyone was heard arriving; then each departure was written down and its process cut
    // off, half of them after removing the connection.
    for (c, person) in &cut {
        app.redis.arrival_heard(room, *person).await.unwrap();
        app.redis.departure_begun(c, *person, &[room], clock.now().timestamp_millis()).await.unwrap();
    }
    for (c, _) in cut.iter().step_by(2) {
        assert!(app.connections.remove(&ConnectionId::new(c.as_str())).await.unwrap().is_some());
    }
    clock.advance(chrono::Duration::seconds(61));
    let before = server.received_requests().await.unwrap().len();
    let tick = || mathia::workers::scheduler::tick(&app);
    assert_eq!(tick().await.departures_cut_off, cut.len());
    assert_eq!(listed_in(&app, room).await, vec!["alive"]);

    let heard = presence_pushed_to(&server, "alive", before).await;
    assert_eq!(heard.len(), cut.len(), "each departure told once");
    assert_eq!(who_left(&heard), cut.iter().map(|(_, p)| *p).collect(), "one departure for each");
    assert_eq!(tick().await.departures_cut_off, 0, "finished once");
}

/// API Gateway answers 410 to a push to a connection its `$connect` registered but that is not
/// open yet (the handshake finishes once `$connect` answers). A push to a person's sockets in
/// that moment (their read marker, from another tab) must not take the new one as gone: noted, it
/// was skipped for a minute and the scheduler forgot it, and the socket never heard an answer. A
/// 410 once it had time to open is taken as gone.
#[tokio::test]
async fn a_connection_still_opening_is_not_taken_as_gone() {
    let server = MockServer::start().await;
    answer_gone(&server, "opening").await;
    let (_t, app, clock) = app_pushing_to(&server).await;
    let ana = Uuid::new_v4();
    let opening = ConnectionInfo { connected_at: clock.now(), ..conn("opening", ana, Some(&server.uri())) };
    app.connections.register(opening).await.unwrap();
    let tries = || async {
        let posts = server.received_requests().await.unwrap();
        posts.iter().filter(|r| r.url.path() == "/@connections/opening").count()
    };
    let tick = || mathia::workers::scheduler::tick(&app);
    let registered = || async { app.connections.get(&ConnectionId::new("opening")).await.unwrap().is_some() };

    let read_marker = ServerEvent::Pong;
    assert!(!push_to_user(&app, ana, &read_marker).await);
    clock.advance(chrono::Duration::seconds(6));
    assert!(!push_to_user(&app, ana, &read_marker).await);
    assert_eq!(tries().await, 2, "not skipped: it may have opened since");
    clock.advance(chrono::Duration::seconds(6));
    assert_eq!(tick().await.gone_connections_forgotten, 0);
    assert!(registered().await, "not forgotten");

    // Past the time a `$connect` can take, a 410 means gone: noted, skipped, forgotten.
    clock.advance(mathia::realtime::STILL_OPENING);
    assert!(!push_to_user(&app, ana, &read_marker).await);
    assert!(!push_to_user(&app, ana, &read_marker).await);
    assert_eq!(tries().await, 3, "the second push skipped it");
    clock.advance(chrono::Duration::seconds(6));
    assert_eq!(tick().await.gone_connections_forgotten, 1);
    assert!(!registered().await);
}

#[tokio::test]
async fn the_worker_batch_helper_reports_partial_failures_of_a_real_sqs_event() {
    let t = TestApp::spawn().await;
    let good = serde_json::to_string(&ModerationJob {
        job_id: Uuid::new_v4(),
        room_id: Some(Uuid::new_v4()),
        message_ids: vec![],
    })
    .unwrap();
    // The SQS event shape Lambda delivers (from AWS's documentation).
    let event: SqsEvent = serde_json::from_value(json!({
        "Records": [
            {
                "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
                "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...",
                "body": good,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1545082649183",
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": "1545082649185"
                },
                "messageAttributes": {},
                "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-2:123456789012:my-queue",
                "awsRegion": "us-east-2"
            },
            {
                "messageId": "2e1424d4-f796-459a-8184-9c92662be6da",
                "receiptHandle": "AQEBzWwaftRI0KuVm4tP+/7q1rGgNqicHq...",
                "body": "{\"job_id\": 42}",
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1545082650636",
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": "1545082650649"
                },
                "messageAttributes": {},
                "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-2:123456789012:my-queue",
                "awsRegion": "us-east-2"
            }
        ]
    }))
    .unwrap();
    let response = run_sqs_batch(&t.local.app, QueueName::Moderation, event).await;
    let json = serde_json::to_value(&response).unwrap();
    assert_eq!(json, json!({"batchItemFailures": [{"itemIdentifier": "2e1424d4-f796-459a-8184-9c92662be6da"}]}));
}

/// An AWS endpoint that hangs: it accepts connections, counts them and never answers.
async fn hung_endpoint() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });
    (url, accepted)
}

#[tokio::test]
async fn a_hung_aws_endpoint_fails_each_call_instead_of_holding_it() {
    let (url, accepted) = hung_endpoint().await;
    let settings = AwsSettings {
        endpoint_url: Some(url.clone()),
        attempt_timeout: Duration::from_millis(300),
        ..AwsSettings::default()
    };
    let sdk = sdk_config(&settings).await;
    // Far above three attempts of 300 ms and their backoff; without attempt timeouts these calls
    // never end.
    let bound = Duration::from_secs(20);

    let registry = DynamoConnections::new(aws_sdk_dynamodb::Client::new(&sdk), "hung-connections");
    let read = tokio::time::timeout(bound, registry.in_room(Uuid::new_v4())).await.expect("the registry read ends");
    let read = read.expect_err("a hung DynamoDB fails the read").to_string();
    assert!(read.contains("timeout"), "the error says why: {read}");

    let urls: HashMap<_, _> = QueueName::ALL.into_iter().map(|q| (q, format!("{url}/000000000000/hung"))).collect();
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), urls);
    let sent =
        tokio::time::timeout(bound, queue.send(QueueName::Ai, "{}", Duration::ZERO)).await.expect("the send ends");
    assert!(sent.is_err(), "a hung SQS fails the send");

    let push = ApiGatewayPush::new(sdk, Some(url));
    let frame = mathia::ports::Frame::json(&ServerEvent::Pong);
    let pushed =
        tokio::time::timeout(bound, push.send(Recipient { id: &ConnectionId::new("c1"), endpoint: None }, &frame))
            .await
            .expect("the push ends");
    assert!(matches!(pushed, Err(PushError::Other(_))), "a hung management API fails the push, not as gone");

    // Each call reached the hung server, and each attempt that timed out was tried again.
    let attempts = accepted.load(Ordering::SeqCst);
    assert!(attempts >= 9, "three calls of three attempts each: {attempts} connections");
}

#[tokio::test]
async fn a_long_poll_outlasts_the_attempt_timeout() {
    let emu = Emulator::start().await;
    let urls = emu.create_resources("t6-", 3, 30).await;
    let settings = AwsSettings {
        endpoint_url: Some(emu.url.clone()),
        attempt_timeout: Duration::from_millis(500),
        ..AwsSettings::default()
    };
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&sdk_config(&settings).await), urls.clone());
    let started = Instant::now();
    let empty = queue
        .receive(QueueName::Reminders, 10, Duration::from_secs(2))
        .await
        .expect("an empty long poll is no timeout");
    assert!(empty.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(1500), "the emulator held the poll for its wait");

    // A message sent while a poll waits is received by it.
    let poll = tokio::spawn(async move { queue.receive(QueueName::Ai, 10, Duration::from_secs(3)).await });
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let sender = SqsQueue::new(aws_sdk_sqs::Client::new(&emu.sdk().await), urls);
    sender.send(QueueName::Ai, r#"{"hello":"poll"}"#, Duration::ZERO).await.unwrap();
    let got = poll.await.unwrap().expect("the poll ends with the message");
    assert_eq!(got.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(), vec![r#"{"hello":"poll"}"#]);
}
