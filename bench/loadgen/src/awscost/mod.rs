//! `aws-cost`: what one chat message asks of AWS, measured on the emulated deployment
//! (`mathia-local emulate`, every request and event through the function binaries).
//!
//! One room of `--clients` people, each with an open socket that has joined it. After a warm-up
//! (instances started, a moderation batch through its worker), an idle window with nothing sent
//! measures what the scheduler does on its own per tick; then `--messages` plain messages are
//! sent round-robin by every member, paced, and the run waits until every socket has every
//! message and the moderation batches have drained. The emulator's `/_emulator/stats` before and
//! after that window give, per message: AWS calls by service and operation (the scheduler's
//! share, from the idle window, taken out), management-API calls (PostToConnection…), each
//! function's invocations and their durations (p50/p99/mean, from the window's invocations only).
//! With `--emulator-pid`, the CPU time of the function instances (children of the emulator);
//! with `--log-file`, the bytes of JSON log lines the functions wrote (what CloudWatch Logs
//! would ingest).
//!
//! Split by what each part does:
//! - this module: the options, the run's phases and the per-message report (`aws_cost`);
//! - `sockets`: the room's sockets, their frame counts, paced sending, waiting for deliveries;
//! - `emulator`: readings of `/_emulator/stats`, the instances' CPU and the log's length;
//! - `window`: the differences between two readings, and duration quantiles;
//! - `dynamodb`: the connections table's item sizes, as DynamoDB bills them.

mod dynamodb;
mod emulator;
mod sockets;
mod window;

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::atomic::Ordering::Relaxed,
    time::{Duration, Instant},
};

use futures::SinkExt;
use serde_json::{Map, Value, json};

use self::{
    dynamodb::registry_items,
    emulator::{after_setup_start, settle, snapshot},
    sockets::{open_sockets, send_paced, wait_delivered},
    window::{duration_json, window},
};
use crate::{
    api::Api,
    conns,
    util::{self, Error, Result, round},
};

pub struct AwsCostOpts {
    pub clients: usize,
    pub messages: usize,
    pub warmup: usize,
    /// Messages per second, over all senders.
    pub rate: f64,
    pub body_bytes: usize,
    /// Nothing sent for this long: the scheduler's own calls per tick.
    pub idle_window: Duration,
    /// Least wait after the last delivery before the counters may be read (moderation batches
    /// of a quiet room are flushed by the scheduler 3 s after their oldest message).
    pub settle: Duration,
    /// Longest wait for deliveries, and for the counters to stop moving.
    pub timeout: Duration,
    pub emulator_pid: Option<u32>,
    pub log_file: Option<PathBuf>,
    /// The AWS endpoint (moto) and the connections table: the registry's item sizes are read
    /// from it while the sockets are still open.
    pub dynamodb: Option<(String, String)>,
    pub setup_concurrency: usize,
}

/// Phases, for counting the frames sockets receive.
const SETUP: u8 = 0;
const WARMUP: u8 = 1;
const IDLE: u8 = 2;
const MEASURE: u8 = 3;
const PHASES: [&str; 4] = ["setup", "warmup", "idle", "measure"];

fn obj(m: &BTreeMap<String, f64>, f: impl Fn(&str, f64) -> Option<Value>) -> Value {
    let mut out = Map::new();
    for (k, v) in m {
        if let Some(x) = f(k, *v) {
            out.insert(k.clone(), x);
        }
    }
    Value::Object(out)
}

