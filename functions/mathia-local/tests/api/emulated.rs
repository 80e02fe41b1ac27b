//! The emulated deployment: `mathia-local emulate` on moto, where every HTTP request, WebSocket
//! event and queue job goes through the function binaries on `MATHIA_BACKEND=aws`.

use std::{process::Stdio, time::Duration};

use base64::Engine;
use futures::StreamExt;
use mathia::{adapters::aws::DynamoConnections, domain::ConnectionId, ports::Connections};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};
use uuid::Uuid;

use crate::{
    emulator::{Emulator, repo_root},
    files::{declare, file_message, png},
    helpers::{Api, TestUser, drop_database, forget_redis_keys, postgres_base, redis_url, registry_entry},
    runtime::binary,
};

/// The Redis key prefix of a stack's functions.
fn redis_prefix(db_name: &str) -> String {
    format!("emu:{db_name}:")
}

/// A running emulated stack, on its own moto, database and Redis prefix.
pub struct Stack {
    pub api: Api,
    pub moto: Emulator,
    pub table: String,
    child: Child,
    db_name: String,
}

impl std::ops::Deref for Stack {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SIGTERM: the emulator stops its function instances before it exits.
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
            std::thread::sleep(Duration::from_millis(300));
        }
        let _ = self.child.start_kill();
        drop_database(self.db_name.clone());
        forget_redis_keys(redis_prefix(&self.db_name));
    }
}

/// The database (and Redis keys) of a stack still starting: dropped with this, unless the stack
/// took them over.
struct Unstarted(Option<String>);

impl Drop for Unstarted {
    fn drop(&mut self) {
        if let Some(db_name) = self.0.take() {
            forget_redis_keys(redis_prefix(&db_name));
            drop_database(db_name);
        }
    }
}

impl Stack {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Starts with more environment variables for the emulator and its function instances.
    pub async fn start_with(extra_env: &[(&str, &str)]) -> Self {
        let moto = Emulator::start().await;
        let db_name = format!("mathia_emu_{}", Uuid::new_v4().simple());
        // Until the stack exists to clean up after itself, a start that fails leaves nothing.
        let mut unstarted = Unstarted(Some(db_name.clone()));
        let prefix = format!("e{}-", &Uuid::new_v4().simple().to_string()[..8]);
        let table = format!("{prefix}connections");
        let key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
        let mut child = Command::new(binary("mathia-local"))
            .arg("emulate")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("MATHIA_BIND", "127.0.0.1:0")
            .env("MATHIA_EMULATOR_WS_BIND", "127.0.0.1:0")
            .env("MATHIA_EMULATOR_AWS_BIND", "127.0.0.1:0")
            .env("AWS_ENDPOINT_URL", &moto.url)
            .env("DATABASE_URL", format!("{}/{db_name}", postgres_base()))
            .env("REDIS_URL", redis_url())
            .env("MATHIA_REDIS_PREFIX", redis_prefix(&db_name))
            .env("MATHIA_MASTER_KEY", key)
            .env("MATHIA_SCHEDULER_INTERVAL_S", "1")
            .env("MATHIA_CONNECTIONS_TABLE", &table)
            .env("MATHIA_QUEUE_PREFIX", &prefix)
            .env("MATHIA_FILES_BUCKET", format!("{prefix}files"))
            .env("MATHIA_STATIC_DIR", repo_root().join("static"))
            .env("RUST_LOG", "warn")
            .envs(extra_env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("the emulator starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(rest) = line.strip_prefix("mathia emulate: site ") {
                    let (site, ws) = rest.split_once(" websocket ").unwrap();
                    return (site.to_owned(), ws.to_owned());
                }
            }
            panic!("the emulator stopped before it was ready");
        })
        .await
        .expect("the emulator is ready within a minute");
        // Keep reading, so the functions' logs never block on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let (site, ws) = ready;
        unstarted.0 = None;
        let stack = Self { api: Api::new(site, ws.clone()), moto, table, child, db_name };
        let config: Value = stack.get(None, "/api/config").await.json().await.unwrap();
        assert_eq!(config["ws_url"], json!(ws), "the site tells browsers where the WebSocket is");
        stack
    }

    pub async fn invocations(&self) -> Value {
        self.get(None, "/_emulator/invocations").await.json().await.unwrap()
    }

    /// The process ids of a function's running instances (children of the emulator).
    pub fn instances(&self, function: &str) -> Vec<u32> {
        let Some(pid) = self.child.id() else { return Vec::new() };
        // Each thread lists the children it started.
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).map(|d| d.flatten().collect()).unwrap_or(Vec::new());
        let children: Vec<String> =
            tasks.iter().filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok()).collect();
        children
            .iter()
            .flat_map(|c| c.split_whitespace())
            .filter_map(|c| c.parse::<u32>().ok())
            .filter(|c| {
                std::fs::read_link(format!("/proc/{c}/exe"))
                    .is_ok_and(|exe| exe.file_name().is_some_and(|n| n.to_string_lossy() == function))
            })
            .collect()
    }

    pub async fn stats(&self) -> Value {
        self.get(None, "/_emulator/stats").await.json().await.unwrap()
    }

    /// Fires the scheduler's rule now (`POST /_emulator/schedule`): what its tick did.
    pub async fn tick(&self) -> Value {
        let answer = self.post(None, "/_emulator/schedule", json!({})).await;
        assert_eq!(answer.status(), 200, "the scheduler ran");
        answer.json().await.unwrap()
    }

    /// A key of this stack's Redis prefix, as the functions name it.
    pub fn redis_key(&self, suffix: &str) -> String {
        format!("{}{suffix}", redis_prefix(&self.db_name))
    }

    async fn registry(&self) -> DynamoConnections {
        DynamoConnections::new(aws_sdk_dynamodb::Client::new(&self.moto.sdk().await), &self.table)
    }
}

