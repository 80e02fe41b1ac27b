//! The fan-out harness: R rooms × M clients, S senders per room. Set up once, then run one or
//! more timed steps (each at its own offered rate) over the same connections.
//!
//! Every message's `client_msg_id` is `b<step>:<send_ns>:<sender>:<n>` (unique per sender), and
//! the server echoes it in the `new_message` every socket of the room gets. `send_ns` is the
//! *intended* send time (the schedule's, not the moment the frame left), in nanoseconds since
//! this process's origin, so a receiver in this same process measures latency against the
//! sender's clock and a sender that falls behind schedule counts as latency (no coordinated
//! omission).
//!
//! The body is plain words ("benchmark message" and padding): the server's moderation reads
//! bodies with a profanity filter that decodes digits as letters (l33t), so numbers in a body
//! get senders flagged and muted within seconds.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use futures::{SinkExt, StreamExt, stream};
use hdrhistogram::Histogram;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::{
    api::{self, Api, Session, Ws},
    util::{self, Error, Probe, Result, hist_json, new_hist, now_ns, record_us, round},
};

const MAX_STEPS: usize = 256;
const SHARDS: usize = 16;
const JOIN_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Clone, Debug)]
pub struct SetupOpts {
    pub run_id: String,
    pub rooms: usize,
    pub clients_per_room: usize,
    pub senders_per_room: usize,
    pub body_bytes: usize,
    pub setup_concurrency: usize,
    pub connect_concurrency: usize,
    /// Reconnect (new ticket, new socket, join again) when a socket drops.
    pub reconnect: bool,
    /// Keep every acknowledged message id for `verify`.
    pub track_acks: bool,
}

#[derive(Clone, Debug)]
pub struct StepOpts {
    pub drain_max: Duration,
    pub server_pid: Option<u32>,
    /// Per-second samples of the counters.
    pub timeline: bool,
    /// Sample the server's VmRSS this often.
    pub rss_every: Option<Duration>,
    /// Print a progress line this often.
    pub progress_every: Option<Duration>,
}

#[derive(Clone, Copy)]
struct StepPlan {
    step: u32,
    interval: Option<Duration>,
    start: Instant,
    end: Instant,
}

#[derive(Default)]
struct StepCounters {
    sent: AtomicU64,
    acked: AtomicU64,
    delivered: AtomicU64,
    errors: AtomicU64,
    senders_done: AtomicU64,
    closed: AtomicBool,
}

#[derive(Default)]
struct Shard {
    lat: HashMap<u32, Histogram<u64>>,
    ack: HashMap<u32, Histogram<u64>>,
    /// How late each sender sent behind its schedule (the load generator's own timer and CPU).
    lag: HashMap<u32, Histogram<u64>>,
    acked_ids: Vec<(u32, Uuid)>,
}

#[derive(Default)]
pub struct Shared {
    steps: Vec<StepCounters>,
    shards: Vec<Mutex<Shard>>,
    track_acks: bool,
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    pub delivered: AtomicU64,
    pub errors: AtomicU64,
    pub connected: AtomicI64,
    pub disconnects: AtomicU64,
    pub reconnects: AtomicU64,
    pub reconnect_failures: AtomicU64,
    pub seq_gaps: AtomicU64,
    pub out_of_order: AtomicU64,
    error_codes: Mutex<BTreeMap<String, u64>>,
    error_samples: Mutex<BTreeMap<String, String>>,
}

impl Shared {
    fn new(track_acks: bool) -> Self {
        Self {
            steps: (0..MAX_STEPS).map(|_| StepCounters::default()).collect(),
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            track_acks,
            ..Default::default()
        }
    }

    fn step(&self, step: u32) -> &StepCounters {
        &self.steps[(step as usize).min(MAX_STEPS - 1)]
    }

    pub fn count_error(&self, code: &str) {
        *self.error_codes.lock().unwrap().entry(code.to_owned()).or_default() += 1;
    }