pub async fn aws_cost(api: Api, run: &str, o: AwsCostOpts) -> Result<Value> {
    if o.clients == 0 || o.messages == 0 {
        return Err(Error::new("config", "--clients and --messages must be > 0"));
    }
    let config = api.get("/api/config", None).await?;
    let ws_url = config["ws_url"]
        .as_str()
        .ok_or_else(|| Error::new("http_body", format!("/api/config has no ws_url: {config}")))?
        .to_owned();
    snapshot(&api, &o).await?; // fails early when this is not the emulator
    let t_setup = Instant::now();
    let users = conns::make_users(&api, run, o.clients, 1, o.setup_concurrency).await?;
    let room = users[0].1.expect("the owner's room");
    let mut sockets = open_sockets(&api, &ws_url, &users, room).await?;
    let setup_s = t_setup.elapsed().as_secs_f64();
    eprintln!("aws-cost: {} sockets in one room on {ws_url} ({setup_s:.1} s)", o.clients);
    let body = format!("benchmark message {}", crate::util::padding(o.body_bytes));
    let after_setup = snapshot(&api, &o).await?;

    // Warm-up: instances started, a moderation batch through its worker.
    sockets.phase.store(WARMUP, Relaxed);
    if o.warmup > 0 {
        eprintln!("aws-cost: warm-up, {} messages at {} msg/s…", o.warmup, o.rate);
        send_paced(&mut sockets, room, 'w', run, o.warmup, o.rate, &body).await?;
        if !wait_delivered(&sockets, 'w', o.warmup, o.timeout).await {
            return Err(Error::new(
                "timeout",
                format!("warm-up messages not all delivered: {:?}", sockets.delivered('w')),
            ));
        }
    }
    settle(&api, o.settle, o.timeout).await?;
    let warm = snapshot(&api, &o).await?;

    // The scheduler on its own: nothing sent.
    sockets.phase.store(IDLE, Relaxed);
    eprintln!("aws-cost: idle window of {:?} (the scheduler's own calls)…", o.idle_window);
    tokio::time::sleep(o.idle_window).await;
    let idle_end = snapshot(&api, &o).await?;

    // The measured window.
    sockets.phase.store(MEASURE, Relaxed);
    let probe = util::Probe::start(o.emulator_pid);
    let before = snapshot(&api, &o).await?;
    eprintln!("aws-cost: {} messages from {} senders at {} msg/s…", o.messages, o.clients, o.rate);
    let t_send = Instant::now();
    send_paced(&mut sockets, room, 'm', run, o.messages, o.rate, &body).await?;
    let send_s = t_send.elapsed().as_secs_f64();
    let delivered_all = wait_delivered(&sockets, 'm', o.messages, o.timeout).await;
    let deliver_s = t_send.elapsed().as_secs_f64();
    settle(&api, o.settle, o.timeout).await?;
    let after = snapshot(&api, &o).await?;
    // The machine during the window: the function instances and moto count as `other`.
    let usage = probe.finish();
    let loadavg = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
    sockets.phase.store(SETUP, Relaxed);
    let dynamodb_items = match &o.dynamodb {
        Some((endpoint, table)) => match registry_items(endpoint, table).await {
            Ok(v) => v,
            Err(e) => {
                eprintln!("aws-cost: warning: cannot read the registry's items: {e}");
                Value::Null
            }
        },
        None => Value::Null,
    };

    let n = o.messages as f64;
    let idle = window(&warm, &idle_end, o.log_file.as_ref());
    let w = window(&before, &after, o.log_file.as_ref());
    let setup = window(&after_setup_start(), &after_setup, None);
    let warmup = window(&after_setup, &warm, None);
    let ticks_idle = idle.invocations.get("scheduler").copied().unwrap_or(0.0);
    let ticks = w.invocations.get("scheduler").copied().unwrap_or(0.0);
    // What the scheduler does per tick, from the idle window.
    let per_tick = |m: &BTreeMap<String, f64>, k: &str| -> f64 {
        if ticks_idle > 0.0 { m.get(k).copied().unwrap_or(0.0) / ticks_idle } else { 0.0 }
    };
    let attributed = |raw: &BTreeMap<String, f64>, idle_m: &BTreeMap<String, f64>| -> Value {
        let mut keys: Vec<&String> = raw.keys().chain(idle_m.keys()).collect();
        keys.sort();
        keys.dedup();
        let mut out = Map::new();
        for k in keys {
            let r = raw.get(k).copied().unwrap_or(0.0);
            let sched = per_tick(idle_m, k) * ticks;
            if r == 0.0 && sched == 0.0 {
                continue;
            }
            out.insert(
                k.clone(),
                json!({
                    "window": r,
                    "scheduler_estimate": round(sched, 2),
                    "per_message": round(((r - sched) / n).max(0.0), 4),
                }),
            );
        }
        Value::Object(out)
    };
    let per_message_aws = attributed(&w.aws, &idle.aws);
    let per_message_management = attributed(&w.management, &idle.management);

    let mut functions = Map::new();
    for (f, inv) in &w.invocations {
        let d = &w.durations[f];
        let cpu = w.cpu.get(f).copied();
        if *inv == 0.0 && cpu.unwrap_or(0.0) == 0.0 {
            continue;
        }
        functions.insert(
            f.clone(),
            json!({
                "invocations": inv,
                "per_message": if f == "scheduler" { Value::Null } else { json!(round(inv / n, 4)) },
                "cold_starts": w.cold_starts[f],
                "errors": w.errors[f],
                "duration_ms": duration_json(d),
                "billed_ms_per_message": if f == "scheduler" { Value::Null } else {
                    json!(round(d.iter().map(|x| x.ceil().max(1.0)).sum::<f64>() / n, 3))
                },
                "cpu_ms": cpu.map(|c| round(c * 1000.0, 1)),
                "cpu_ms_per_invocation": cpu.filter(|_| *inv > 0.0).map(|c| round(c * 1000.0 / inv, 3)),
            }),
        );
    }
    let scheduler_tick = json!({
        "idle_window_s": round(idle.secs, 2),
        "ticks": ticks_idle,
        "aws_calls_per_tick": obj(&idle.aws, |k, _| Some(json!(round(per_tick(&idle.aws, k), 3)))),
        "management_per_tick": obj(&idle.management, |k, v| (v > 0.0).then(|| json!(round(per_tick(&idle.management, k), 3)))),
        "duration_ms": duration_json(idle.durations.get("scheduler").map(Vec::as_slice).unwrap_or(&[])),
        "other_invocations": obj(&idle.invocations, |k, v| (k != "scheduler" && v > 0.0).then(|| json!(v))),
        "cpu_ms": obj(&idle.cpu, |_, v| Some(json!(round(v * 1000.0, 1)))),
        "log": idle.log.map(|(l, b)| json!({"lines": l, "bytes": b})),
    });
    let log = w.log.map(|(lines, bytes)| {
        let (il, ib) = idle.log.unwrap_or((0, 0));
        let sched_b = if ticks_idle > 0.0 { ib as f64 / ticks_idle * ticks } else { 0.0 };
        let sched_l = if ticks_idle > 0.0 { il as f64 / ticks_idle * ticks } else { 0.0 };
        json!({
            "window_lines": lines, "window_bytes": bytes,
            "scheduler_estimate_bytes": round(sched_b, 0),
            "lines_per_message": round(((lines as f64 - sched_l) / n).max(0.0), 3),
            "bytes_per_message": round(((bytes as f64 - sched_b) / n).max(0.0), 1),
        })
    });
    let delivered = sockets.delivered('m');
    let frames_measure = sockets.frames(MEASURE);
    let inbound_frames = o.messages as u64; // one client frame per message
    let posts_per_message = per_message_management["post"]["per_message"].as_f64().unwrap_or(0.0);
    let result = json!({
        "room_size": o.clients,
        "messages": o.messages,
        "send_s": round(send_s, 2),
        "delivered_all": delivered_all,
        "deliver_s": round(deliver_s, 2),
        "window_s": round(w.secs, 2),
        "scheduler_ticks_in_window": ticks,
        "delivered_per_socket": delivered,
        "acks": sockets.acks('m'),
        "errors": sockets.errors(),
        "error_samples": sockets.error_samples(),
        "frames_received_in_window": frames_measure,
        "frames_received_in_idle": sockets.frames(IDLE),
        "per_message": {
            "aws_calls": per_message_aws,
            "management_api": per_message_management,
            "websocket_messages": {
                "inbound": round(inbound_frames as f64 / n, 3),
                "outbound_post_to_connection": posts_per_message,
                "total": round(inbound_frames as f64 / n + posts_per_message, 3),
            },
            "log": log,
        },
        "functions": functions,
        "emulator_cpu_ms": w.emulator_cpu.map(|c| round(c * 1000.0, 1)),
        "usage_window": usage,
        "loadavg_after": loadavg,
        "scheduler_tick": scheduler_tick,
        "setup": {
            "seconds": round(setup_s, 2),
            "invocations": obj(&setup.invocations, |_, v| (v > 0.0).then(|| json!(v))),
            "cold_starts": obj(&setup.cold_starts, |_, v| (v > 0.0).then(|| json!(v))),
            "aws_calls": obj(&setup.aws, |_, v| (v > 0.0).then(|| json!(v))),
        },
        "warmup": {
            "messages": o.warmup,
            "invocations": obj(&warmup.invocations, |_, v| (v > 0.0).then(|| json!(v))),
            "cold_starts": obj(&warmup.cold_starts, |_, v| (v > 0.0).then(|| json!(v))),
        },
        "dynamodb_items": dynamodb_items,
        "cold_starts_in_window": obj(&w.cold_starts, |_, v| (v > 0.0).then(|| json!(v))),
        "phases": PHASES,
    });
    print_summary(&result);
    for r in sockets.readers.drain(..) {
        r.abort();
    }
    for mut s in sockets.sinks.drain(..) {
        let _ = tokio::time::timeout(Duration::from_secs(2), s.close()).await;
    }
    if !delivered_all {
        eprintln!(
            "aws-cost: FAILED: not every socket got every message within {:?}: {}",
            o.timeout, result["delivered_per_socket"]
        );
    }
    Ok(result)
}