/// Waits (bounded) until `check` holds.
async fn eventually<F: std::future::Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "{what} did not happen within 30 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn every_function_serves_its_part_of_a_chat() {
    let s = Stack::start().await;
    let ana = s.register("Ana").await;
    let ben = s.register("Ben").await;
    let eve = s.register("Eve").await;
    let room = s.create_room(&ana, "launch").await;
    s.bring_in(&ana, room.id, &ben).await;

    let (mut a, joined) = s.ws_in_room(&ana, room.id).await;
    assert_eq!(joined["room_id"], json!(room.id));
    let (mut b, _) = s.ws_in_room(&ben, room.id).await;

    // A connection API Gateway has already dropped, still in the registry: the first frame sent
    // to it gets 410, and the function forgets it.
    let registry = s.registry().await;
    let ghost = ConnectionId::new("gone-connection=");
    registry.register(registry_entry("gone-connection=", ben.id, "Ben")).await.unwrap();
    assert!(registry.join(&ghost, room.id).await.unwrap());

    a.send(json!({"action": "new_message", "room_id": room.id, "body": "hello from Lambda", "client_msg_id": "m1"}))
        .await;
    assert_eq!(a.recv_type("ack").await["client_msg_id"], "m1");
    let got = b.recv_type("new_message").await;
    assert_eq!(got["message"]["body"], "hello from Lambda");
    eventually("the gone connection is forgotten", || async { registry.get(&ghost).await.unwrap().is_none() }).await;
    assert!(s.stats().await["management_api"]["gone"].as_u64().unwrap() >= 1);

    // The assistant streams from ai-worker; a reminder comes back through reminder-worker.
    a.send(json!({"action": "new_message", "room_id": room.id, "body": "@mathia hello there", "client_msg_id": "m2"}))
        .await;
    let end = b.recv_type("ai_stream_end").await;
    assert_eq!(end["message"]["kind"], "ai");
    a.send(json!({"action": "new_message", "room_id": room.id,
        "body": "@mathia remind me to stretch in 2 seconds", "client_msg_id": "m3"}))
        .await;
    let reminder = a.recv_type("reminder").await;
    assert_eq!(reminder["reminder"]["text"], "stretch");

    // A file goes to S3 through a presigned URL; members get a link, others do not.
    let bytes = png();
    let res = declare(&s, &ana, room.id, "plan.png", bytes.len()).await;
    assert_eq!(res.status(), 201);
    let declared: Value = res.json().await.unwrap();
    let upload_url = declared["upload_url"].as_str().unwrap();
    assert!(upload_url.contains("/pending/"), "uploads go straight to the bucket: {upload_url}");
    let put = s.http.put(upload_url).header("content-type", "image/png").body(bytes.clone()).send().await.unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    let file_id = declared["file_id"].as_str().unwrap();
    assert_eq!(file_message(&mut a, room.id, file_id, "f1").await["type"], "ack");
    let shared = loop {
        let ev = b.recv_type("new_message").await;
        if ev["message"]["attachment"].is_object() {
            break ev;
        }
    };
    let link_path = shared["message"]["attachment"]["url"].as_str().unwrap().to_owned();
    let link = |user: &TestUser| {
        s.http.get(s.url(&link_path)).bearer_auth(&user.token).header("accept", "application/json").send()
    };
    let granted: Value = link(&ben).await.unwrap().json().await.unwrap();
    assert!(granted["url"].is_string(), "{link_path}: {granted}");
    let download = s.http.get(granted["url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(download.status(), 200);
    assert_eq!(download.bytes().await.unwrap().as_ref(), bytes.as_slice());
    let refused = link(&eve).await.unwrap();
    assert!(refused.status() == 403 || refused.status() == 404, "{}", refused.status());

    // A rename goes from the http function to the DynamoDB registry and the room's sockets.
    let res = s
        .put(&ana.token, "/api/onboarding/profile", json!({"display_name": "Ana Lima", "timezone": "Europe/Paris"}))
        .await;
    assert_eq!(res.status(), 200);
    let renamed = loop {
        let ev = b.recv_type("presence_update").await;
        if ev["user_id"] == json!(ana.id) {
            break ev;
        }
    };
    assert_eq!(renamed["display_name"], "Ana Lima", "{renamed}");
    a.send(json!({"action": "typing", "room_id": room.id, "typing": true})).await;
    assert_eq!(b.recv_type("typing").await["display_name"], "Ana Lima");

    // A closed socket reaches ws-disconnect, which drops it from the registry.
    b.close().await;
    eventually("ws-disconnect forgets Ben's socket", || async {
        s.registry().await.of_user(ben.id).await.unwrap().iter().all(|c| c.id.as_str().starts_with("gone"))
    })
    .await;
    a.assert_alive().await;

    // Moderation runs in batches from the scheduler's flush; every function has now served.
    eventually("every function is invoked", || async {
        let counts = s.invocations().await;
        let all = counts.as_object().unwrap();
        all.len() == 8 && all.values().all(|n| n.as_u64().unwrap() > 0)
    })
    .await;
    let counts = s.invocations().await;
    assert!(counts["ws-connect"].as_u64().unwrap() >= 2, "{counts}");
    assert!(counts["ws-message"].as_u64().unwrap() >= 6, "{counts}");
    // What the functions asked of AWS, counted on the way.
    let calls = &s.stats().await["aws_calls"];
    for op in ["dynamodb.PutItem", "dynamodb.Query", "sqs.SendMessage", "s3.PUT", "s3.GET"] {
        assert!(calls[op].as_u64().unwrap_or(0) > 0, "{op}: {calls}");
    }
}

#[tokio::test]
async fn the_management_api_wants_the_functions_credentials() {
    let s = Stack::start().await;
    let ana = s.register("Ana").await;
    let room = s.create_room(&ana, "keys").await;
    let (mut a, _) = s.ws_in_room(&ana, room.id).await;
    let connection = s.registry().await.of_user(ana.id).await.unwrap().pop().expect("Ana's connection").id;
    let management = format!("{}/@connections/", s.ws_base.replacen("ws://", "http://", 1));

    // Unsigned: refused, and nothing reaches the socket.
    let unsigned = s.http.post(format!("{management}{}", connection.as_str())).body(r#"{"type":"forged"}"#).send();
    assert_eq!(unsigned.await.unwrap().status(), 403);

    // Signed with other credentials: refused too.
    let sdk = |key: &str, secret: &str| {
        aws_config::SdkConfig::builder()
            .region(aws_config::Region::new("us-east-1"))
            .behavior_version(aws_config::BehaviorVersion::latest())
            .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new(key, secret, None, None, "test"),
            ))
            .endpoint_url(management.trim_end_matches("/@connections/"))
            .build()
    };
    let post = |sdk: aws_config::SdkConfig, body: &'static str| {
        let id = connection.as_str().to_owned();
        async move {
            aws_sdk_apigatewaymanagement::Client::new(&sdk)
                .post_to_connection()
                .connection_id(id)
                .data(aws_sdk_apigatewaymanagement::primitives::Blob::new(body))
                .send()
                .await
        }
    };
    let wrong = post(sdk("test", "not-the-secret"), r#"{"type":"forged"}"#).await;
    assert!(wrong.is_err(), "a wrong secret is refused");
    a.expect_nothing_but(&["presence", "typing"], Duration::from_millis(300)).await;

    // The functions' credentials: delivered.
    post(sdk("test", "test"), r#"{"type":"from_the_api"}"#).await.expect("a signed post is accepted");
    assert_eq!(a.recv_type("from_the_api").await["type"], "from_the_api");
    assert!(s.stats().await["management_api"]["forbidden"].as_u64().unwrap() >= 2);

    // GetConnection and DeleteConnection, as the AWS SDK calls them: the socket is closed, its
    // $disconnect forgets it, and a frame to it is then 410 Gone.
    let client = aws_sdk_apigatewaymanagement::Client::new(&sdk("test", "test"));
    let info = client.get_connection().connection_id(connection.as_str()).send().await.expect("GetConnection");
    assert!(info.connected_at().is_some() && info.identity().is_some(), "{info:?}");
    client.delete_connection().connection_id(connection.as_str()).send().await.expect("DeleteConnection");
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match a.stream.next().await {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            }
        }
    });
    closed.await.expect("the gateway closes the deleted connection");
    let registry = s.registry().await;
    eventually("ws-disconnect forgets it", || async { registry.get(&connection).await.unwrap().is_none() }).await;
    let gone = post(sdk("test", "test"), r#"{"type":"too_late"}"#).await.unwrap_err();
    assert!(gone.as_service_error().is_some_and(|e| e.is_gone_exception()), "{gone:?}");
}

