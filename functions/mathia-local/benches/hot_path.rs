//! Criterion benches over real Postgres and Redis, through a served `mathia-local`:
//!
//! - `hot_path/new_message_fanout_10`: one `new_message` on a real socket, validated,
//!   rate-checked, encrypted, stored, acknowledged and delivered to the 10 sockets in the room;
//!   one iteration ends when the sender has its `ack` and all ten have the `new_message`.
//! - `history/page_50_store`: the newest 50 messages read and decrypted (the store call the
//!   history endpoint and `join_room` make).
//! - `history/page_50_http`: `GET /api/rooms/{id}/messages?limit=50` with a bearer token.
//!
//! Run: `cargo bench -p mathia-local --bench hot_path` (Postgres on 127.0.0.1:5432, Redis on
//! 127.0.0.1:6379; `TEST_POSTGRES_URL` / `TEST_REDIS_URL` override). A fresh database is created
//! and dropped. Results: bench/RESULTS.md.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use futures::{SinkExt, StreamExt};
use mathia::{
    adapters::postgres::messages::{self, Cursor},
    config::Config,
};
use mathia_local::Local;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message};
use uuid::Uuid;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

const MEMBERS: usize = 10;
const WAIT: Duration = Duration::from_secs(10);

struct Fixture {
    local: Local,
    base: String,
    http: reqwest::Client,
    room_id: Uuid,
    token: String,
    sockets: Vec<Socket>,
    db_name: String,
    postgres: String,
}

async fn post(http: &reqwest::Client, url: String, token: Option<&str>, body: Value) -> Value {
    let mut req = http.post(url).json(&body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.expect("request");
    assert!(res.status().is_success(), "{}", res.status());
    res.json().await.unwrap_or(Value::Null)
}

async fn put(http: &reqwest::Client, url: String, token: &str, body: Value) {
    let res = http.put(url).bearer_auth(token).json(&body).send().await.expect("request");
    assert!(res.status().is_success(), "{}", res.status());
}

async fn next_event(socket: &mut Socket) -> Value {
    loop {
        let msg = tokio::time::timeout(WAIT, socket.next()).await.expect("an event").expect("open").expect("ok");
        if let Message::Text(text) = msg {
            return serde_json::from_str(text.as_str()).expect("JSON");
        }
    }
}

async fn wait_for(socket: &mut Socket, ty: &str, client_msg_id: Option<&str>) {
    loop {
        let event = next_event(socket).await;
        if event["type"] == ty
            && client_msg_id.is_none_or(|c| event["client_msg_id"] == c || event["message"]["client_msg_id"] == c)
        {
            return;
        }
    }
}

async fn setup() -> Fixture {
    let postgres = std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let db_name = format!("mathia_bench_{}", Uuid::new_v4().simple());
    let mut config = Config::for_database(&format!("{postgres}/{db_name}"), rand::random());
    config.redis_url = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    config.redis_prefix = format!("bench:{db_name}:");
    config.rate_limit_per_min = 1_000_000;
    let local = Local::connect(config).await.expect("mathia starts");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(local.clone().serve(listener, std::future::pending()));

    let http = reqwest::Client::new();
    let mut tokens = Vec::new();
    let mut room_id = None;
    let mut invite = None;
    for i in 0..MEMBERS {
        let email = format!("member{i}-{}@example.com", Uuid::new_v4().simple());
        let body = json!({"email": email, "password": "correct horse battery", "display_name": format!("Member {i}")});
        let token =
            post(&http, format!("{base}/api/auth/register"), None, body).await["token"].as_str().unwrap().to_owned();
        put(
            &http,
            format!("{base}/api/onboarding/profile"),
            &token,
            json!({"display_name": format!("Member {i}"), "timezone": "UTC", "role": "engineer"}),
        )
        .await;
        put(
            &http,
            format!("{base}/api/onboarding/goals"),
            &token,
            json!({"goals": ["bench"], "focus": "speed", "tone": "concise"}),
        )
        .await;
        match &invite {
            None => {
                put(&http, format!("{base}/api/onboarding/workspace"), &token, json!({"name": "bench"})).await;
                let room = post(&http, format!("{base}/api/rooms"), Some(&token), json!({"name": "bench"})).await;
                let id: Uuid = room["id"].as_str().unwrap().parse().unwrap();
                let code =
                    post(&http, format!("{base}/api/rooms/{id}/invites"), Some(&token), json!({"max_uses": 100})).await
                        ["code"]
                        .as_str()
                        .unwrap()
                        .to_owned();
                room_id = Some(id);
                invite = Some(code);
            }
            Some(code) => {
                put(&http, format!("{base}/api/onboarding/workspace"), &token, json!({"name": format!("team {i}")}))
                    .await;
                post(&http, format!("{base}/api/invites/{code}/accept"), Some(&token), json!({})).await;
            }
        }
        tokens.push(token);
    }
    let room_id = room_id.unwrap();
    let mut sockets = Vec::new();
    for token in &tokens {
        let ticket = post(&http, format!("{base}/api/ws-ticket"), Some(token), json!({})).await["ticket"]
            .as_str()
            .unwrap()
            .to_owned();
        let ws = format!("{}/ws?ticket={ticket}", base.replacen("http", "ws", 1));
        let (mut socket, _) = tokio_tungstenite::connect_async(ws).await.expect("socket");
        socket.send(Message::text(json!({"action": "join_room", "room_id": room_id}).to_string())).await.unwrap();
        wait_for(&mut socket, "room_joined", None).await;
        sockets.push(socket);
    }
    // Presence updates from later joins are still queued on earlier sockets: drain them.
    for socket in &mut sockets {
        while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(200), socket.next()).await {}
    }
    Fixture { local, base, http, room_id, token: tokens.swap_remove(0), sockets, db_name, postgres }
}

