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

use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU8, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use futures::{SinkExt, StreamExt, stream::SplitSink};
use serde_json::{Map, Value, json};
use tokio_tungstenite::{connect_async_with_config, tungstenite::Message};
use uuid::Uuid;

use crate::{
    api::{self, Api, Ws},
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

#[derive(Default)]
struct SocketCounts {
    /// new_message frames carrying this run's client_msg_id, by phase letter (`w`, `m`).
    delivered: HashMap<char, u64>,
    acks: HashMap<char, u64>,
    /// Every frame by phase and type (`new_message`, `ack`, `presence_update`…).
    frames: BTreeMap<(u8, String), u64>,
    errors: BTreeMap<String, u64>,
    error_sample: Option<String>,
    closed: bool,
}

struct Sockets {
    sinks: Vec<SplitSink<Ws, Message>>,
    counts: Vec<Arc<Mutex<SocketCounts>>>,
    phase: Arc<AtomicU8>,
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl Sockets {
    fn delivered(&self, phase: char) -> Vec<u64> {
        self.counts.iter().map(|c| c.lock().unwrap().delivered.get(&phase).copied().unwrap_or(0)).collect()
    }
    fn acks(&self, phase: char) -> u64 {
        self.counts.iter().map(|c| c.lock().unwrap().acks.get(&phase).copied().unwrap_or(0)).sum()
    }
    fn errors(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for c in &self.counts {
            for (k, v) in &c.lock().unwrap().errors {
                *out.entry(k.clone()).or_default() += v;
            }
        }
        out
    }
    fn error_samples(&self) -> Vec<String> {
        self.counts.iter().filter_map(|c| c.lock().unwrap().error_sample.clone()).take(3).collect()
    }
    fn closed(&self) -> usize {
        self.counts.iter().filter(|c| c.lock().unwrap().closed).count()
    }
    /// Frames received in a phase, by type, over all sockets.
    fn frames(&self, phase: u8) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for c in &self.counts {
            for ((p, ty), n) in &c.lock().unwrap().frames {
                if *p == phase {
                    *out.entry(ty.clone()).or_default() += n;
                }
            }
        }
        out
    }
}

fn padding(n: usize) -> String {
    const WORDS: &str = "the quick brown fox jumps over the lazy dog ";
    WORDS.repeat(n / WORDS.len() + 1)[..n.min(3900)].trim_end().to_owned()
}

async fn open_sockets(api: &Api, ws_url: &str, users: &[(api::Session, Option<Uuid>)], room: Uuid) -> Result<Sockets> {
    let phase = Arc::new(AtomicU8::new(SETUP));
    let (mut sinks, mut counts, mut readers) = (Vec::new(), Vec::new(), Vec::new());
    for (s, _) in users {
        let ticket = api.ticket(s).await?;
        let sep = if ws_url.contains('?') { '&' } else { '?' };
        let (mut ws, _) = connect_async_with_config(format!("{ws_url}{sep}ticket={ticket}"), None, true)
            .await
            .map_err(api::ws_error)?;
        api::join_room(&mut ws, room, Duration::from_secs(30)).await?;
        let (sink, mut rx) = ws.split();
        let c = Arc::new(Mutex::new(SocketCounts::default()));
        let (c2, phase2) = (c.clone(), phase.clone());
        readers.push(tokio::spawn(async move {
            while let Some(msg) = rx.next().await {
                let text = match msg {
                    Ok(Message::Text(text)) => text,
                    Ok(_) => continue,
                    Err(_) => break,
                };
                let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else { continue };
                let ty = v["type"].as_str().unwrap_or("?").to_owned();
                let mut c = c2.lock().unwrap();
                *c.frames.entry((phase2.load(Relaxed), ty.clone())).or_default() += 1;
                let tag = |id: &Value| id.as_str().and_then(|s| s.split_once('-')).and_then(|(p, _)| p.chars().next());
                match ty.as_str() {
                    "new_message" => {
                        if let Some(p) = tag(&v["message"]["client_msg_id"]) {
                            *c.delivered.entry(p).or_default() += 1;
                        }
                    }
                    "ack" => {
                        if let Some(p) = tag(&v["client_msg_id"]) {
                            *c.acks.entry(p).or_default() += 1;
                        }
                    }
                    "error" => {
                        let code = v["code"].as_str().unwrap_or("unknown").to_owned();
                        *c.errors.entry(code).or_default() += 1;
                        if c.error_sample.is_none() {
                            c.error_sample = Some(text.as_str().chars().take(300).collect());
                        }
                    }
                    _ => {}
                }
            }
            c2.lock().unwrap().closed = true;
        }));
        sinks.push(sink);
        counts.push(c);
    }
    Ok(Sockets { sinks, counts, phase, readers })
}

/// Sends `n` messages round-robin over the sockets at `rate` per second; ids `<tag><run>-<k>`.
async fn send_paced(
    sockets: &mut Sockets,
    room: Uuid,
    tag: char,
    run: &str,
    n: usize,
    rate: f64,
    body: &str,
) -> Result<()> {
    let start = Instant::now();
    let gap = Duration::from_secs_f64(1.0 / rate.max(0.001));
    for k in 0..n {
        tokio::time::sleep_until((start + gap * k as u32).into()).await;
        let frame = json!({
            "action": "new_message",
            "room_id": room,
            "body": body,
            "client_msg_id": format!("{tag}{run}-{k}"),
        });
        let i = k % sockets.sinks.len();
        sockets.sinks[i].send(Message::text(frame.to_string())).await.map_err(api::ws_error)?;
    }
    Ok(())
}

/// Waits until every socket has `n` of the phase's messages and the senders `n` acks.
async fn wait_delivered(sockets: &Sockets, tag: char, n: usize, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let got = sockets.delivered(tag);
        if got.iter().all(|g| *g >= n as u64) && sockets.acks(tag) >= n as u64 {
            return true;
        }
        if Instant::now() > deadline || sockets.closed() > 0 {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One reading of the emulator's counters, of the function instances' CPU and of the log.
struct Snapshot {
    at: Instant,
    stats: Value,
    /// Per instance pid: (function, CPU seconds).
    cpu: HashMap<u32, (String, f64)>,
    emulator_cpu: Option<f64>,
    log_len: Option<u64>,
}

/// The function instances: the emulator's children, named by their executable.
fn instances_cpu(emulator: u32) -> HashMap<u32, (String, f64)> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else { return out };
    for entry in dir.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else { continue };
        // `rest` starts at field 3 (state); the parent pid is field 4.
        let ppid = rest.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok());
        if ppid != Some(emulator) {
            continue;
        }
        let name = std::fs::read_link(format!("/proc/{pid}/exe"))
            .ok()
            .and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "?".into());
        if let Some(cpu) = util::cpu_seconds(&pid.to_string()) {
            out.insert(pid, (name, cpu));
        }
    }
    out
}