/// Runs a function binary with `env` and returns its exit status and what it wrote to stderr.
async fn start_function(name: &str, env: &[(&str, String)]) -> (std::process::ExitStatus, String) {
    let mut command = Command::new(binary(name));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        // A Runtime API that is never reached: the function must stop before it asks.
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("MATHIA_MASTER_KEY", base64::engine::general_purpose::STANDARD.encode([7u8; 32]))
        .env("MATHIA_BACKEND", "aws")
        .env("AWS_REGION", "us-east-1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(30), command.output()).await.expect("it stops").unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
    (out.status, text)
}

#[tokio::test]
async fn a_function_missing_a_resource_refuses_to_start_and_names_it() {
    let moto = Emulator::start().await;
    let db = format!("{}/mathia_test_{}", postgres_base(), Uuid::new_v4().simple());
    let complete = |skip: &str| {
        [
            ("AWS_ENDPOINT_URL", moto.url.clone()),
            ("DATABASE_URL", db.clone()),
            ("MATHIA_CONNECTIONS_TABLE", "t-connections".to_owned()),
            ("MATHIA_QUEUE_PREFIX", "t-".to_owned()),
            ("MATHIA_FILES_BUCKET", "t-files".to_owned()),
            ("MATHIA_WS_ENDPOINT", "http://127.0.0.1:9/prod".to_owned()),
        ]
        .into_iter()
        .filter(|(k, _)| *k != skip)
        .collect::<Vec<_>>()
    };

    for missing in ["MATHIA_FILES_BUCKET", "MATHIA_CONNECTIONS_TABLE", "MATHIA_WS_ENDPOINT"] {
        let (status, text) = start_function("ws-message", &complete(missing)).await;
        assert!(!status.success(), "{missing}: {text}");
        assert!(text.contains(missing), "the error names {missing}: {text}");
    }
    // Every variable set, but no queue of that name exists.
    let (status, text) = start_function("ai-worker", &complete("")).await;
    assert!(!status.success(), "{text}");
    assert!(text.contains("t-ai"), "the error names the queue: {text}");
    drop_database(db.rsplit('/').next().unwrap().to_owned());
}

#[tokio::test]
async fn warm_instances_are_reused_and_a_crashed_one_is_replaced() {
    let s = Stack::start().await;
    let cold = |stats: &Value| stats["functions"]["http-api"]["cold_starts"].as_u64().unwrap();
    for _ in 0..5 {
        assert_eq!(s.get(None, "/healthz").await.status(), 200);
    }
    let stats = s.stats().await;
    assert_eq!(cold(&stats), 1, "one instance served five requests in turn: {stats}");
    let instances = s.instances("http-api");
    assert_eq!(instances.len(), 1, "{instances:?}");

    // The instance dies between two requests: the next request starts a new one.
    std::process::Command::new("kill").args(["-KILL", &instances[0].to_string()]).status().unwrap();
    // Gone once reaped (a zombie still has its /proc entry): the emulator has seen it die.
    let dead = format!("/proc/{}", instances[0]);
    eventually("the dead instance is reaped", || async { !std::path::Path::new(&dead).exists() }).await;
    assert_eq!(s.get(None, "/healthz").await.status(), 200);
    assert_eq!(cold(&s.stats().await), 2);
    let replaced = s.instances("http-api");
    assert_eq!(replaced.len(), 1);
    assert_ne!(replaced[0], instances[0]);

    // Requests at once get instances of their own, up to the concurrency.
    let requests = (0..12).map(|_| s.get(None, "/healthz"));
    for res in futures::future::join_all(requests).await {
        assert_eq!(res.status(), 200);
    }
    assert!(cold(&s.stats().await) >= 3, "concurrent requests started more instances");
}

/// On Lambda each frame is an invocation and no process holds the socket: its frame budget is
/// kept in Redis per connection, and a flood is dropped with at most one `rate_limited` a second
/// while the socket stays open.
#[tokio::test]
async fn a_flooding_socket_is_throttled_on_lambda_too() {
    let s = Stack::start_with(&[("MATHIA_WS_FRAMES_PER_S", "2"), ("MATHIA_WS_FRAME_BURST", "5")]).await;
    let ana = s.register("Ana").await;
    let mut a = s.ws(&ana).await;
    const FRAMES: usize = 40;
    let started = tokio::time::Instant::now();
    for _ in 0..FRAMES {
        a.send(json!({"action": "ping"})).await;
    }
    let (mut pongs, mut errors) = (0usize, Vec::new());
    while let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_millis(1500), a.stream.next()).await {
        if let tokio_tungstenite::tungstenite::Message::Text(text) = msg {
            let ev: Value = serde_json::from_str(text.as_str()).unwrap();
            match ev["type"].as_str() {
                Some("pong") => pongs += 1,
                Some("error") => errors.push(ev),
                _ => panic!("unexpected {ev}"),
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    // 5 at once, then 2 a second.
    assert!(pongs as f64 <= 5.0 + 2.0 * seconds + 1.0, "{pongs} of {FRAMES} pings served in {seconds:.1} s");
    assert!(pongs >= 5, "the burst is served: {pongs} pongs");
    assert!(!errors.is_empty(), "frames over the budget are answered with rate_limited");
    assert!(errors.len() as f64 <= seconds + 1.0, "{} errors in {seconds:.1} s: the error floods too", errors.len());
    for e in &errors {
        assert_eq!(e["code"], "rate_limited", "{e}");
        assert!(e["retry_after_ms"].as_u64().is_some_and(|ms| ms > 0 && ms <= 1000), "{e}");
    }
    // The budget refills: the socket is served again.
    let mut served = false;
    for _ in 0..10 {
        a.send(json!({"action": "ping"})).await;
        if let Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text)))) =
            tokio::time::timeout(Duration::from_secs(1), a.stream.next()).await
            && serde_json::from_str::<Value>(text.as_str()).unwrap()["type"] == "pong"
        {
            served = true;
            break;
        }
    }
    assert!(served, "the socket is served again once its budget refills");
}