/// One message through the whole hot path; returns when all members have it.
async fn send_one(f: &mut Fixture, n: u64) {
    let cmid = format!("bench-{n}-{}", Uuid::new_v4().simple());
    let frame = json!({"action": "new_message", "room_id": f.room_id, "body": format!("message number {n} of the bench"), "client_msg_id": cmid});
    f.sockets[0].send(Message::text(frame.to_string())).await.unwrap();
    wait_for(&mut f.sockets[0], "ack", Some(&cmid)).await;
    for socket in &mut f.sockets {
        wait_for(socket, "new_message", Some(&cmid)).await;
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let mut f = rt.block_on(setup());
    let mut c = Criterion::default().configure_from_args();

    let mut group = c.benchmark_group("hot_path");
    group.throughput(Throughput::Elements(1));
    let mut n = 0u64;
    group.bench_function("new_message_fanout_10", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    n += 1;
                    send_one(&mut f, n).await;
                }
                start.elapsed()
            })
        })
    });
    group.finish();

    // At least 50 messages are stored by now (the hot path's warm-up alone sends more).
    rt.block_on(async {
        for i in 0..60 {
            send_one(&mut f, 1_000_000 + i).await;
        }
    });
    let mut group = c.benchmark_group("history");
    group.bench_function("page_50_store", |b| {
        b.to_async(&rt).iter(|| async {
            let page = messages::page(&f.local.app.db, &f.local.app.keyring, f.room_id, Cursor::Latest, 50)
                .await
                .expect("a page");
            assert_eq!(page.messages.len(), 50);
        })
    });
    let url = format!("{}/api/rooms/{}/messages?limit=50", f.base, f.room_id);
    group.bench_function("page_50_http", |b| {
        b.to_async(&rt).iter(|| async {
            let res = f.http.get(&url).bearer_auth(&f.token).send().await.expect("request");
            assert_eq!(res.status(), 200);
            let body: Value = res.json().await.expect("JSON");
            assert_eq!(body["messages"].as_array().map(Vec::len), Some(50));
        })
    });
    group.finish();
    c.final_summary();

    let (postgres, db_name) = (f.postgres.clone(), f.db_name.clone());
    drop(f);
    rt.block_on(async move {
        use sqlx::Connection;
        if let Ok(mut conn) = sqlx::PgConnection::connect(&format!("{postgres}/postgres")).await {
            let _ =
                sqlx::query(&format!("DROP DATABASE IF EXISTS \"{db_name}\" WITH (FORCE)")).execute(&mut conn).await;
        }
    });
}