    /// Keeps the first message seen for each error code.
    fn sample_error(&self, code: &str, text: &str) {
        let mut samples = self.error_samples.lock().unwrap();
        if samples.len() < 20 && !samples.contains_key(code) {
            samples.insert(code.to_owned(), text.chars().take(200).collect());
        }
    }

    pub fn error_samples(&self) -> BTreeMap<String, String> {
        self.error_samples.lock().unwrap().clone()
    }

    pub fn error_codes(&self) -> BTreeMap<String, u64> {
        self.error_codes.lock().unwrap().clone()
    }
}

pub struct RoomInfo {
    pub id: Uuid,
    pub owner: Session,
    /// The newest message before the run (the history check pages forward from it).
    pub anchor: Option<Uuid>,
}

pub struct Harness {
    pub api: Api,
    pub opts: SetupOpts,
    pub rooms: Vec<RoomInfo>,
    pub shared: Arc<Shared>,
    pub n_senders: usize,
    /// `{users, signup_s, connect_s, connections_per_s, connect_ms}`.
    pub setup: Value,
    plan_tx: watch::Sender<Option<StepPlan>>,
    stop_tx: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

pub struct StepResult {
    pub json: Value,
    pub delivery_ratio: f64,
    pub delivered_per_s: f64,
    pub p99_ms: f64,
}

/// `n` bytes of harmless words (see the module comment on moderation).
fn padding(n: usize) -> String {
    const WORDS: &str = "the quick brown fox jumps over the lazy dog ";
    WORDS.repeat(n / WORDS.len() + 1)[..n.min(3900)].trim_end().to_owned()
}

/// (room, client, session, socket, newest message at join, connect µs)
type Opened = (usize, usize, Session, Ws, Option<(Uuid, i64)>, u64);

fn email(run: &str, room: usize, client: usize) -> String {
    format!("{run}-r{room}-c{client}@bench.example.com")
}

impl Harness {
    pub async fn setup(api: Api, opts: SetupOpts) -> Result<Self> {
        let r_n = opts.rooms;
        let m = opts.clients_per_room;
        if r_n == 0 || m == 0 || opts.senders_per_room > m {
            return Err(Error::new("config", "need rooms ≥ 1, clients ≥ 1 and senders ≤ clients"));
        }
        let users = r_n * m;
        eprintln!("setup: signing up {users} users ({r_n} rooms × {m} clients), onboarding them…");
        let t0 = Instant::now();
        let run = opts.run_id.clone();

        // Room owners: sign up, onboard with a workspace, create the room, make an invite.
        let owners: Vec<Result<(usize, Session, Uuid, String)>> = stream::iter(0..r_n)
            .map(|r| {
                let api = api.clone();
                let run = run.clone();
                async move {
                    let name = format!("bench owner {r}");
                    let s = api.owner(&email(&run, r, 0), &name, &format!("bench {run} {r}")).await?;
                    let room = api.create_room(&s, &format!("bench-{run}-{r}")).await?;
                    let code = api.invite(&s, room).await?;
                    Ok((r, s, room, code))
                }
            })
            .buffer_unordered(opts.setup_concurrency.max(1))
            .collect()
            .await;
        let mut rooms: Vec<Option<(Session, Uuid, String)>> = (0..r_n).map(|_| None).collect();
        for o in owners {
            let (r, s, room, code) = o?;
            rooms[r] = Some((s, room, code));
        }
        let rooms: Vec<(Session, Uuid, String)> = rooms.into_iter().map(Option::unwrap).collect();

        // Members: sign up and onboard by joining the room's invite.
        let members: Vec<Result<(usize, usize, Session)>> =
            stream::iter((0..r_n).flat_map(|r| (1..m).map(move |c| (r, c))))
                .map(|(r, c)| {
                    let api = api.clone();
                    let run = run.clone();
                    let code = rooms[r].2.clone();
                    async move {
                        let s = api.member(&email(&run, r, c), &format!("bench {r}.{c}"), &code).await?;
                        Ok((r, c, s))
                    }
                })
                .buffer_unordered(opts.setup_concurrency.max(1))
                .collect()
                .await;
        let mut sessions: Vec<Vec<Option<Session>>> = (0..r_n)
            .map(|r| {
                let mut v = vec![None; m];
                v[0] = Some(rooms[r].0.clone());
                v
            })
            .collect();
        for res in members {
            let (r, c, s) = res?;
            sessions[r][c] = Some(s);
        }
        let signup_s = t0.elapsed().as_secs_f64();
        eprintln!("setup: {users} users ready in {signup_s:.1} s; opening {users} sockets and joining…");

        // Sockets: ticket, handshake, join_room.
        let t1 = Instant::now();
        let clients: Vec<(usize, usize, Session)> = sessions
            .iter()
            .enumerate()
            .flat_map(|(r, v)| v.iter().enumerate().map(move |(c, s)| (r, c, s.clone().unwrap())))
            .collect();
        let connected: Vec<Result<Opened>> = stream::iter(clients)
            .map(|(r, c, s)| {
                let api = api.clone();
                let room = rooms[r].1;
                async move {
                    let mut last_err = None;
                    for attempt in 0..3 {
                        if attempt > 0 {
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                        let t = Instant::now();
                        let res = async {
                            let mut ws = api.connect(&s).await?;
                            let joined = api::join_room(&mut ws, room, JOIN_TIMEOUT).await?;
                            Ok::<_, Error>((ws, joined.last))
                        }
                        .await;
                        match res {
                            Ok((ws, last)) => {
                                let us = t.elapsed().as_micros() as u64;
                                return Ok((r, c, s, ws, last, us));
                            }
                            Err(e) => last_err = Some(e),
                        }
                    }
                    Err(last_err.unwrap())
                }
            })
            .buffer_unordered(opts.connect_concurrency.max(1))
            .collect()
            .await;
        let connect_s = t1.elapsed().as_secs_f64();
        let mut connect_hist = new_hist();

        let shared = Arc::new(Shared::new(opts.track_acks));
        let (plan_tx, plan_rx) = watch::channel(None);
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let mut anchors: Vec<Option<Uuid>> = vec![None; r_n];
        let mut n_senders = 0;
        let pad = padding(opts.body_bytes);
        for res in connected {
            let (r, c, s, ws, last, us) = res?;
            record_us(&mut connect_hist, us);
            if c == 0 {
                anchors[r] = last.map(|l| l.0);
            }
            let (tx, rx) = mpsc::unbounded_channel::<String>();
            let idx = r * m + c;
            let ctx = ClientCtx {
                idx,
                room_idx: r as u32,
                room_id: rooms[r].1,
                session: s,
                api: api.clone(),
                shared: shared.clone(),
                stop: stop_rx.clone(),
                reconnect: opts.reconnect,
            };
            shared.connected.fetch_add(1, Relaxed);
            tasks.push(tokio::spawn(client_loop(ctx, ws, last.map(|l| l.1).unwrap_or(0), rx)));
            if c < opts.senders_per_room {
                tasks.push(tokio::spawn(sender_loop(
                    shared.clone(),
                    tx,
                    plan_rx.clone(),
                    rooms[r].1,
                    n_senders,
                    pad.clone(),
                )));
                n_senders += 1;
            }
        }
        eprintln!("setup: {users} sockets joined in {connect_s:.1} s ({:.0}/s)", users as f64 / connect_s);
        let setup = json!({
            "users": users,
            "signup_s": round(signup_s, 2),
            "connect_s": round(connect_s, 2),
            "connections_per_s": round(users as f64 / connect_s, 1),
            "connect_ms": hist_json(&connect_hist),
        });
        let rooms =
            rooms.into_iter().zip(anchors).map(|((owner, id, _), anchor)| RoomInfo { id, owner, anchor }).collect();
        Ok(Self { api, opts, rooms, shared, n_senders, setup, plan_tx, stop_tx, tasks })
    }

    /// One timed step at `rate_per_sender` messages/s per sender.
    pub async fn run_step(&self, step: u32, rate_per_sender: f64, duration: Duration, o: &StepOpts) -> StepResult {
        let sh = &self.shared;
        let counters = sh.step(step);
        let m = self.opts.clients_per_room as u64;
        let probe = Probe::start(o.server_pid);
        let errors_before = sh.error_codes();
        let (disc0, rec0, recf0) =
            (sh.disconnects.load(Relaxed), sh.reconnects.load(Relaxed), sh.reconnect_failures.load(Relaxed));
        let (gaps0, ooo0) = (sh.seq_gaps.load(Relaxed), sh.out_of_order.load(Relaxed));
        let start = Instant::now() + Duration::from_millis(100);
        let end = start + duration;
        let interval = (rate_per_sender > 0.0).then(|| Duration::from_secs_f64(1.0 / rate_per_sender));
        let _ = self.plan_tx.send(Some(StepPlan { step, interval, start, end }));
        tokio::time::sleep_until(start.into()).await;
        let delivered0 = sh.delivered.load(Relaxed);
        let acked0 = sh.acked.load(Relaxed);

        // Sample while the step runs.
        let mut timeline = Vec::new();
        let mut rss_samples = Vec::new();
        let pid = o.server_pid.map(|p| p.to_string());
        let mut last =
            (sh.sent.load(Relaxed), sh.acked.load(Relaxed), sh.delivered.load(Relaxed), sh.errors.load(Relaxed));
        let mut next_rss = start;
        let mut next_progress = o.progress_every.map(|every| start + every);
        let mut tick = start;
        if let (Some(_), Some(p)) = (o.rss_every, pid.as_deref())
            && let Some((rss, _)) = util::mem_kb(p)
        {
            rss_samples.push(json!({ "t_s": 0.0, "unix_ms": util::unix_ms(), "rss_kb": rss }));
            next_rss = start + o.rss_every.unwrap();
        }
        while Instant::now() < end {
            tick += Duration::from_secs(1);
            tokio::time::sleep_until(tick.min(end).into()).await;
            let now = Instant::now();
            let t_s = round(now.duration_since(start).as_secs_f64(), 2);
            if o.timeline {
                let cur = (
                    sh.sent.load(Relaxed),
                    sh.acked.load(Relaxed),
                    sh.delivered.load(Relaxed),
                    sh.errors.load(Relaxed),
                );
                timeline.push(json!({
                    "t_s": t_s,
                    "unix_ms": util::unix_ms(),
                    "sent": cur.0 - last.0,
                    "acked": cur.1 - last.1,
                    "delivered": cur.2 - last.2,
                    "errors": cur.3 - last.3,
                    "connected": sh.connected.load(Relaxed),
                    "disconnects": sh.disconnects.load(Relaxed),
                    "reconnect_failures": sh.reconnect_failures.load(Relaxed),
                }));
                last = cur;
            }
            if let (Some(every), Some(p)) = (o.rss_every, pid.as_deref())
                && now >= next_rss
            {
                if let Some((rss, _)) = util::mem_kb(p) {
                    rss_samples.push(json!({ "t_s": t_s, "unix_ms": util::unix_ms(), "rss_kb": rss }));
                }
                next_rss += every;
            }
            if let (Some(at), Some(every)) = (next_progress, o.progress_every)
                && now >= at
            {
                eprintln!(
                    "  t={t_s:.0}s sent {} acked {} delivered {} errors {} connected {}",
                    sh.sent.load(Relaxed),
                    sh.acked.load(Relaxed),
                    sh.delivered.load(Relaxed),
                    sh.errors.load(Relaxed),
                    sh.connected.load(Relaxed)
                );
                next_progress = Some(at + every);
            }
        }
        let delivered_window = sh.delivered.load(Relaxed) - delivered0;
        let acked_window = sh.acked.load(Relaxed) - acked0;

        // Senders finish the schedule (a late one may still be catching up).
        let wait_senders = Instant::now();
        while counters.senders_done.load(Relaxed) < self.n_senders as u64
            && wait_senders.elapsed() < Duration::from_secs(10)
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Drain: every expected delivery and every ack, or no progress, or the limit.
        let drain_start = Instant::now();
        let mut last_progress = (Instant::now(), 0u64);
        loop {
            let sent = counters.sent.load(Relaxed);
            let delivered = counters.delivered.load(Relaxed);
            let answered = counters.acked.load(Relaxed) + counters.errors.load(Relaxed);
            if delivered >= sent * m && answered >= sent {
                break;
            }
            let progress = delivered + answered;
            if progress != last_progress.1 {
                last_progress = (Instant::now(), progress);
            } else if last_progress.0.elapsed() > Duration::from_millis(1500) {
                break;
            }
            if drain_start.elapsed() >= o.drain_max {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let drain_s = drain_start.elapsed().as_secs_f64();
        counters.closed.store(true, Relaxed);
        let usage = probe.finish();

        let mut lat = new_hist();
        let mut ack = new_hist();
        let mut lag = new_hist();
        for shard in &sh.shards {
            let mut s = shard.lock().unwrap();
            if let Some(h) = s.lat.remove(&step) {
                lat.add(&h).ok();
            }
            if let Some(h) = s.lag.remove(&step) {
                lag.add(&h).ok();
            }
            if let Some(h) = s.ack.remove(&step) {
                ack.add(&h).ok();
            }
        }
        let sent = counters.sent.load(Relaxed);
        let acked = counters.acked.load(Relaxed);
        let delivered = counters.delivered.load(Relaxed);
        let errors = counters.errors.load(Relaxed);
        let expected = sent * m;
        let dur = duration.as_secs_f64();
        let delivery_ratio = if expected > 0 { delivered as f64 / expected as f64 } else { 0.0 };
        let delivered_per_s = delivered_window as f64 / dur;
        let p99_ms = if lat.is_empty() { f64::INFINITY } else { lat.value_at_quantile(0.99) as f64 / 1000.0 };
        let errors_after = sh.error_codes();
        let error_codes: BTreeMap<String, u64> = errors_after
            .iter()
            .map(|(k, v)| (k.clone(), v - errors_before.get(k).copied().unwrap_or(0)))
            .filter(|(_, v)| *v > 0)
            .collect();
        let offered = rate_per_sender * self.n_senders as f64;
        let mut json = json!({
            "step": step,
            "duration_s": dur,
            "rate_per_sender": rate_per_sender,
            "offered_msgs_per_s": round(offered, 2),
            "sent": sent,
            "sent_per_s": round(sent as f64 / dur, 2),
            "acked": acked,
            "acked_per_s": round(acked_window as f64 / dur, 2),
            "expected_deliveries": expected,
            "delivered": delivered,
            "delivery_ratio": round(delivery_ratio, 5),
            "delivered_per_s": round(delivered_per_s, 1),
            "drain_s": round(drain_s, 2),
            "latency_ms": hist_json(&lat),
            "ack_latency_ms": hist_json(&ack),
            "send_lag_ms": hist_json(&lag),
            "errors": errors,
            "error_codes": error_codes,
            "disconnects": sh.disconnects.load(Relaxed) - disc0,
            "reconnects": sh.reconnects.load(Relaxed) - rec0,
            "reconnect_failures": sh.reconnect_failures.load(Relaxed) - recf0,
            "seq_gaps": sh.seq_gaps.load(Relaxed) - gaps0,
            "out_of_order": sh.out_of_order.load(Relaxed) - ooo0,
            "usage": usage,
        });
        if o.timeline {
            json["timeline"] = Value::Array(timeline);
        }
        if o.rss_every.is_some() {
            json["rss_samples"] = Value::Array(rss_samples);
        }
        StepResult { json, delivery_ratio, delivered_per_s, p99_ms }
    }

    /// Pages through every room's history and looks for each acknowledged message id.
    pub async fn verify(&self) -> Value {
        let mut acked: HashMap<u32, HashSet<Uuid>> = HashMap::new();
        for shard in &self.shared.shards {
            for (r, id) in &shard.lock().unwrap().acked_ids {
                acked.entry(*r).or_default().insert(*id);
            }
        }
        let total_acked: usize = acked.values().map(HashSet::len).sum();
        let mut found_total = 0usize;
        let mut history_total = 0usize;
        let mut missing: Vec<String> = Vec::new();
        let mut missing_n = 0usize;
        let mut history_seq_gaps = 0i64;
        let mut duplicates = 0usize;
        let mut failures = Vec::new();
        for (r, room) in self.rooms.iter().enumerate() {
            let ids = match history(&self.api, &room.owner, room.id, room.anchor).await {
                Ok(h) => h,
                Err(e) => {
                    failures.push(format!("room {r}: {e}"));
                    continue;
                }
            };
            history_total += ids.len();
            let mut seqs: Vec<i64> = ids.iter().map(|m| m.seq).collect();
            seqs.sort_unstable();
            history_seq_gaps += seqs.windows(2).map(|w| (w[1] - w[0] - 1).max(0)).sum::<i64>();
            let mut by_cmid: HashSet<(String, String)> = HashSet::new();
            for msg in &ids {
                if let Some(c) = &msg.cmid
                    && !by_cmid.insert((msg.author.clone(), c.clone()))
                {
                    duplicates += 1;
                }
            }
            let found: HashSet<Uuid> = ids.iter().map(|m| m.id).collect();
            if let Some(want) = acked.get(&(r as u32)) {
                for id in want {
                    if found.contains(id) {
                        found_total += 1;
                    } else {
                        missing_n += 1;
                        if missing.len() < 20 {
                            missing.push(id.to_string());
                        }
                    }
                }
            }
        }
        json!({
            "acked": total_acked,
            "found": found_total,
            "missing": missing_n,
            "missing_ids": missing,
            "history_messages": history_total,
            "history_seq_gaps": history_seq_gaps,
            "duplicate_client_msg_ids": duplicates,
            "failures": failures,
            "ok": failures.is_empty() && missing_n == 0,
        })
    }

    /// Waits until deliveries stop arriving (a backlog has cleared), at most `max`.
    pub async fn quiesce(&self, max: Duration) {
        let t = Instant::now();
        let mut last = self.shared.delivered.load(Relaxed);
        while t.elapsed() < max {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = self.shared.delivered.load(Relaxed);
            if now == last {
                return;
            }
            last = now;
        }
    }

    /// Closes every socket.
    pub async fn shutdown(self) {
        let _ = self.plan_tx.send(None);
        let _ = self.stop_tx.send(true);
        let all = futures::future::join_all(self.tasks);
        let _ = tokio::time::timeout(Duration::from_secs(10), all).await;
    }
}

struct HistMsg {
    id: Uuid,
    seq: i64,
    author: String,
    cmid: Option<String>,
}

/// Every message after `anchor` (or the whole room), retrying each page for up to 60 s.
async fn history(api: &Api, s: &Session, room: Uuid, anchor: Option<Uuid>) -> Result<Vec<HistMsg>> {
    let mut out = Vec::new();
    let forward = anchor.is_some();
    let mut cursor = anchor;
    loop {
        let c = cursor.map(|id| (if forward { "after" } else { "before" }, id));
        let started = Instant::now();
        let page = loop {
            match api.history(s, room, c).await {
                Ok(v) => break v,
                Err(e) if started.elapsed() < Duration::from_secs(60) => {
                    eprintln!("verify: {e}; retrying");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                Err(e) => return Err(e),
            }
        };
        for m in page["messages"].as_array().into_iter().flatten() {
            let Some(id) = m["id"].as_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            out.push(HistMsg {
                id,
                seq: m["seq"].as_i64().unwrap_or(0),
                author: m["author"]["id"].as_str().unwrap_or("").to_owned(),
                cmid: m["client_msg_id"].as_str().map(str::to_owned),
            });
        }
        let next = if forward { &page["next_after"] } else { &page["next_before"] };
        match next.as_str().and_then(|s| s.parse().ok()) {
            Some(id) => cursor = Some(id),
            None => break,
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// One client: reads every frame, writes what its sender queues, reconnects if asked.

struct ClientCtx {
    idx: usize,
    room_idx: u32,
    room_id: Uuid,
    session: Session,
    api: Api,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
    reconnect: bool,
}

#[derive(Deserialize)]
struct Incoming {
    #[serde(rename = "type")]
    ty: String,
    /// A stored message in `new_message`, a human text in `error`.
    message: Option<MsgOrText>,
    client_msg_id: Option<String>,
    message_id: Option<Uuid>,
    code: Option<String>,
    #[serde(rename = "ref")]
    reference: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum MsgOrText {
    Msg(InMsg),
    #[allow(dead_code)]
    Text(String),
}

#[derive(Deserialize)]
struct InMsg {
    seq: i64,
    client_msg_id: Option<String>,
}

/// `b<step>:<send_ns>:…` → (step, send_ns).
fn parse_cmid(cmid: &str) -> Option<(u32, u64)> {
    let mut parts = cmid.strip_prefix('b')?.split(':');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

enum Outcome {
    Stop,
    Lost,
}

async fn client_loop(ctx: ClientCtx, first: Ws, mut last_seq: i64, mut rx: mpsc::UnboundedReceiver<String>) {
    let sh = ctx.shared.clone();
    let mut stop = ctx.stop.clone();
    let mut ws = Some(first);
    let mut backoff = Duration::from_millis(250);
    loop {
        let sock = match ws.take() {
            Some(w) => w,
            None => {
                if *stop.borrow() {
                    break;
                }
                let attempt = async {
                    let mut w = ctx.api.connect(&ctx.session).await?;
                    let joined = api::join_room(&mut w, ctx.room_id, JOIN_TIMEOUT).await?;
                    Ok::<_, Error>((w, joined))
                };
                match attempt.await {
                    Ok((w, joined)) => {
                        sh.reconnects.fetch_add(1, Relaxed);
                        sh.connected.fetch_add(1, Relaxed);
                        last_seq = joined.last.map(|l| l.1).unwrap_or(last_seq);
                        backoff = Duration::from_millis(250);
                        w
                    }
                    Err(e) => {
                        sh.reconnect_failures.fetch_add(1, Relaxed);
                        sh.count_error(&format!("reconnect_{}", e.kind));
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = stopped(&mut stop) => break,
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                        continue;
                    }
                }
            }
        };
        let (mut sink, mut stream) = sock.split();
        let outcome = {
            let reader = async {
                while let Some(msg) = stream.next().await {
                    match msg {
                        Ok(Message::Text(t)) => on_frame(&ctx, t.as_str(), &mut last_seq),
                        Ok(Message::Close(_)) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            };
            // Only senders queue frames; for the others the channel is closed from the start,
            // and the writer just waits.
            let writer = async {
                while let Some(frame) = rx.recv().await {
                    if sink.send(Message::text(frame)).await.is_err() {
                        return;
                    }
                }
                std::future::pending::<()>().await
            };
            tokio::select! {
                _ = reader => Outcome::Lost,
                _ = writer => Outcome::Lost,
                _ = stopped(&mut stop) => Outcome::Stop,
            }
        };
        sh.connected.fetch_sub(1, Relaxed);
        match outcome {
            Outcome::Stop => {
                let _ = tokio::time::timeout(Duration::from_secs(2), sink.close()).await;
                break;
            }
            Outcome::Lost => {
                sh.disconnects.fetch_add(1, Relaxed);
                sh.count_error("disconnected");
                if !ctx.reconnect {
                    break;
                }
            }
        }
    }
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

fn shard_of(ctx: &ClientCtx) -> &Mutex<Shard> {
    &ctx.shared.shards[ctx.idx % SHARDS]
}

fn on_frame(ctx: &ClientCtx, text: &str, last_seq: &mut i64) {
    let sh = &ctx.shared;
    let Ok(f) = serde_json::from_str::<Incoming>(text) else {
        sh.count_error("unparsable_frame");
        return;
    };
    match f.ty.as_str() {
        "new_message" => {
            let Some(MsgOrText::Msg(msg)) = f.message else {
                return;
            };
            if *last_seq > 0 {
                if msg.seq > *last_seq + 1 {
                    sh.seq_gaps.fetch_add((msg.seq - *last_seq - 1) as u64, Relaxed);
                } else if msg.seq <= *last_seq {
                    sh.out_of_order.fetch_add(1, Relaxed);
                }
            }
            *last_seq = (*last_seq).max(msg.seq);
            let Some((step, ns)) = msg.client_msg_id.as_deref().and_then(parse_cmid) else {
                return;
            };
            let now = now_ns();
            sh.delivered.fetch_add(1, Relaxed);
            let c = sh.step(step);
            c.delivered.fetch_add(1, Relaxed);
            if !c.closed.load(Relaxed) {
                let mut s = shard_of(ctx).lock().unwrap();
                record_us(s.lat.entry(step).or_insert_with(new_hist), now.saturating_sub(ns) / 1000);
            }
        }
        "ack" => {
            let (Some(cmid), Some(id)) = (f.client_msg_id, f.message_id) else {
                return;
            };
            let parsed = parse_cmid(&cmid);
            sh.acked.fetch_add(1, Relaxed);
            let now = now_ns();
            let mut s = shard_of(ctx).lock().unwrap();
            if sh.track_acks {
                s.acked_ids.push((ctx.room_idx, id));
            }
            if let Some((step, ns)) = parsed {
                let c = sh.step(step);
                c.acked.fetch_add(1, Relaxed);
                if !c.closed.load(Relaxed) {
                    record_us(s.ack.entry(step).or_insert_with(new_hist), now.saturating_sub(ns) / 1000);
                }
            }
        }
        "error" => {
            sh.errors.fetch_add(1, Relaxed);
            sh.count_error(f.code.as_deref().unwrap_or("unknown"));
            if let Some(MsgOrText::Text(text)) = &f.message {
                sh.sample_error(f.code.as_deref().unwrap_or("unknown"), text);
            }
            if let Some(step) = f.reference.as_deref().and_then(parse_cmid).map(|(step, _)| step) {
                sh.step(step).errors.fetch_add(1, Relaxed);
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// One sender: follows the step plan, open loop, queues frames for its client's socket.

async fn sender_loop(
    sh: Arc<Shared>,
    tx: mpsc::UnboundedSender<String>,
    mut plan_rx: watch::Receiver<Option<StepPlan>>,
    room_id: Uuid,
    sender: usize,
    pad: String,
) {
    loop {
        if plan_rx.changed().await.is_err() {
            return;
        }
        let Some(plan) = *plan_rx.borrow_and_update() else {
            return;
        };
        let c = sh.step(plan.step);
        if let Some(interval) = plan.interval {
            // A random phase so the senders do not all fire on the same tick.
            let phase = interval.mul_f64(rand::random::<f64>());
            let mut k: u64 = 0;
            loop {
                let intended = plan.start + phase + interval.mul_f64(k as f64);
                if intended >= plan.end {
                    break;
                }
                if intended > Instant::now() {
                    tokio::time::sleep_until(intended.into()).await;
                }
                // Latency counts from the moment the frame is handed to the socket: the timer
                // wakes this task up to a few ms after `intended` (its resolution is 1 ms), and
                // that lag is the load generator's, reported on its own as `send_lag_ms`. The
                // sender never waits for the server's answers, and push-back on the socket
                // still counts (frames wait in the writer's queue after this stamp); only CPU
                // the server takes from this process shows as lag instead of latency.
                let sent_at = Instant::now();
                let lag_us = sent_at.saturating_duration_since(intended).as_micros() as u64;
                record_us(
                    sh.shards[sender % SHARDS].lock().unwrap().lag.entry(plan.step).or_insert_with(new_hist),
                    lag_us,
                );
                let ns = util::instant_ns(sent_at);
                let body = format!("benchmark message {pad}");
                let frame = json!({
                    "action": "new_message",
                    "room_id": room_id,
                    "body": body,
                    "client_msg_id": format!("b{}:{ns}:{sender}:{k}", plan.step),
                })
                .to_string();
                if tx.send(frame).is_err() {
                    return;
                }
                sh.sent.fetch_add(1, Relaxed);
                c.sent.fetch_add(1, Relaxed);
                k += 1;
            }
        }
        c.senders_done.fetch_add(1, Relaxed);
    }
}