/// On Lambda an address's welcome credits are counted in Postgres, whichever function instance
/// serves the workspace step: past the day's bound a workspace is made without one.
#[tokio::test]
async fn welcome_credits_from_one_address_are_bounded_on_lambda_too() {
    let s = Stack::start_with(&[("MATHIA_WELCOME_CREDITS_PER_ADDRESS_PER_DAY", "1")]).await;
    let mut balances = Vec::new();
    for name in ["Ana", "Ben", "Cat"] {
        let user = s.register_only(name).await;
        let done = s.onboard(&user, json!({"name": format!("{name}'s team")})).await;
        let path = format!("/api/wallet?workspace_id={}", done["workspace"]["id"].as_str().unwrap());
        let wallet: Value = s.get(Some(&user.token), &path).await.json().await.unwrap();
        balances.push(wallet["balance_cents"].as_i64().unwrap());
    }
    assert_eq!(balances, [500, 0, 0]);
}

/// On Lambda too one person's sockets are bounded: `ws-connect` counts them in DynamoDB and
/// refuses past the bound (429 at the handshake), `http-api` refuses the ticket with
/// `too_many_sockets`, and a socket that goes makes room for one.
#[tokio::test]
async fn one_persons_sockets_are_bounded_on_lambda_too() {
    let s = Stack::start_with(&[("MATHIA_SOCKETS_PER_PERSON", "2")]).await;
    let (ana, bob) = (s.register("Ana").await, s.register("Bob").await);
    let (mut open, statuses) = s.open_with_tickets(&ana, 3).await;
    assert_eq!(statuses, [101, 101, 429]);
    let registry = s.registry().await;
    assert_eq!(registry.of_user(ana.id).await.unwrap().len(), 2, "the refused socket was not kept");
    let res = s.post(Some(&ana.token), "/api/ws-ticket", json!({})).await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().get("retry-after").is_some());
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "too_many_sockets");
    let mut b = s.ws(&bob).await;
    b.assert_alive().await;
    for ws in &mut open {
        ws.assert_alive().await;
    }
    open.pop().unwrap().close().await;
    eventually("the closed socket is forgotten", || async { registry.of_user(ana.id).await.unwrap().len() == 1 }).await;
    let ticket = s.ticket(&ana).await;
    s.open(&ticket).await.expect("room for one more").assert_alive().await;
}

