//! Test harness: the real app on 127.0.0.1:0 against real Postgres (a fresh database per test,
//! dropped afterwards) and real Redis (keys under a fresh prefix), driven over real sockets.

use std::{net::SocketAddr, time::Duration};

use chrono::Utc;
use futures::{SinkExt, StreamExt};
use mathia::{
    Config,
    adapters::local::LocalPush,
    domain::{ConnectionId, Room},
    ports::ConnectionInfo,
};
use mathia_local::Local;
use serde_json::{Value, json};
use tokio::{net::TcpStream, sync::oneshot};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message};
use uuid::Uuid;

pub const WAIT: Duration = Duration::from_secs(10);

/// A connection as the registry keeps it, with no socket behind it in this test: in no room, no
/// session, held by the one gateway.
pub fn registry_entry(id: &str, user_id: Uuid, display_name: &str) -> ConnectionInfo {
    ConnectionInfo {
        id: ConnectionId::new(id),
        user_id,
        display_name: display_name.to_owned(),
        rooms: Default::default(),
        connected_at: Utc::now(),
        endpoint: None,
        session: None,
    }
}

pub fn postgres_base() -> String {
    std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub local: Local,
    pub api: Api,
    pub db_name: String,
    stop: Option<oneshot::Sender<()>>,
}

#[derive(Debug, Clone)]
pub struct TestUser {
    pub token: String,
    pub id: Uuid,
    pub email: String,
    pub name: String,
}

/// An HTTP and WebSocket client of a running Mathia: `mathia-local`, or the emulated
/// deployment (whose WebSocket is on another origin).
#[derive(Clone)]
pub struct Api {
    /// `http://host:port`, where the site and `/api` are.
    pub base: String,
    /// The WebSocket URL without its query.
    pub ws_base: String,
    pub http: reqwest::Client,
}

