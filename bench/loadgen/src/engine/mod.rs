//! The fan-out harness: R rooms × M clients, S senders per room, each client's socket in K rooms
//! (K = 1 unless asked: then the rooms come in groups of K with the same M people). Set up once,
//! then run one or more timed steps (each at its own offered rate) over the same connections.
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
//!
//! The harness is split by what each part does:
//! - this module: the options, the counters every task shares and the `Harness` handle;
//! - `setup`: sign-ups, rooms, sockets, and the per-client and per-sender tasks;
//! - `step`: one timed step, its drain and its JSON result;
//! - `verify`: the history check of every acknowledged message;
//! - `client`: one client's socket (frames in, frames out, reconnects);
//! - `sender`: one sender's open-loop schedule.

mod client;
mod sender;
mod setup;
mod step;
mod verify;

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use serde_json::Value;
use tokio::{sync::watch, task::JoinHandle};
use uuid::Uuid;

use crate::api::{Api, Session};

const MAX_STEPS: usize = 256;
const SHARDS: usize = 16;
const JOIN_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Clone, Debug)]
pub struct SetupOpts {
    pub run_id: String,
    pub rooms: usize,
    pub clients_per_room: usize,
    /// Rooms each client's socket is in: rooms come in groups of this many that share the same
    /// people (`rooms` is a multiple of it), each person sending to at most one room of the
    /// group per `senders_per_room`.
    pub rooms_per_client: usize,
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
    /// `typing` events the clients heard (a typing flood's reach).
    pub typing_heard: AtomicU64,
    /// `presence_update` events the clients heard.
    pub presence_heard: AtomicU64,
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

impl Harness {
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