/// Who is in a room is read once per presence change: on a join, the room read after joining is
/// both what `room_joined` lists and who hears `online`; on a departure, the room read after the
/// socket is forgotten both shows the person gone and is who hears `offline`. A room of a thousand
/// emptying reads a million registry items, not two million.
#[tokio::test]
async fn a_presence_change_reads_the_room_once() {
    let s = Stack::start().await;
    let (ana, ben) = (s.register("Ana").await, s.register("Ben").await);
    let room = s.create_room(&ana, "reads").await;
    s.bring_in(&ana, room.id, &ben).await;
    let (mut a, _) = s.ws_in_room(&ana, room.id).await;
    let mut b = s.ws(&ben).await;
    // The registry's queries the functions made, and the function invocations that ended.
    let queries = || async { s.stats().await["aws_calls"]["dynamodb.Query"].as_u64().unwrap_or(0) };
    let s = &s;
    let ended = |function: &'static str| async move { s.invocations().await[function].as_u64().unwrap_or(0) };
    let (queries_before, messages_before) = (queries().await, ended("ws-message").await);

    b.send(json!({"action": "join_room", "room_id": room.id})).await;
    assert_eq!(b.recv_type("room_joined").await["online_count"], 2);
    let online = a.recv_type("presence_update").await;
    assert_eq!(
        (online["user_id"].clone(), online["status"].clone(), online["online_count"].clone()),
        (json!(ben.id), json!("online"), json!(2))
    );
    eventually("the join's invocation ends", || async { ended("ws-message").await == messages_before + 1 }).await;
    // The socket's entry (for the frame, and again by the registry's join, which adds nothing for
    // a socket already forgotten), then the room before the join (was the person here already?)
    // and once after it.
    assert_eq!(queries().await - queries_before, 4, "{}", s.stats().await["aws_calls"]);

    let (queries_before, departures_before) = (queries().await, ended("ws-disconnect").await);
    b.close().await;
    let offline = a.recv_type("presence_update").await;
    assert_eq!(
        (offline["user_id"].clone(), offline["status"].clone(), offline["online_count"].clone()),
        (json!(ben.id), json!("offline"), json!(1))
    );
    eventually("the departure's invocation ends", || async { ended("ws-disconnect").await == departures_before + 1 })
        .await;
    // The socket's entries (to write its departure down, and again to forget them), then the
    // room once.
    assert_eq!(queries().await - queries_before, 3, "{}", s.stats().await["aws_calls"]);
    a.assert_alive().await;
}