impl Api {
    pub fn new(base: String, ws_base: String) -> Self {
        Self { base, ws_base, http: reqwest::Client::new() }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post(&self, token: Option<&str>, path: &str, body: Value) -> reqwest::Response {
        let mut req = self.http.post(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request")
    }

    pub async fn get(&self, token: Option<&str>, path: &str) -> reqwest::Response {
        let mut req = self.http.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request")
    }

    pub async fn put(&self, token: &str, path: &str, body: Value) -> reqwest::Response {
        self.http.put(self.url(path)).bearer_auth(token).json(&body).send().await.expect("request")
    }

    /// Signs up and walks through onboarding, creating a workspace of their own.
    pub async fn register(&self, name: &str) -> TestUser {
        let user = self.register_only(name).await;
        self.onboard(&user, json!({"name": format!("{name}'s team")})).await;
        user
    }

    /// Onboarding's three steps; `workspace` is `{name}` or `{invite_code}`.
    pub async fn onboard(&self, user: &TestUser, workspace: Value) -> Value {
        let res = self
            .put(
                &user.token,
                "/api/onboarding/profile",
                json!({"display_name": user.name, "timezone": "Europe/Paris", "role": "engineer"}),
            )
            .await;
        assert_eq!(res.status(), 200, "profile");
        let res = self
            .put(
                &user.token,
                "/api/onboarding/goals",
                json!({"goals": ["ship the launch"], "focus": "quality", "tone": "concise"}),
            )
            .await;
        assert_eq!(res.status(), 200, "goals");
        let res = self.put(&user.token, "/api/onboarding/workspace", workspace).await;
        assert_eq!(res.status(), 200, "workspace");
        res.json().await.unwrap()
    }

    /// Signs up only: onboarding still to do.
    pub async fn register_only(&self, name: &str) -> TestUser {
        let email = format!("{}-{}@example.com", name.to_lowercase(), Uuid::new_v4().simple());
        let res = self
            .post(
                None,
                "/api/auth/register",
                json!({"email": email, "password": "correct horse battery", "display_name": name}),
            )
            .await;
        assert_eq!(res.status(), 201, "register {name}");
        let body: Value = res.json().await.unwrap();
        TestUser {
            token: body["token"].as_str().unwrap().to_owned(),
            id: body["user"]["id"].as_str().unwrap().parse().unwrap(),
            email,
            name: name.to_owned(),
        }
    }

    /// Ana's room "general" with Ben in it.
    pub async fn ana_and_ben(&self) -> (TestUser, TestUser, Uuid) {
        let ana = self.register("Ana").await;
        let ben = self.register("Ben").await;
        let room = self.create_room(&ana, "general").await;
        self.bring_in(&ana, room.id, &ben).await;
        (ana, ben, room.id)
    }

    pub async fn create_room(&self, owner: &TestUser, name: &str) -> Room {
        let res = self.post(Some(&owner.token), "/api/rooms", json!({ "name": name })).await;
        assert_eq!(res.status(), 201);
        res.json().await.unwrap()
    }

    pub async fn invite(&self, member: &TestUser, room_id: Uuid, body: Value) -> String {
        let res = self.post(Some(&member.token), &format!("/api/rooms/{room_id}/invites"), body).await;
        assert_eq!(res.status(), 201);
        let body: Value = res.json().await.unwrap();
        body["code"].as_str().unwrap().to_owned()
    }

    /// `owner` invites `guest` into the room and the guest accepts.
    pub async fn bring_in(&self, owner: &TestUser, room_id: Uuid, guest: &TestUser) {
        let code = self.invite(owner, room_id, json!({})).await;
        let res = self.post(Some(&guest.token), &format!("/api/invites/{code}/accept"), json!({})).await;
        assert_eq!(res.status(), 200);
    }

    pub async fn ticket(&self, user: &TestUser) -> String {
        let res = self.post(Some(&user.token), "/api/ws-ticket", json!({})).await;
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["expires_in_s"], 60);
        body["ticket"].as_str().unwrap().to_owned()
    }

    pub fn ws_url(&self, ticket: &str) -> String {
        format!("{}?ticket={ticket}", self.ws_base)
    }

    /// Opens a socket with a ticket: the socket, or the status the handshake was refused with.
    pub async fn open(&self, ticket: &str) -> Result<WsClient, u16> {
        match tokio_tungstenite::connect_async(self.ws_url(ticket)).await {
            Ok((stream, _)) => Ok(WsClient { stream }),
            Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Err(res.status().as_u16()),
            Err(e) => panic!("unexpected handshake error {e}"),
        }
    }

    /// Fetches `n` tickets for `user` first, then opens a socket with each in turn: the sockets
    /// that opened, and each handshake's status (101 for one that opened).
    pub async fn open_with_tickets(&self, user: &TestUser, n: usize) -> (Vec<WsClient>, Vec<u16>) {
        let mut tickets = Vec::new();
        for _ in 0..n {
            tickets.push(self.ticket(user).await);
        }
        let (mut open, mut statuses) = (Vec::new(), Vec::new());
        for ticket in &tickets {
            match self.open(ticket).await {
                Ok(ws) => {
                    open.push(ws);
                    statuses.push(101);
                }
                Err(status) => statuses.push(status),
            }
        }
        (open, statuses)
    }

    pub async fn ws(&self, user: &TestUser) -> WsClient {
        let ticket = self.ticket(user).await;
        let (stream, _) = tokio_tungstenite::connect_async(self.ws_url(&ticket)).await.expect("ws connects");
        WsClient { stream }
    }

    /// Opens a socket and joins the room; returns the socket and the `room_joined` event.
    pub async fn ws_in_room(&self, user: &TestUser, room_id: Uuid) -> (WsClient, Value) {
        let mut ws = self.ws(user).await;
        ws.send(json!({"action": "join_room", "room_id": room_id})).await;
        let joined = ws.recv_type("room_joined").await;
        (ws, joined)
    }
}

impl std::ops::Deref for TestApp {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> Self {
        Self::spawn_full(tweak, None).await
    }

    /// With a clock the test moves (reminders, mutes) instead of sleeping.
    pub async fn spawn_with_clock(clock: std::sync::Arc<mathia::adapters::local::ManualClock>) -> Self {
        Self::spawn_full(|_| {}, Some(clock)).await
    }