async fn snapshot(api: &Api, o: &AwsCostOpts) -> Result<Snapshot> {
    let stats = api.get("/_emulator/stats", None).await?;
    if !stats["functions"].is_object() {
        return Err(Error::new("config", "/_emulator/stats has no `functions`: is this `mathia-local emulate`?"));
    }
    Ok(Snapshot {
        at: Instant::now(),
        stats,
        cpu: o.emulator_pid.map(instances_cpu).unwrap_or_default(),
        emulator_cpu: o.emulator_pid.and_then(|p| util::cpu_seconds(&p.to_string())),
        log_len: o.log_file.as_ref().and_then(|f| std::fs::metadata(f).ok()).map(|m| m.len()),
    })
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

fn function_names(a: &Snapshot, b: &Snapshot) -> Vec<String> {
    let mut names: Vec<String> =
        b.stats["functions"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default();
    for k in a.stats["functions"].as_object().into_iter().flat_map(|m| m.keys()) {
        if !names.contains(k) {
            names.push(k.clone());
        }
    }
    names.sort();
    names
}

/// Counter differences between two snapshots: AWS calls by operation, management API, functions.
struct Window {
    secs: f64,
    aws: BTreeMap<String, f64>,
    management: BTreeMap<String, f64>,
    invocations: BTreeMap<String, f64>,
    cold_starts: BTreeMap<String, f64>,
    errors: BTreeMap<String, f64>,
    /// Durations of the invocations that ended in the window.
    durations: BTreeMap<String, Vec<f64>>,
    /// CPU seconds of each function's instances.
    cpu: BTreeMap<String, f64>,
    emulator_cpu: Option<f64>,
    /// (lines, bytes) of the functions' JSON log lines.
    log: Option<(u64, u64)>,
}

fn window(a: &Snapshot, b: &Snapshot, log_file: Option<&PathBuf>) -> Window {
    let diff_map = |key: &str| -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for (k, v) in b.stats[key].as_object().into_iter().flatten() {
            let before = num(&a.stats[key][k]);
            if v.is_number() {
                out.insert(k.clone(), num(v) - before);
            }
        }
        out
    };
    let (mut invocations, mut cold_starts, mut errors, mut durations) =
        (BTreeMap::new(), BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    for f in function_names(a, b) {
        let (fa, fb) = (&a.stats["functions"][&f], &b.stats["functions"][&f]);
        invocations.insert(f.clone(), num(&fb["invocations"]) - num(&fa["invocations"]));
        cold_starts.insert(f.clone(), num(&fb["cold_starts"]) - num(&fa["cold_starts"]));
        errors.insert(f.clone(), num(&fb["errors"]) - num(&fa["errors"]));
        let before = fa["durations_ms"].as_array().map(Vec::len).unwrap_or(0);
        let all: Vec<f64> = fb["durations_ms"].as_array().into_iter().flatten().filter_map(Value::as_f64).collect();
        durations.insert(f.clone(), all.get(before..).unwrap_or(&[]).to_vec());
    }
    let mut cpu: BTreeMap<String, f64> = BTreeMap::new();
    for (pid, (name, after)) in &b.cpu {
        let before = a.cpu.get(pid).map(|(_, c)| *c).unwrap_or(0.0);
        *cpu.entry(name.clone()).or_default() += after - before;
    }
    let log = match (log_file, a.log_len, b.log_len) {
        (Some(f), Some(from), Some(to)) if to >= from => read_log_range(f, from, to),
        _ => None,
    };
    Window {
        secs: b.at.duration_since(a.at).as_secs_f64(),
        aws: diff_map("aws_calls"),
        management: diff_map("management_api"),
        invocations,
        cold_starts,
        errors,
        durations,
        cpu,
        emulator_cpu: match (a.emulator_cpu, b.emulator_cpu) {
            (Some(x), Some(y)) => Some(y - x),
            _ => None,
        },
        log,
    }
}

/// JSON lines (the functions log JSON, as on Lambda; the emulator's own lines are plain text).
fn read_log_range(file: &PathBuf, from: u64, to: u64) -> Option<(u64, u64)> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(file).ok()?;
    f.seek(SeekFrom::Start(from)).ok()?;
    let mut buf = Vec::new();
    f.take(to - from).read_to_end(&mut buf).ok()?;
    let (mut lines, mut bytes) = (0, 0);
    for line in buf.split(|b| *b == b'\n') {
        if line.first() == Some(&b'{') {
            lines += 1;
            bytes += line.len() as u64 + 1;
        }
    }
    Some((lines, bytes))
}

/// The size DynamoDB bills an attribute value at: strings and binaries by their bytes, numbers
/// by about one byte per two significant digits plus one.
fn value_size(v: &Value) -> u64 {
    let Some((kind, inner)) = v.as_object().and_then(|m| m.iter().next()) else { return 0 };
    match kind.as_str() {
        "S" => inner.as_str().map(|s| s.len() as u64).unwrap_or(0),
        "B" => inner.as_str().map(|s| (s.len() as u64 * 3) / 4).unwrap_or(0),
        "N" => {
            let digits: String = inner.as_str().unwrap_or("").chars().filter(char::is_ascii_digit).collect();
            let significant = digits.trim_start_matches('0').trim_end_matches('0').len() as u64;
            significant.div_ceil(2) + 1
        }
        "BOOL" | "NULL" => 1,
        "L" => 3 + inner.as_array().into_iter().flatten().map(|e| 1 + value_size(e)).sum::<u64>(),
        "M" => {
            3 + inner.as_object().into_iter().flatten().map(|(k, e)| k.len() as u64 + 1 + value_size(e)).sum::<u64>()
        }
        "SS" | "NS" | "BS" => {
            inner.as_array().into_iter().flatten().map(|e| e.as_str().unwrap_or("").len() as u64).sum()
        }
        _ => 0,
    }
}

fn item_size(item: &Map<String, Value>) -> u64 {
    item.iter().map(|(name, v)| name.len() as u64 + value_size(v)).sum()
}

/// Scans the connections table (unsigned JSON requests, as moto accepts them) and sums the item
/// sizes the registry's reads are billed on.
async fn registry_items(endpoint: &str, table: &str) -> Result<Value> {
    let http = reqwest::Client::new();
    let mut items: Vec<Map<String, Value>> = Vec::new();
    let mut start: Option<Value> = None;
    loop {
        let mut body = json!({ "TableName": table });
        if let Some(k) = start.take() {
            body["ExclusiveStartKey"] = k;
        }
        let out: Value = http
            .post(endpoint)
            .header("X-Amz-Target", "DynamoDB_20120810.Scan")
            .header("Content-Type", "application/x-amz-json-1.0")
            .header(
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
            )
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| Error::new("http_transport", format!("scan {table}: {e}")))?
            .json()
            .await
            .map_err(|e| Error::new("http_body", format!("scan {table}: {e}")))?;
        let Some(page) = out["Items"].as_array() else {
            return Err(Error::new("http_body", format!("scan {table}: {out}")));
        };
        items.extend(page.iter().filter_map(|i| i.as_object().cloned()));
        match out.get("LastEvaluatedKey") {
            Some(k) if !k.is_null() => start = Some(k.clone()),
            _ => break,
        }
    }
    let s = |i: &Map<String, Value>, k: &str| i.get(k).and_then(|v| v["S"].as_str()).unwrap_or("").to_owned();
    let stats = |sizes: &[u64]| {
        json!({
            "n": sizes.len(),
            "mean_bytes": round(sizes.iter().sum::<u64>() as f64 / sizes.len().max(1) as f64, 1),
            "max_bytes": sizes.iter().max(),
        })
    };
    let (mut meta, mut room) = (Vec::new(), Vec::new());
    let (mut per_connection, mut per_room): (HashMap<String, u64>, HashMap<String, u64>) = Default::default();
    for i in &items {
        let size = item_size(i);
        *per_connection.entry(s(i, "pk")).or_default() += size;
        let sk = s(i, "sk");
        if sk == "META" {
            meta.push(size);
        } else if sk.starts_with("ROOM#") {
            room.push(size);
            *per_room.entry(s(i, "gsi1pk")).or_default() += size;
        }
    }
    Ok(json!({
        "table": table,
        "items": items.len(),
        "meta": stats(&meta),
        "room": stats(&room),
        // What the two reads of a message return: the sender's connection (its META and room
        // items, by `pk`) and the room's subscriptions (the `gsi1` index).
        "largest_connection_bytes": per_connection.values().max(),
        "largest_room_index_bytes": per_room.values().max(),
    }))
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn duration_json(d: &[f64]) -> Value {
    let mut s = d.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let sum: f64 = s.iter().sum();
    let billed: f64 = s.iter().map(|x| x.ceil().max(1.0)).sum();
    json!({
        "n": s.len(),
        "p10": round(quantile(&s, 0.10), 2),
        "p50": round(quantile(&s, 0.50), 2),
        "p90": round(quantile(&s, 0.90), 2),
        "p99": round(quantile(&s, 0.99), 2),
        // Invocations that took 40 ms or more: a delayed ACK's length on Linux, which a small
        // write held back by Nagle's algorithm waits for.
        "n_over_40ms": s.iter().filter(|x| **x >= 40.0).count(),
        "mean": round(if s.is_empty() { 0.0 } else { sum / s.len() as f64 }, 2),
        "max": round(s.last().copied().unwrap_or(0.0), 2),
        "sum": round(sum, 1),
        // Lambda bills each invocation's duration rounded up to the next ms.
        "billed_sum": billed,
    })
}

/// Waits at least `min`, then until the message-driven counters have not moved for 2 s.
async fn settle(api: &Api, min: Duration, timeout: Duration) -> Result<()> {
    tokio::time::sleep(min).await;
    let key = |s: &Value| -> Vec<f64> {
        let f = &s["functions"];
        vec![
            num(&f["ws-message"]["invocations"]),
            num(&f["moderation-worker"]["invocations"]),
            num(&f["ai-worker"]["invocations"]),
            num(&s["aws_calls"]["sqs.SendMessage"]),
            num(&s["aws_calls"]["sqs.SendMessageBatch"]),
            num(&s["management_api"]["post"]),
        ]
    };
    let deadline = Instant::now() + timeout;
    let mut last = key(&api.get("/_emulator/stats", None).await?);
    let mut still = Instant::now();
    while still.elapsed() < Duration::from_secs(2) {
        if Instant::now() > deadline {
            eprintln!("aws-cost: warning: counters still moving after {timeout:?}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = key(&api.get("/_emulator/stats", None).await?);
        if now != last {
            last = now;
            still = Instant::now();
        }
    }
    Ok(())
}

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
    let body = format!("benchmark message {}", padding(o.body_bytes));
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

/// An empty snapshot: counters from zero (for what the setup did).
fn after_setup_start() -> Snapshot {
    Snapshot { at: Instant::now(), stats: json!({}), cpu: HashMap::new(), emulator_cpu: None, log_len: None }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_sizes() {
        let item = json!({
            "pk": {"S": "CONN#abc"},          // 2 + 8
            "expires_at": {"N": "1767225600"}, // 10 + (8 significant digits / 2 + 1)
            "ok": {"BOOL": true},              // 2 + 1
        });
        assert_eq!(item_size(item.as_object().unwrap()), 10 + 15 + 3);
    }

    #[test]
    fn quantiles_and_billing() {
        let d = duration_json(&[1.2, 3.0, 0.4, 10.5]);
        assert_eq!(d["n"], 4);
        assert_eq!(d["p50"], 1.2);
        assert_eq!(d["max"], 10.5);
        // 2 + 3 + 1 + 11
        assert_eq!(d["billed_sum"], 17.0);
    }
}