/// On Lambda a presence change past the person's budget waits in Redis for the `scheduler`
/// function, which reads the room from DynamoDB: a departure that raced its arrival being kept
/// as heard is told at the next tick, and an arrival past the budget once the minute has passed.
#[tokio::test]
async fn presence_past_the_budget_is_told_by_the_scheduler_on_lambda_too() {
    // The rule's own rate never fires here: the test fires it.
    let s = Stack::start_with(&[("MATHIA_SCHEDULER_INTERVAL_S", "3600")]).await;
    let (ana, ben) = (s.register("Ana").await, s.register("Ben").await);
    let room = s.create_room(&ana, "budget").await;
    s.bring_in(&ana, room.id, &ben).await;
    let (mut b, _) = s.ws_in_room(&ben, room.id).await;
    // Frames served so far (each an invocation of `ws-message`), counted as they end.
    let st = &s;
    let served = |n: u64| async move {
        eventually(&format!("{n} frames are served"), || async {
            st.invocations().await["ws-message"].as_u64().unwrap_or(0) == n
        })
        .await
    };
    let (join, leave) =
        (json!({"action": "join_room", "room_id": room.id}), json!({"action": "leave_room", "room_id": room.id}));

    // Ana's 20 changes of the minute, each heard before the next (on Lambda each frame is an
    // invocation of its own); she ends away.
    let (mut a, _) = s.ws_in_room(&ana, room.id).await;
    assert_eq!(b.recv_presence_of(&ana).await, ("online".into(), 2));
    let first_change = tokio::time::Instant::now();
    for _ in 0..9 {
        a.send(leave.clone()).await;
        assert_eq!(b.recv_presence_of(&ana).await, ("offline".into(), 1));
        a.send(join.clone()).await;
        assert_eq!(b.recv_presence_of(&ana).await, ("online".into(), 2));
    }
    a.send(leave.clone()).await;
    assert_eq!(b.recv_presence_of(&ana).await, ("offline".into(), 1));

    // Past the budget she comes and goes untold; the tick finds her gone and the room never
    // heard her come, so it tells nothing. (Two joins, then 19 changes: 21 frames so far.)
    a.send(join.clone()).await;
    a.recv_type("room_joined").await;
    a.send(leave.clone()).await;
    served(23).await;
    let report = s.tick().await;
    assert_eq!((&report["arrivals_told"], &report["departures_told"]), (&json!(0), &json!(0)), "{report}");
    b.none_of_before_pong(&["presence_update"]).await;

    // Again, but the room has her arrival as heard once her departure has looked for it (as when
    // the two race): the next tick tells the departure, whatever the budget, once.
    a.send(join.clone()).await;
    a.recv_type("room_joined").await;
    a.send(leave.clone()).await;
    served(26).await; // and Ben's ping
    let mut redis = redis::Client::open(redis_url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let heard_key = s.redis_key(&format!("presence-heard:{}:{}", room.id, ana.id));
    let _: () = redis::AsyncCommands::set_ex(&mut redis, heard_key, 1, 86_400).await.unwrap();
    let report = s.tick().await;
    assert_eq!((&report["arrivals_told"], &report["departures_told"]), (&json!(0), &json!(1)), "{report}");
    assert_eq!(b.recv_presence_of(&ana).await, ("offline".into(), 1));
    let report = s.tick().await;
    assert_eq!((&report["arrivals_told"], &report["departures_told"]), (&json!(0), &json!(0)), "{report}");

    // An arrival past the budget is told by the first tick after her first change's minute.
    a.send(join.clone()).await;
    a.recv_type("room_joined").await;
    served(27).await;
    assert_eq!(s.tick().await["arrivals_told"], 0);
    tokio::time::sleep_until(first_change + Duration::from_secs(61)).await;
    assert_eq!(s.tick().await["arrivals_told"], 1);
    assert_eq!(b.recv_presence_of(&ana).await, ("online".into(), 2));
    assert_eq!(s.tick().await["arrivals_told"], 0);
    b.none_of_before_pong(&["presence_update"]).await;
}