    pub async fn spawn_full(
        tweak: impl FnOnce(&mut Config),
        clock: Option<std::sync::Arc<mathia::adapters::local::ManualClock>>,
    ) -> Self {
        Self::spawn_gateway(tweak, clock, |_| {}).await
    }

    /// With the gateway's own settings changed too (`Local`: the management API's credentials,
    /// the per-socket frame budget).
    pub async fn spawn_gateway(
        tweak: impl FnOnce(&mut Config),
        clock: Option<std::sync::Arc<mathia::adapters::local::ManualClock>>,
        gateway: impl FnOnce(&mut Local),
    ) -> Self {
        if std::env::var_os("TEST_LOG").is_some() {
            mathia::telemetry::init_local();
        }
        let db_name = format!("mathia_test_{}", Uuid::new_v4().simple());
        let mut config = Config::for_database(&format!("{}/{db_name}", postgres_base()), rand::random());
        config.redis_url = redis_url();
        config.redis_prefix = format!("test:{}:", Uuid::new_v4().simple());
        if clock.is_some() {
            // With a moved clock the test runs the scheduler itself: a background tick would race it.
            config.scheduler_every = Duration::from_secs(3600);
        }
        tweak(&mut config);
        let clock = clock.map(|c| c as std::sync::Arc<dyn mathia::ports::Clock>);
        let mut local = Local::start(config, None, clock).await.expect("app starts");
        gateway(&mut local);
        Self::serve(local, db_name).await
    }

    /// An app that keeps socket tickets in Redis, as the functions and the emulated gateways do
    /// (built without `sole_process`), so a ticket it issues can be taken by a function binary;
    /// `spawn` keeps them in memory, as `mathia-local`. `tweak` changes the config first.
    pub async fn spawn_with_tickets_in_redis(tweak: impl FnOnce(&mut Config)) -> Self {
        let t = Self::spawn_gateway(tweak, None, |local| {
            local.app = mathia::App::builder(local.app.config.clone(), local.app.db.clone())
                .connections(local.app.connections.clone())
                .push(std::sync::Arc::new(local.push.clone()))
                .build()
                .unwrap();
        })
        .await;
        assert!(t.local.app.tickets.is_none());
        t
    }

    pub async fn serve(local: Local, db_name: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(local.clone().serve(listener, async move {
            let _ = stopped.await;
        }));
        let api = Api::new(format!("http://{addr}"), format!("ws://{addr}/ws"));
        Self { addr, local, api, db_name, stop: Some(stop) }
    }

    /// Mathia restarted on this test's database: this app stops serving, and a new one starts
    /// with the same settings and fresh memory (what `mathia-local` keeps only in memory is gone).
    pub async fn restarted(&mut self) -> Self {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let local = Local::start(self.local.app.config.clone(), None, None).await.expect("app restarts");
        Self::serve(local, self.db_name.clone()).await
    }

    pub fn push(&self) -> &LocalPush {
        &self.local.push
    }

    pub async fn db(&self) -> sqlx::PgPool {
        self.local.app.db.clone()
    }

    pub async fn message_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM messages").fetch_one(&self.local.app.db).await.unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        drop_database(self.db_name.clone());
        forget_redis_keys(self.local.app.config.redis_prefix.clone());
        // Each test's files went to a directory of its own under the temp dir.
        let _ = std::fs::remove_dir_all(&self.local.app.config.files_dir);
    }
}

/// Deletes a test's Redis keys (its prefix is its own), from a thread of its own: Drop cannot
/// await. Some have no expiry (moderation buffers), and many runs share one Redis.
pub fn forget_redis_keys(prefix: String) {
    let _ = std::thread::spawn(move || {
        let Ok(client) = redis::Client::open(redis_url()) else { return };
        let Ok(mut conn) = client.get_connection() else { return };
        let keys: Vec<String> = match redis::cmd("KEYS").arg(format!("{prefix}*")).query(&mut conn) {
            Ok(keys) => keys,
            Err(_) => return,
        };
        for chunk in keys.chunks(500) {
            let _: Result<(), _> = redis::cmd("DEL").arg(chunk).query(&mut conn);
        }
    })
    .join();
}

