//! The search benchmark (not a test; `#[ignore]`d): a room of `SEARCH_BENCH_MESSAGES` (100,000)
//! messages sealed and indexed through the real keyring and `messages::store` (batches of 500,
//! the group commit's statement), then searches of common and rare words over HTTP, timed end to
//! end. `bash bench/search.sh` runs it and writes the figures into `bench/RESULTS.md`.
//!
//! Bodies are ten words each: "project" in half the messages, "deploy" in a fifth, the rest drawn
//! from 5,000 words with a Zipf-like skew, and "zanzibar" in ten messages only.

use std::time::{Duration, Instant};

use chrono::Utc;
use mathia::{
    adapters::postgres::messages::{self, NewMessage},
    domain::MessageKind,
};

use crate::helpers::TestApp;

const BATCH: usize = 500;
const RUNS: usize = 60;

/// A small deterministic generator (xorshift), so every run seeds the same room.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn body(rng: &mut Rng, i: usize, total: usize) -> String {
    let mut words: Vec<String> = Vec::with_capacity(12);
    if rng.unit() < 0.5 {
        words.push("project".into());
    }
    if rng.unit() < 0.2 {
        words.push("deploy".into());
    }
    if i % (total / 10).max(1) == 7 {
        words.push("zanzibar".into());
    }
    while words.len() < 10 {
        // Zipf-like: rank = 5000^u, so low ranks are common.
        let rank = 5000f64.powf(rng.unit()) as u64;
        words.push(format!("word{rank}"));
    }
    words.join(" ")
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::test]
#[ignore = "a benchmark: bash bench/search.sh"]
async fn search_bench() {
    let total: usize = std::env::var("SEARCH_BENCH_MESSAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let t = TestApp::spawn_with(|c| c.rate_limit_per_min = 1_000_000).await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "big").await;
    let app = &t.local.app;

    let seeding = Instant::now();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut i = 0;
    while i < total {
        let n = BATCH.min(total - i);
        let batch: Vec<NewMessage> = (i..i + n)
            .map(|j| NewMessage {
                room_id: room.id,
                kind: MessageKind::User,
                author_id: Some(ana.id),
                body: body(&mut rng, j, total),
                client_msg_id: None,
                require_member: None,
                at: Utc::now(),
                reply_to: None,
                stopped: false,
                attachment_id: None,
            })
            .collect();
        messages::store(&app.db, &app.keyring, &batch).await.expect("stored");
        i += n;
    }
    let seeded = seeding.elapsed();
    sqlx::query("ANALYZE").execute(&app.db).await.unwrap();
    let rows: i64 = sqlx::query_scalar(crate::search::INDEX_ENTRIES).fetch_one(&app.db).await.unwrap();
    let size: String = sqlx::query_scalar("SELECT pg_size_pretty(pg_relation_size('messages_search_terms_idx'))")
        .fetch_one(&app.db)
        .await
        .unwrap();
    println!(
        "SEARCH_BENCH seeded messages={total} index_rows={rows} index_size={size} seconds={:.1}",
        seeded.as_secs_f64()
    );

    for (label, q) in [
        ("common (50%)", "project"),
        ("common AND common", "project deploy"),
        ("rare (10 messages)", "zanzibar"),
        ("rare AND common", "zanzibar project"),
        ("absent", "nowhere"),
    ] {
        let path = format!("/api/search?q={}&limit=20", q.replace(' ', "+"));
        let mut times = Vec::with_capacity(RUNS);
        let mut results = 0;
        for run in 0..RUNS + 5 {
            let start = Instant::now();
            let res = t.get(Some(&ana.token), &path).await;
            assert_eq!(res.status(), 200);
            let body: serde_json::Value = res.json().await.unwrap();
            let took = start.elapsed();
            results = body["results"].as_array().unwrap().len();
            if run >= 5 {
                times.push(took); // the first five warm the caches
            }
        }
        times.sort();
        println!(
            "SEARCH_BENCH query=\"{q}\" kind=\"{label}\" results={results} p50_ms={:.1} p99_ms={:.1} max_ms={:.1}",
            percentile(&times, 0.5),
            percentile(&times, 0.99),
            times.last().unwrap().as_secs_f64() * 1000.0
        );
    }
}
