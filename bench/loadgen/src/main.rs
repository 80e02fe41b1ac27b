//! mathia-loadgen: drives a running `mathia-local` through its real protocol (HTTP sign-up and
//! onboarding, one-time tickets, WebSocket frames) and measures it. See bench/README.md.
//!
//! Human-readable progress and summaries go to stderr; with `--json`, one JSON line per
//! result goes to stdout (saturate: one per step, then the summary).

mod ai;
mod api;
mod awscost;
mod conns;
mod engine;
mod flood;
mod util;

use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde_json::{Map, Value, json};

use crate::{
    api::Api,
    engine::{Harness, SetupOpts, StepOpts},
    util::{round, server_line},
};

#[derive(Parser)]
#[command(name = "mathia-loadgen", version, about = "Load generator for Mathia (mathia-local)")]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Args, Clone)]
struct Common {
    /// Base URL of the server.
    #[arg(long, global = true, default_value = "http://127.0.0.1:8000")]
    url: String,
    /// The server's pid: its CPU time (/proc/<pid>/stat) and memory (/proc/<pid>/status) are reported.
    #[arg(long, global = true)]
    server_pid: Option<u32>,
    /// Print one JSON line per result on stdout.
    #[arg(long, global = true)]
    json: bool,
    /// A label for the run, copied into the JSON (e.g. w1, w2).
    #[arg(long, global = true)]
    scenario: Option<String>,
    /// Extra KEY=VALUE pairs copied into the JSON's `meta` (git revision, build profile…).
    #[arg(long = "meta", global = true, value_name = "KEY=VALUE")]
    meta: Vec<String>,
    /// Concurrent sign-ups/onboardings during setup (password hashing is costly on the server).
    #[arg(long, global = true, default_value_t = 4)]
    setup_concurrency: usize,
    /// Concurrent socket opens (ticket + handshake + join) during setup.
    #[arg(long, global = true, default_value_t = 32)]
    connect_concurrency: usize,
}

#[derive(Args, Clone)]
struct FanoutShape {
    /// Rooms.
    #[arg(long, default_value_t = 10)]
    rooms: usize,
    /// Clients (sockets, each its own user) per room, senders included.
    #[arg(long, default_value_t = 10)]
    clients: usize,
    /// Senders per room.
    #[arg(long, default_value_t = 1)]
    senders: usize,
    /// Rooms each client's socket is in: people in several rooms at once. The rooms come in
    /// groups of this many that share the same people, so a room still has `clients` people
    /// and there are rooms × clients / this many sockets (rooms must be a multiple of it).
    #[arg(long, default_value_t = 1)]
    rooms_per_client: usize,
    /// Padding added to each message body, in bytes (plain words; the body is 18 bytes without it).
    #[arg(long, default_value_t = 32)]
    body_bytes: usize,
    /// Longest wait after a step for outstanding deliveries, in seconds.
    #[arg(long, default_value_t = 5.0)]
    drain: f64,
}