fn print_summary(r: &Value) {
    let pm = &r["per_message"];
    eprintln!(
        "aws-cost: {} messages to {} sockets, delivered to all: {} ({} acks, errors {})",
        r["messages"], r["room_size"], r["delivered_all"], r["acks"], r["errors"]
    );
    eprintln!("aws-cost: per message —");
    for (k, v) in pm["aws_calls"].as_object().into_iter().flatten() {
        eprintln!(
            "  {k:<32} {:>8}   (window {}, scheduler ≈ {})",
            v["per_message"], v["window"], v["scheduler_estimate"]
        );
    }
    for (k, v) in pm["management_api"].as_object().into_iter().flatten() {
        eprintln!("  management {k:<21} {:>8}", v["per_message"]);
    }
    eprintln!("  websocket messages (in + out)    {:>8}", pm["websocket_messages"]["total"]);
    for (f, v) in r["functions"].as_object().into_iter().flatten() {
        let d = &v["duration_ms"];
        eprintln!(
            "  {f:<18} {:>4} invocations ({} per message), {} ms p50, {} p99, {} mean; cpu {} ms per invocation",
            v["invocations"], v["per_message"], d["p50"], d["p99"], d["mean"], v["cpu_ms_per_invocation"]
        );
    }
    eprintln!("aws-cost: frames received in the window: {}", r["frames_received_in_window"]);
}
