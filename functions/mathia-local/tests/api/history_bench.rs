//! The history-depth benchmark (not a test; `#[ignore]`d): one room grown to each depth of
//! `HISTORY_BENCH_DEPTHS` (default 0, 100,000 and 1,000,000 messages) and, at each, timed end to
//! end over real connections: sending (`new_message` → `ack`, one at a time), the latest history
//! page and a page deep in the past (`before` the 200th message), 50 messages each.
//!
//! The history is seeded fast but real: each message sealed by the room's keyring, exactly as the
//! store seals it (`Aad::message(id)`) and indexed for search as the store indexes it (its
//! words' hashes in `search_terms`, under the GIN index every send also writes to), written with
//! `COPY`, then vacuumed and checkpointed before anything is timed. Bodies are ten words drawn
//! from 5,000 with a Zipf-like skew, as in the search benchmark.
//! `bash bench/history.sh` runs it and writes the figures into `bench/RESULTS.md`.

use std::time::{Duration, Instant};

use chrono::Utc;
use mathia::{adapters::postgres::search::term_hashes, keyring::Aad};
use serde_json::json;
use sqlx::postgres::PgPoolCopyExt;
use uuid::Uuid;

use crate::helpers::TestApp;

const WARM: usize = 10;
const COPY_CHUNK: i64 = 20_000;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

