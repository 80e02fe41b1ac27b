//! `ai`: the AI reply path. In each room one client asks `@mathia …` questions one after
//! another and times, from its own send: the `ack`, `ai_stream_start`, the first
//! `ai_stream_chunk`, the gaps between chunks, and `ai_stream_end`. With no
//! `MATHIA_AI_BASE_URL` the server streams its built-in offline reply, so this measures
//! Mathia's own pipeline (queue, worker, fan-out), not a model.
//!
//! Against `bench/fake_model.py`, whose every token is `~<unix µs when written>~`, it also
//! records each token's added latency: from the model writing it to this socket reading the
//! `ai_stream_chunk` that carries it (same machine, same clock).

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt, stream};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::{
    api::{self, Api, ws_error},
    util::{Error, Probe, Result, hist_json, hist_line, new_hist, record_us, round},
};

pub struct AiOpts {
    pub rooms: usize,
    pub prompts: usize,
    pub timeout: Duration,
    pub server_pid: Option<u32>,
}

#[derive(Default)]
struct RoomRun {
    ack: Vec<u64>,
    start: Vec<u64>,
    first_chunk: Vec<u64>,
    gaps: Vec<u64>,
    end: Vec<u64>,
    chunks: Vec<u64>,
    added: Vec<u64>,
    errors: Vec<String>,
    timeouts: u64,
}

async fn one_room(api: Api, run: String, r: usize, o: &AiOpts) -> Result<RoomRun> {
    let s = api
        .owner(&format!("{run}-ai{r}@bench.example.com"), &format!("bench asker {r}"), &format!("bench {run} ai {r}"))
        .await?;
    let room = api.create_room(&s, &format!("bench-ai-{run}-{r}")).await?;
    let mut ws = api.connect(&s).await?;
    api::join_room(&mut ws, room, Duration::from_secs(15)).await?;
    let mut out = RoomRun::default();
    for i in 0..o.prompts {
        let cmid = format!("ai:{i}");
        let frame = json!({
            "action": "new_message", "room_id": room, "client_msg_id": cmid,
            // No digits in the body: the moderation filter reads them as letters.
            "body": "@mathia benchmark question: what should we do next?",
        });
        let t0 = Instant::now();
        ws.send(Message::text(frame.to_string())).await.map_err(ws_error)?;
        let us = |t: Instant| t.duration_since(t0).as_micros() as u64;
        let mut my_id: Option<Uuid> = None;
        let mut stream_id: Option<String> = None;
        let mut last_chunk: Option<Instant> = None;
        let mut chunks = 0;
        let deadline = t0 + o.timeout;
        let finished = loop {
            let next = tokio::time::timeout_at(deadline.into(), ws.next()).await;
            let Ok(next) = next else { break false };
            let Some(msg) = next else {
                return Err(Error::new("ws_closed", "socket closed"));
            };
            let Message::Text(text) = msg.map_err(ws_error)? else {
                continue;
            };
            let now = Instant::now();
            let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else {
                continue;
            };
            match v["type"].as_str() {
                Some("ack") if v["client_msg_id"] == json!(cmid) => {
                    my_id = v["message_id"].as_str().and_then(|s| s.parse().ok());
                    out.ack.push(us(now));
                }
                Some("error") => {
                    out.errors.push(v["code"].as_str().unwrap_or("unknown").to_owned());
                    if v["ref"] == json!(cmid) {
                        break true;
                    }
                }
                Some("ai_stream_start")
                    if my_id.is_some() && v["reply_to"].as_str().and_then(|s| s.parse().ok()) == my_id =>
                {
                    stream_id = v["stream_id"].as_str().map(str::to_owned);
                    out.start.push(us(now));
                }
                Some("ai_stream_chunk") if stream_id.is_some() && v["stream_id"].as_str() == stream_id.as_deref() => {
                    match last_chunk {
                        None => out.first_chunk.push(us(now)),
                        Some(prev) => out.gaps.push(now.duration_since(prev).as_micros() as u64),
                    }
                    last_chunk = Some(now);
                    chunks += 1;
                    let read_us = unix_us();
                    for written in markers(v["delta"].as_str().unwrap_or_default()) {
                        out.added.push(read_us.saturating_sub(written));
                    }
                }
                Some("ai_stream_end") if stream_id.is_some() && v["stream_id"].as_str() == stream_id.as_deref() => {
                    out.end.push(us(now));
                    out.chunks.push(chunks);
                    break true;
                }
                _ => {}
            }
        };
        if !finished {
            out.timeouts += 1;
        }
    }
    let _ = ws.close(None).await;
    Ok(out)
}

fn unix_us() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// The write times the fake model put in a delta: `~1764590000123456~`.
fn markers(delta: &str) -> impl Iterator<Item = u64> + '_ {
    delta
        .split('~')
        .filter(|part| part.len() >= 16 && part.bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|p| p.parse().ok())
}

pub async fn ai(api: Api, run: &str, o: AiOpts) -> Result<Value> {
    eprintln!("ai: {} rooms, {} questions each, one at a time per room…", o.rooms, o.prompts);
    let probe = Probe::start(o.server_pid);
    let t0 = Instant::now();
    let results: Vec<Result<RoomRun>> = stream::iter(0..o.rooms)
        .map(|r| one_room(api.clone(), run.to_owned(), r, &o))
        .buffer_unordered(o.rooms.max(1))
        .collect()
        .await;
    let elapsed = t0.elapsed().as_secs_f64();
    let usage = probe.finish();
    let (mut ack, mut start, mut first, mut gaps, mut end, mut chunks, mut added) =
        (new_hist(), new_hist(), new_hist(), new_hist(), new_hist(), new_hist(), new_hist());
    let mut errors: std::collections::BTreeMap<String, u64> = Default::default();
    let mut timeouts = 0;
    for r in results {
        let r = r?;
        for v in r.ack {
            record_us(&mut ack, v);
        }
        for v in r.start {
            record_us(&mut start, v);
        }
        for v in r.first_chunk {
            record_us(&mut first, v);
        }
        for v in r.gaps {
            record_us(&mut gaps, v);
        }
        for v in r.end {
            record_us(&mut end, v);
        }
        for v in r.added {
            record_us(&mut added, v);
        }
        for v in r.chunks {
            // Chunk counts, recorded as "µs" to reuse the histogram: read them as counts.
            chunks.saturating_record(v.max(1));
        }
        for e in r.errors {
            *errors.entry(e).or_default() += 1;
        }
        timeouts += r.timeouts;
    }
    eprintln!("ai: first chunk {}", hist_line(&first));
    eprintln!("ai: chunk gap   {}", hist_line(&gaps));
    eprintln!("ai: full reply  {}", hist_line(&end));
    if !added.is_empty() {
        eprintln!("ai: token added {}", hist_line(&added));
    }
    eprintln!("ai: {} replies, {timeouts} timeouts, errors {errors:?}", end.len());
    Ok(json!({
        "replies": end.len(),
        "timeouts": timeouts,
        "errors": errors,
        "elapsed_s": round(elapsed, 2),
        "ack_ms": hist_json(&ack),
        "stream_start_ms": hist_json(&start),
        "first_chunk_ms": hist_json(&first),
        "chunk_gap_ms": hist_json(&gaps),
        "reply_complete_ms": hist_json(&end),
        "token_added_ms": if added.is_empty() { Value::Null } else { hist_json(&added) },
        "chunks_per_reply": if chunks.is_empty() { Value::Null } else {
            json!({ "min": chunks.min(), "mean": round(chunks.mean(), 1), "max": chunks.max() })
        },
        "usage": usage,
    }))
}