/// Drops a test's database, from a thread of its own: Drop cannot await.
pub fn drop_database(db_name: String) {
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            use sqlx::Connection;
            if let Ok(mut conn) = sqlx::PgConnection::connect(&format!("{}/postgres", postgres_base())).await {
                let _ = sqlx::query(&format!(r#"DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)"#))
                    .execute(&mut conn)
                    .await;
            }
        });
    })
    .join();
}

pub struct WsClient {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl WsClient {
    pub async fn send(&mut self, frame: Value) {
        self.stream.send(Message::text(frame.to_string())).await.expect("send");
    }

    pub async fn send_raw(&mut self, text: String) {
        self.stream.send(Message::text(text)).await.expect("send");
    }

    /// The next JSON event, within `WAIT`.
    pub async fn recv(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("an event within the wait")
                .expect("socket open")
                .expect("socket ok");
            match msg {
                Message::Text(t) => {
                    return serde_json::from_str(t.as_str()).expect("events are JSON");
                }
                Message::Close(c) => panic!("socket closed: {c:?}"),
                _ => continue,
            }
        }
    }

    /// The next event of this type, skipping others (presence, typing…).
    pub async fn recv_type(&mut self, ty: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let ev = tokio::time::timeout_at(deadline, self.recv()).await.unwrap_or_else(|_| panic!("no {ty} event"));
            if ev["type"] == ty {
                return ev;
            }
        }
    }

    /// Asserts that nothing but the listed types arrives for `quiet`.
    pub async fn expect_nothing_but(&mut self, allowed: &[&str], quiet: Duration) {
        let deadline = tokio::time::Instant::now() + quiet;
        // A socket that closes meanwhile hears nothing for the wrong reason: that fails too.
        while let Ok(next) = tokio::time::timeout_at(deadline, self.stream.next()).await {
            match next {
                Some(Ok(Message::Text(t))) => {
                    let ev: Value = serde_json::from_str(t.as_str()).unwrap();
                    assert!(allowed.contains(&ev["type"].as_str().unwrap_or("")), "unexpected event {ev}");
                }
                Some(Ok(Message::Close(c))) => panic!("the socket closed while listening: {c:?}"),
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("the socket failed while listening: {e}"),
                None => panic!("the socket ended while listening"),
            }
        }
    }

    /// The next `presence_update`, which must be `who`'s: their status and the room's count.
    pub async fn recv_presence_of(&mut self, who: &TestUser) -> (String, u64) {
        let ev = self.recv_type("presence_update").await;
        assert_eq!(ev["user_id"], serde_json::json!(who.id), "{ev}");
        (ev["status"].as_str().unwrap().to_owned(), ev["online_count"].as_u64().unwrap())
    }

    /// The socket still answers: `ping` → `pong`, skipping anything else on the way.
    pub async fn assert_alive(&mut self) {
        self.send(json!({"action": "ping"})).await;
        self.recv_type("pong").await;
    }

    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }

    /// The next event, which must be an `error`: nothing else may arrive before it.
    pub async fn recv_error(&mut self) -> Value {
        let ev = self.recv().await;
        assert_eq!(ev["type"], "error", "expected an error first, got {ev}");
        ev
    }

    /// A barrier: sends `ping` and reads up to its `pong`, failing on any event of the `banned`
    /// types on the way. Everything the server queued for this socket before it answered the
    /// ping is read by then.
    pub async fn none_of_before_pong(&mut self, banned: &[&str]) {
        self.send(json!({"action": "ping"})).await;
        loop {
            let ev = self.recv().await;
            let ty = ev["type"].as_str().unwrap_or("");
            assert!(!banned.contains(&ty), "unexpected event before the pong: {ev}");
            if ty == "pong" {
                return;
            }
        }
    }
}

/// Waits until `check` holds, polling, for at most `WAIT`: a bounded wait on something
/// observable instead of a fixed sleep.
pub async fn wait_until<F: std::future::Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "{what}: not within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A unique string for a test.
pub fn unique(tag: &str) -> String {
    format!("{tag}-{}", Uuid::new_v4().simple())
}
