//! The room's sockets: opens and joins one per member, counts what each receives (by phase and
//! frame type; this run's deliveries and acks by their `client_msg_id` tag), sends paced
//! messages round-robin over them and waits until every socket has every message.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU8, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use futures::{SinkExt, StreamExt, stream::SplitSink};
use serde_json::{Value, json};
use tokio_tungstenite::{connect_async_with_config, tungstenite::Message};
use uuid::Uuid;

use super::SETUP;
use crate::{
    api::{self, Api, Ws},
    util::Result,
};

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

pub(super) struct Sockets {
    pub(super) sinks: Vec<SplitSink<Ws, Message>>,
    counts: Vec<Arc<Mutex<SocketCounts>>>,
    pub(super) phase: Arc<AtomicU8>,
    pub(super) readers: Vec<tokio::task::JoinHandle<()>>,
}

impl Sockets {
    pub(super) fn delivered(&self, phase: char) -> Vec<u64> {
        self.counts.iter().map(|c| c.lock().unwrap().delivered.get(&phase).copied().unwrap_or(0)).collect()
    }
    pub(super) fn acks(&self, phase: char) -> u64 {
        self.counts.iter().map(|c| c.lock().unwrap().acks.get(&phase).copied().unwrap_or(0)).sum()
    }
    pub(super) fn errors(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for c in &self.counts {
            for (k, v) in &c.lock().unwrap().errors {
                *out.entry(k.clone()).or_default() += v;
            }
        }
        out
    }
    pub(super) fn error_samples(&self) -> Vec<String> {
        self.counts.iter().filter_map(|c| c.lock().unwrap().error_sample.clone()).take(3).collect()
    }
    fn closed(&self) -> usize {
        self.counts.iter().filter(|c| c.lock().unwrap().closed).count()
    }
    /// Frames received in a phase, by type, over all sockets.
    pub(super) fn frames(&self, phase: u8) -> BTreeMap<String, u64> {
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

pub(super) async fn open_sockets(
    api: &Api,
    ws_url: &str,
    users: &[(api::Session, Option<Uuid>)],
    room: Uuid,
) -> Result<Sockets> {
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
pub(super) async fn send_paced(
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
pub(super) async fn wait_delivered(sockets: &Sockets, tag: char, n: usize, timeout: Duration) -> bool {
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