fn summary(mut times: Vec<Duration>) -> String {
    times.sort();
    format!(
        "p50_ms={:.2} p99_ms={:.2} max_ms={:.2}",
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        times.last().unwrap().as_secs_f64() * 1000.0
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Grows the room from `from` to `to` messages (seqs `from + 1 ..= to`).
async fn seed(t: &TestApp, room_id: Uuid, author: Uuid, from: i64, to: i64) {
    let app = &t.local.app;
    let start = Utc::now() - chrono::Duration::days(365);
    let mut seq = from;
    let mut rng = (from as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut word = move || {
        // xorshift, then rank = 5000^u, so low ranks are common.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let u = (rng >> 11) as f64 / (1u64 << 53) as f64;
        format!("word{}", 5000f64.powf(u) as u64)
    };
    while seq < to {
        let end = (seq + COPY_CHUNK).min(to);
        let mut text = String::with_capacity(((end - seq) * 200) as usize);
        for s in seq + 1..=end {
            let id = Uuid::now_v7();
            let body = (0..10).map(|_| word()).collect::<Vec<_>>().join(" ");
            let sealed = app.keyring.seal(room_id, Aad::message(id), body.as_bytes()).await.expect("sealed");
            let key = app.keyring.index_key(room_id, sealed.key_version).await.expect("index key");
            let terms = term_hashes(&key, &body).iter().map(i64::to_string).collect::<Vec<_>>().join(",");
            let at = start + chrono::Duration::milliseconds(s);
            text.push_str(&format!(
                "{id}\t{room_id}\t{s}\tuser\t{author}\t{}\t\\\\x{}\t\\\\x{}\t{}\t{{{terms}}}\n",
                sealed.key_version,
                hex(&sealed.nonce),
                hex(&sealed.ciphertext),
                at.to_rfc3339()
            ));
        }
        let mut copy = app
            .db
            .copy_in_raw(
                "COPY messages (id, room_id, seq, kind, author_id, key_version, nonce, ciphertext, created_at, search_terms)
                 FROM STDIN",
            )
            .await
            .expect("copy");
        copy.send(text.into_bytes()).await.expect("copy data");
        copy.finish().await.expect("copied");
        seq = end;
    }
    sqlx::query("UPDATE rooms SET last_seq = $2 WHERE id = $1").bind(room_id).bind(to).execute(&app.db).await.unwrap();
}

/// Lets Postgres finish with a load before it is timed: the new rows vacuumed (their visibility
/// map set, so the autovacuum the load triggers does not run during the sends) and written out by
/// a checkpoint, and the planner's statistics read afresh.
async fn settle(t: &TestApp) {
    let db = &t.local.app.db;
    sqlx::raw_sql("VACUUM (ANALYZE) messages").execute(db).await.unwrap();
    sqlx::raw_sql("CHECKPOINT").execute(db).await.unwrap();
}

#[tokio::test]
#[ignore = "a benchmark: bash bench/history.sh"]
async fn history_bench() {
    let depths: Vec<i64> = std::env::var("HISTORY_BENCH_DEPTHS")
        .unwrap_or_else(|_| "0,100000,1000000".into())
        .split(',')
        .map(|d| d.trim().parse().expect("a depth"))
        .collect();
    // Timed sends and page loads per depth: the p99 of 200 is the second slowest.
    let runs: usize = std::env::var("HISTORY_BENCH_RUNS").map(|r| r.parse().expect("a count")).unwrap_or(200);
    let t = TestApp::spawn_with(|c| {
        c.rate_limit_per_min = 1_000_000;
        c.ws_frames_per_s = 1_000_000;
        c.ws_frame_burst = 1_000_000;
        // 2,000 runs read 4,000 pages a depth, past a person's 1,200 a minute.
        c.history_pages_per_minute = 1_000_000;
    })
    .await;
    let ana = t.register("Ana").await;
    let room = t.create_room(&ana, "deep").await;
    let mut depth: i64 = 0;
    let mut sent: i64 = 0;
    for target in depths {
        let seeding = Instant::now();
        if target > depth + sent {
            // Seeding writes below what was sent: start it past every stored seq.
            seed(&t, room.id, ana.id, depth + sent, target).await;
            depth = target;
            sent = 0;
        }
        let seed_s = seeding.elapsed().as_secs_f64();
        let settling = Instant::now();
        settle(&t).await;
        let settle_s = settling.elapsed().as_secs_f64();
        let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM messages WHERE room_id = $1")
            .bind(room.id)
            .fetch_one(&t.local.app.db)
            .await
            .unwrap();

        // A socket of its own for each depth, opened after the seeding: one opened before a long
        // seeding (10 M messages take half an hour) would be closed as idle.
        let (mut ws, _) = t.ws_in_room(&ana, room.id).await;
        let mut send = Vec::with_capacity(runs);
        for i in 0..runs + WARM {
            let start = Instant::now();
            ws.send(json!({"action": "new_message", "room_id": room.id, "body": format!("probe {i}"), "client_msg_id": Uuid::new_v4().to_string()}))
                .await;
            ws.recv_type("ack").await;
            if i >= WARM {
                send.push(start.elapsed());
            }
        }
        sent += (runs + WARM) as i64;

        let latest_path = format!("/api/rooms/{}/messages?limit=50", room.id);
        let deep_id: Option<Uuid> = sqlx::query_scalar("SELECT id FROM messages WHERE room_id = $1 AND seq = 200")
            .bind(room.id)
            .fetch_optional(&t.local.app.db)
            .await
            .unwrap();
        let mut pages = Vec::new();
        for path in std::iter::once(latest_path.clone())
            .chain(deep_id.map(|id| format!("/api/rooms/{}/messages?limit=50&before={id}", room.id)))
        {
            let mut times = Vec::with_capacity(runs);
            for i in 0..runs + WARM {
                let start = Instant::now();
                let res = t.get(Some(&ana.token), &path).await;
                assert_eq!(res.status(), 200);
                let body: serde_json::Value = res.json().await.unwrap();
                assert!(!body["messages"].as_array().unwrap().is_empty());
                if i >= WARM {
                    times.push(start.elapsed());
                }
            }
            pages.push(summary(times));
        }
        println!(
            "HISTORY_BENCH depth={stored} seed_s={seed_s:.1} settle_s={settle_s:.1} send {} | latest_page {} | deep_page {}",
            summary(send),
            pages[0],
            pages.get(1).map(String::as_str).unwrap_or("-")
        );
    }
}