#[derive(Subcommand)]
enum Mode {
    /// R rooms × M clients, S senders per room at a fixed rate: throughput, delivery, latency.
    Fanout {
        #[command(flatten)]
        shape: FanoutShape,
        /// Messages per second per sender.
        #[arg(long, default_value_t = 20.0)]
        rate: f64,
        /// Seconds of sending.
        #[arg(long, default_value_t = 20.0)]
        duration: f64,
        /// After the run, page through each room's history and report acknowledged messages missing from it.
        #[arg(long)]
        verify: bool,
        /// Reopen dropped sockets (new ticket, join again) instead of giving up on them.
        #[arg(long)]
        reconnect: bool,
        /// Include per-second counters (sent, acked, delivered, errors, connected) in the JSON.
        #[arg(long)]
        timeline: bool,
        /// Sample the server's VmRSS every this many seconds (needs --server-pid).
        #[arg(long)]
        rss_every: Option<f64>,
        /// Print a progress line every this many seconds.
        #[arg(long)]
        progress: Option<f64>,
        /// Extra members, one in each of the first N rooms, who flood every action during the step.
        #[arg(long, default_value_t = 0)]
        flooders: usize,
        /// Frames per second per flooder's socket (0: as fast as the socket takes them).
        #[arg(long, default_value_t = 0.0)]
        flood_rate: f64,
        /// Sockets each flooder opens (one person, several tabs), each flooding at `flood_rate`.
        #[arg(long, default_value_t = 1)]
        flood_sockets: usize,
        /// What the flooders send.
        #[arg(long, value_enum, default_value_t = flood::Actions::All)]
        flood_actions: flood::Actions,
    },
    /// Doubles the offered load until delivery < target or p99 > target, then bisects.
    Saturate {
        #[command(flatten)]
        shape: FanoutShape,
        /// First offered load, messages/s over all senders.
        #[arg(long, default_value_t = 100.0)]
        start_rate: f64,
        /// Never offer more than this (messages/s over all senders).
        #[arg(long, default_value_t = 100_000.0)]
        max_rate: f64,
        /// Seconds per step.
        #[arg(long, default_value_t = 10.0)]
        step_duration: f64,
        /// Bisection steps between the last good and the first bad rate.
        #[arg(long, default_value_t = 3)]
        bisect: u32,
        /// A step is good when delivery ratio ≥ this…
        #[arg(long, default_value_t = 0.99)]
        min_delivery: f64,
        /// …and p99 latency ≤ this many ms.
        #[arg(long, default_value_t = 250.0)]
        max_p99_ms: f64,
    },
    /// Opens N authenticated sockets, holds them, reports the server's RSS per connection.
    Idle {
        #[arg(long, default_value_t = 5000)]
        connections: usize,
        /// Users the connections are spread over (each connection gets its own ticket).
        #[arg(long, default_value_t = 100)]
        users: usize,
        /// With > 0, users are onboarded into that many rooms and every socket joins its user's room.
        #[arg(long, default_value_t = 0)]
        rooms: usize,
        /// Messages posted to each room before the sockets open, so that each `room_joined`
        /// carries a page of history (with `--rooms`).
        #[arg(long, default_value_t = 0)]
        history: usize,
        /// Bytes of each of those messages' bodies.
        #[arg(long, default_value_t = 500)]
        history_bytes: usize,
        /// Seconds to hold the sockets open once all are connected.
        #[arg(long, default_value_t = 10.0)]
        hold: f64,
        /// Concurrent opens.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Loopback addresses to open the sockets from, in turn (127.0.0.1 … 127.0.0.N): one
        /// reaches the server's port from about 28,000 ephemeral ports. 1: the system's choice.
        #[arg(long, default_value_t = 1)]
        sources: u8,
    },
    /// `@mathia` questions, one at a time per room: time to the first AI chunk, gaps between chunks.
    Ai {
        #[arg(long, default_value_t = 1)]
        rooms: usize,
        /// Questions per room (each AI reply costs the workspace 1 cent of its 500-cent welcome credit).
        #[arg(long, default_value_t = 20)]
        prompts: usize,
        /// Seconds to wait for one reply to finish.
        #[arg(long, default_value_t = 60.0)]
        timeout: f64,
    },
    /// On `mathia-local emulate` only: the AWS calls, management-API calls and function time one
    /// chat message costs, in one room (see bench/aws-cost.sh).
    AwsCost {
        /// People in the room, each with an open socket (the fan-out).
        #[arg(long, default_value_t = 10)]
        clients: usize,
        /// Messages measured, sent round-robin by every member.
        #[arg(long, default_value_t = 200)]
        messages: usize,
        /// Messages sent first so instances are warm (20 fills one moderation batch).
        #[arg(long, default_value_t = 20)]
        warmup: usize,
        /// Messages per second over all senders.
        #[arg(long, default_value_t = 10.0)]
        rate: f64,
        /// Padding added to each message body, in bytes (plain words).
        #[arg(long, default_value_t = 32)]
        body_bytes: usize,
        /// Seconds with nothing sent, to measure the scheduler's own calls per tick.
        #[arg(long, default_value_t = 10.0)]
        idle_window: f64,
        /// Least seconds to wait after the deliveries for moderation batches to drain.
        #[arg(long, default_value_t = 6.0)]
        settle: f64,
        /// Longest wait, in seconds, for deliveries and for the counters to stop moving.
        #[arg(long, default_value_t = 60.0)]
        timeout: f64,
        /// The emulator's pid: the CPU time of its children (the function instances) is reported.
        #[arg(long)]
        emulator_pid: Option<u32>,
        /// The file the emulator's stdout and stderr go to: bytes of the functions' JSON log lines.
        #[arg(long)]
        log_file: Option<std::path::PathBuf>,
        /// The AWS endpoint the emulator runs against (moto): the connections table is scanned
        /// there, with the sockets still open, for the item sizes reads are billed on.
        #[arg(long, requires = "connections_table")]
        dynamodb_url: Option<String>,
        /// The connections table's name (MATHIA_CONNECTIONS_TABLE).
        #[arg(long)]
        connections_table: Option<String>,
    },
    /// Ticket + handshake (+ join) + close, repeatedly: connections per second.
    ConnectRate {
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        #[arg(long, default_value_t = 20)]
        users: usize,
        /// With > 0, every connection also joins its user's room.
        #[arg(long, default_value_t = 0)]
        rooms: usize,
        /// Concurrent connecting workers.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Each worker pauses this many ms between connections (0: flat out).
        #[arg(long, default_value_t = 0)]
        pause_ms: u64,
        /// Include per-second successes and failures in the JSON.
        #[arg(long)]
        timeline: bool,
    },
}

struct Out {
    json: bool,
    envelope: Map<String, Value>,
}

impl Out {
    fn emit(&self, ty: &str, params: Value, body: Value) {
        if !self.json {
            return;
        }
        let mut v = Map::new();
        v.insert("type".into(), json!(ty));
        for (k, val) in &self.envelope {
            v.insert(k.clone(), val.clone());
        }
        v.insert("ts_unix_ms".into(), json!(util::unix_ms()));
        v.insert("params".into(), params);
        if let Value::Object(b) = body {
            v.extend(b);
        }
        println!("{}", Value::Object(v));
    }
}

fn setup_opts(run_id: &str, shape: &FanoutShape, common: &Common, reconnect: bool, track_acks: bool) -> SetupOpts {
    SetupOpts {
        run_id: run_id.to_owned(),
        rooms: shape.rooms,
        clients_per_room: shape.clients,
        rooms_per_client: shape.rooms_per_client,
        senders_per_room: shape.senders,
        body_bytes: shape.body_bytes,
        setup_concurrency: common.setup_concurrency,
        connect_concurrency: common.connect_concurrency,
        reconnect,
        track_acks,
    }
}

fn step_opts(common: &Common, drain: f64) -> StepOpts {
    StepOpts {
        drain_max: Duration::from_secs_f64(drain),
        server_pid: common.server_pid,
        timeline: false,
        rss_every: None,
        progress_every: None,
    }
}

fn print_step(prefix: &str, v: &Value) {
    eprintln!(
        "{prefix}offered {} msg/s → sent {} acked {} ({}/s) · delivered {}/{} = {:.4} · {}/s delivered",
        v["offered_msgs_per_s"],
        v["sent"],
        v["acked"],
        v["acked_per_s"],
        v["delivered"],
        v["expected_deliveries"],
        v["delivery_ratio"].as_f64().unwrap_or(0.0),
        v["delivered_per_s"],
    );
    let l = &v["latency_ms"];
    eprintln!(
        "{prefix}latency p50 {} p90 {} p99 {} max {} ms · ack p99 {} ms · send lag p50 {} p99 {} ms · errors {} {} · disconnects {} · seq gaps {} · out of order {}",
        l["p50"],
        l["p90"],
        l["p99"],
        l["max"],
        v["ack_latency_ms"]["p99"],
        v["send_lag_ms"]["p50"],
        v["send_lag_ms"]["p99"],
        v["errors"],
        v["error_codes"],
        v["disconnects"],
        v["seq_gaps"],
        v["out_of_order"],
    );
    eprintln!("{prefix}{}", server_line(&v["usage"]));
}

fn print_error_samples(samples: &std::collections::BTreeMap<String, String>) {
    for (code, text) in samples {
        eprintln!("  error {code}: {text}");
    }
}

#[tokio::main]
async fn main() {
    util::origin();
    let cli = Cli::parse();
    let code = match run(cli).await {
        Ok(ok) => {
            if ok {
                0
            } else {
                1
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    };
    std::process::exit(code);
}

/// Ok(false) when the run worked but a check failed (verify found missing messages).
async fn run(cli: Cli) -> util::Result<bool> {
    let c = cli.common.clone();
    let api = Api::new(&c.url)?;
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let mut meta = Map::new();
    for kv in &c.meta {
        let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
        meta.insert(k.to_owned(), json!(v));
    }
    let mut envelope = Map::new();
    envelope.insert("scenario".into(), json!(c.scenario));
    envelope.insert("run_id".into(), json!(run_id));
    envelope.insert("url".into(), json!(c.url));
    envelope.insert("loadgen".into(), json!(env!("CARGO_PKG_VERSION")));
    envelope.insert("meta".into(), Value::Object(meta));
    let out = Out { json: c.json, envelope };
    // Fail fast when nothing listens.
    api.get("/healthz", None)
        .await
        .map_err(|e| util::Error::new(e.kind, format!("server not reachable at {}: {}", c.url, e.message)))?;

    match cli.mode {
        Mode::Fanout {
            shape,
            rate,
            duration,
            verify,
            reconnect,
            timeline,
            rss_every,
            progress,
            flooders,
            flood_rate,
            flood_sockets,
            flood_actions,
        } => {
            let params = json!({
                "rooms": shape.rooms, "clients_per_room": shape.clients, "senders_per_room": shape.senders,
                "rooms_per_client": shape.rooms_per_client,
                "rate_per_sender": rate, "duration_s": duration, "body_bytes": shape.body_bytes,
                "drain_max_s": shape.drain, "verify": verify, "reconnect": reconnect,
                "flooders": flooders, "flood_rate": flood_rate, "flood_sockets": flood_sockets,
                "flood_actions": format!("{flood_actions:?}").to_lowercase(),
            });
            let h = Harness::setup(api, setup_opts(&run_id, &shape, &c, reconnect, verify)).await?;
            let flood = if flooders > 0 {
                let rooms: Vec<_> = h.rooms.iter().map(|r| (r.id, r.owner.clone())).collect();
                let f =
                    flood::Flood::start(&h.api, &run_id, &rooms, flooders, flood_sockets, flood_rate, flood_actions)
                        .await?;
                eprintln!("fanout: {} flooders ready", f.flooders);
                f.go();
                Some(f)
            } else {
                None
            };
            eprintln!(
                "fanout: {} rooms × {} clients, {} senders at {rate} msg/s each for {duration} s…",
                shape.rooms, shape.clients, h.n_senders
            );
            let mut o = step_opts(&c, shape.drain);
            o.timeline = timeline;
            o.rss_every = rss_every.map(Duration::from_secs_f64);
            o.progress_every = progress.map(Duration::from_secs_f64);
            let res = h.run_step(0, rate, Duration::from_secs_f64(duration), &o).await;
            let flood = match flood {
                Some(f) => Some(f.stop().await),
                None => None,
            };
            print_step("fanout: ", &res.json);
            print_error_samples(&h.shared.error_samples());
            let mut body = res.json;
            if let Some(f) = flood {
                eprintln!("fanout: flood {f}");
                body["flood"] = f;
            }
            body["typing_heard"] = json!(h.shared.typing_heard.load(std::sync::atomic::Ordering::Relaxed));
            body["presence_heard"] = json!(h.shared.presence_heard.load(std::sync::atomic::Ordering::Relaxed));
            body["setup"] = h.setup.clone();
            let mut ok = true;
            if verify {
                eprintln!("verify: paging through the history of {} rooms…", h.rooms.len());
                let v = h.verify().await;
                eprintln!(
                    "verify: {} acknowledged, {} found in history, {} missing; {} history messages, {} seq gaps, {} duplicate client_msg_ids{}",
                    v["acked"],
                    v["found"],
                    v["missing"],
                    v["history_messages"],
                    v["history_seq_gaps"],
                    v["duplicate_client_msg_ids"],
                    if v["failures"].as_array().is_some_and(|f| !f.is_empty()) {
                        format!("; failures {}", v["failures"])
                    } else {
                        String::new()
                    }
                );
                ok = v["ok"].as_bool().unwrap_or(false);
                body["verify"] = v;
            }
            body["total_errors"] = json!(h.shared.error_codes());
            body["error_samples"] = json!(h.shared.error_samples());
            h.shutdown().await;
            out.emit("fanout", params, body);
            Ok(ok)
        }
        Mode::Saturate { shape, start_rate, max_rate, step_duration, bisect, min_delivery, max_p99_ms } => {
            let params = json!({
                "rooms": shape.rooms, "clients_per_room": shape.clients, "senders_per_room": shape.senders,
                "rooms_per_client": shape.rooms_per_client,
                "start_rate": start_rate, "max_rate": max_rate, "step_duration_s": step_duration,
                "bisect": bisect, "min_delivery": min_delivery, "max_p99_ms": max_p99_ms,
                "body_bytes": shape.body_bytes, "drain_max_s": shape.drain,
            });
            let h = Harness::setup(api, setup_opts(&run_id, &shape, &c, false, false)).await?;
            let o = step_opts(&c, shape.drain);
            let senders = h.n_senders as f64;
            let dur = Duration::from_secs_f64(step_duration);
            let mut step = 0u32;
            let mut best: Option<(f64, f64, u32)> = None; // (delivered/s, offered, step)
            let mut last_good: Option<f64> = None;
            let mut first_bad: Option<f64> = None;
            let mut run_at = async |rate: f64, phase: &str, step: &mut u32| -> bool {
                let res = h.run_step(*step, rate / senders, dur, &o).await;
                let good = res.delivery_ratio >= min_delivery && res.p99_ms <= max_p99_ms;
                print_step(&format!("saturate[{step} {phase}] "), &res.json);
                eprintln!("saturate[{step} {phase}] → {}", if good { "good" } else { "BAD" });
                let mut body = res.json;
                body["phase"] = json!(phase);
                body["good"] = json!(good);
                out.emit("saturate_step", params.clone(), body);
                if good && best.is_none_or(|b| res.delivered_per_s > b.0) {
                    best = Some((res.delivered_per_s, rate, *step));
                }
                *step += 1;
                // Let a backlog clear before the next step.
                h.quiesce(Duration::from_secs(10)).await;
                good
            };
            let mut rate = start_rate;
            loop {
                if run_at(rate, "double", &mut step).await {
                    last_good = Some(rate);
                    if rate * 2.0 > max_rate {
                        break;
                    }
                    rate *= 2.0;
                } else {
                    first_bad = Some(rate);
                    break;
                }
            }
            if let Some(bad) = first_bad {
                let (mut lo, mut hi) = (last_good.unwrap_or(0.0), bad);
                for _ in 0..bisect {
                    let mid = (lo + hi) / 2.0;
                    if mid < 1.0 || (hi - lo) / hi < 0.02 {
                        break;
                    }
                    if run_at(mid, "bisect", &mut step).await {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                }
                last_good = (lo > 0.0).then_some(lo);
                first_bad = Some(hi);
            }
            let summary = json!({
                "best_sustained_delivered_per_s": best.map(|b| round(b.0, 1)),
                "best_offered_msgs_per_s": best.map(|b| round(b.1, 1)),
                "best_step": best.map(|b| b.2),
                "last_good_offered_msgs_per_s": last_good.map(|r| round(r, 1)),
                "first_bad_offered_msgs_per_s": first_bad.map(|r| round(r, 1)),
                "steps": step,
                "setup": h.setup.clone(),
                "total_errors": h.shared.error_codes(),
                "error_samples": h.shared.error_samples(),
            });
            eprintln!(
                "saturate: best sustained {} deliveries/s at {} msg/s offered (last good {}, first bad {})",
                summary["best_sustained_delivered_per_s"],
                summary["best_offered_msgs_per_s"],
                summary["last_good_offered_msgs_per_s"],
                summary["first_bad_offered_msgs_per_s"]
            );
            h.shutdown().await;
            out.emit("saturate", params, summary);
            Ok(true)
        }
        Mode::Idle { connections, users, rooms, history, history_bytes, hold, concurrency, sources } => {
            let params = json!({ "connections": connections, "users": users, "rooms": rooms, "history": history,
                                 "history_bytes": history_bytes, "hold_s": hold, "concurrency": concurrency,
                                 "sources": sources });
            let sources = if sources > 1 {
                (1..=sources).map(|n| std::net::IpAddr::from([127, 0, 0, n])).collect()
            } else {
                Vec::new()
            };
            let body = conns::idle(
                api,
                &run_id,
                conns::IdleOpts {
                    connections,
                    users,
                    rooms,
                    history,
                    history_bytes,
                    hold: Duration::from_secs_f64(hold),
                    concurrency,
                    setup_concurrency: c.setup_concurrency,
                    server_pid: c.server_pid,
                    sources,
                },
            )
            .await?;
            out.emit("idle", params, body);
            Ok(true)
        }
        Mode::Ai { rooms, prompts, timeout } => {
            let params = json!({ "rooms": rooms, "prompts": prompts, "timeout_s": timeout });
            let body = ai::ai(
                api,
                &run_id,
                ai::AiOpts { rooms, prompts, timeout: Duration::from_secs_f64(timeout), server_pid: c.server_pid },
            )
            .await?;
            out.emit("ai", params, body);
            Ok(true)
        }
        Mode::AwsCost {
            clients,
            messages,
            warmup,
            rate,
            body_bytes,
            idle_window,
            settle,
            timeout,
            emulator_pid,
            log_file,
            dynamodb_url,
            connections_table,
        } => {
            let params = json!({
                "clients": clients, "messages": messages, "warmup": warmup, "rate": rate,
                "body_bytes": body_bytes, "idle_window_s": idle_window, "settle_s": settle, "timeout_s": timeout,
            });
            let body = awscost::aws_cost(
                api,
                &run_id,
                awscost::AwsCostOpts {
                    clients,
                    messages,
                    warmup,
                    rate,
                    body_bytes,
                    idle_window: Duration::from_secs_f64(idle_window),
                    settle: Duration::from_secs_f64(settle),
                    timeout: Duration::from_secs_f64(timeout),
                    emulator_pid,
                    log_file,
                    dynamodb: dynamodb_url.zip(connections_table),
                    setup_concurrency: c.setup_concurrency,
                },
            )
            .await?;
            let ok = body["delivered_all"].as_bool().unwrap_or(false);
            out.emit("aws_cost", params, body);
            Ok(ok)
        }
        Mode::ConnectRate { duration, users, rooms, concurrency, pause_ms, timeline } => {
            let params = json!({ "duration_s": duration, "users": users, "rooms": rooms, "concurrency": concurrency, "pause_ms": pause_ms });
            let body = conns::connect_rate(
                api,
                &run_id,
                conns::ConnectRateOpts {
                    duration: Duration::from_secs_f64(duration),
                    pause: Duration::from_millis(pause_ms),
                    timeline,
                    users,
                    rooms,
                    concurrency,
                    setup_concurrency: c.setup_concurrency,
                    server_pid: c.server_pid,
                },
            )
            .await?;
            out.emit("connect_rate", params, body);
            Ok(true)
        }
    }
}
