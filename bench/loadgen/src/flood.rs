//! Flooders: extra members who, while a fan-out step runs, send every action the protocol has
//! as fast as their socket takes it (or at a set rate) — the abuse of `tests/api/abuse.rs`, in
//! the benchmark. The step's latency and delivery are then those of the room's other people
//! chatting beside the flood.
//!
//! A flooder's frames cycle through new messages, edits, deletes, reactions, typing, leave and
//! join, pings, stop_ai, unknown rooms and actions, malformed JSON and binary frames. Bodies are
//! plain words (digits read as l33t get a sender muted, which would end the flood early).

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::{sync::watch, task::JoinHandle};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::{
    api::{self, Api, Session},
    util::{Error, Result, round},
};

const MIX: u64 = 14;

#[derive(Default)]
struct Counters {
    frames: AtomicU64,
    received: AtomicU64,
    closed: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
}

/// The flooders of one run: started with `start`, flooding from `go` until `stop`.
pub struct Flood {
    counters: Arc<Counters>,
    go: watch::Sender<bool>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    started: Mutex<Option<Instant>>,
    pub flooders: usize,
    pub sockets: usize,
    pub rate: f64,
    pub actions: Actions,
}

/// What a flooder sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Actions {
    /// Every action the protocol has, in turn.
    All,
    /// Typing starts and stops, alternating.
    Typing,
    /// Leaving the room and joining it again, alternating.
    Presence,
    /// Joining the room again and again: each join reads a page of its history.
    Join,
}

fn frame(n: u64, room: Uuid, own: &str, actions: Actions) -> Message {
    match actions {
        Actions::Typing => {
            return Message::text(
                json!({"action": "typing", "room_id": room, "typing": n.is_multiple_of(2)}).to_string(),
            );
        }
        Actions::Presence => {
            let action = if n.is_multiple_of(2) { "leave_room" } else { "join_room" };
            return Message::text(json!({"action": action, "room_id": room}).to_string());
        }
        Actions::Join => return Message::text(json!({"action": "join_room", "room_id": room}).to_string()),
        Actions::All => {}
    }
    let other = Uuid::new_v4();
    let v = match n % MIX {
        0 => {
            json!({"action": "new_message", "room_id": room, "body": "flood words here", "client_msg_id": format!("flood-{}", Uuid::new_v4())})
        }
        1 => {
            json!({"action": "edit_message", "room_id": room, "message_id": own, "body": if n % 28 == 1 { "edited words" } else { "edited again" }})
        }
        2 => json!({"action": "delete_message", "room_id": room, "message_id": other}),
        3 => json!({"action": "react", "room_id": room, "message_id": own, "emoji": "👍", "on": n % 28 == 3}),
        4 => json!({"action": "typing", "room_id": room, "typing": false}),
        5 => json!({"action": "typing", "room_id": room, "typing": true}),
        6 => json!({"action": "leave_room", "room_id": room}),
        7 => json!({"action": "join_room", "room_id": room}),
        8 => json!({"action": "ping"}),
        9 => json!({"action": "stop_ai", "room_id": room, "stream_id": other}),
        10 => json!({"action": "join_room", "room_id": other}),
        11 => json!({"action": "no_such_action"}),
        12 => return Message::text("{not json"),
        _ => return Message::binary(vec![0u8, 1, 2]),
    };
    Message::text(v.to_string())
}

impl Flood {
    /// Signs up one flooder in each of the first `n` rooms (through a fresh invite of the room's
    /// owner), opens `sockets` sockets for it, joins, and posts one message to edit and react to.
    /// The flood itself starts with `go`. `rate` is frames per second per socket; 0 means flat
    /// out.
    pub async fn start(
        api: &Api,
        run_id: &str,
        rooms: &[(Uuid, Session)],
        n: usize,
        sockets: usize,
        rate: f64,
        actions: Actions,
    ) -> Result<Self> {
        let counters = Arc::new(Counters::default());
        let (go, go_rx) = watch::channel(false);
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        for (i, (room, owner)) in rooms.iter().take(n).enumerate() {
            let code = api.invite(owner, *room).await?;
            let s =
                api.member(&format!("{run_id}-flooder{i}@bench.example.com"), &format!("flooder {i}"), &code).await?;
            let mut ws = api.connect(&s).await?;
            api::join_room(&mut ws, *room, Duration::from_secs(15)).await?;
            let own = first_message(&mut ws, *room).await?;
            let mut all = vec![ws];
            for _ in 1..sockets.max(1) {
                let mut ws = api.connect(&s).await?;
                api::join_room(&mut ws, *room, Duration::from_secs(15)).await?;
                all.push(ws);
            }
            for ws in all {
                let own = own.clone();
                let (mut tx, mut rx) = ws.split();
                let c = counters.clone();
                // Its socket is read throughout, as a client would.
                tasks.push(tokio::spawn(async move {
                    while let Some(Ok(msg)) = rx.next().await {
                        c.received.fetch_add(1, Relaxed);
                        if let Message::Text(t) = msg
                            && let Ok(v) = serde_json::from_str::<Value>(t.as_str())
                            && v["type"] == "error"
                        {
                            let code = v["code"].as_str().unwrap_or("unknown").to_owned();
                            *c.errors.lock().unwrap().entry(code).or_default() += 1;
                        }
                    }
                    c.closed.fetch_add(1, Relaxed);
                }));
                let c = counters.clone();
                let (mut go_rx, mut stop_rx) = (go_rx.clone(), stop_rx.clone());
                let room = *room;
                tasks.push(tokio::spawn(async move {
                    if go_rx.wait_for(|g| *g).await.is_err() {
                        return;
                    }
                    let interval = (rate > 0.0).then(|| Duration::from_secs_f64(1.0 / rate));
                    let t0 = tokio::time::Instant::now();
                    let mut n = 0u64;
                    while !*stop_rx.borrow_and_update() {
                        if let Some(every) = interval {
                            tokio::time::sleep_until(t0 + every * n as u32).await;
                        }
                        if tx.send(frame(n, room, &own, actions)).await.is_err() {
                            break;
                        }
                        c.frames.fetch_add(1, Relaxed);
                        n += 1;
                        if interval.is_none() && n.is_multiple_of(64) {
                            // Flat out, but let the stop signal and the other tasks in.
                            tokio::task::yield_now().await;
                        }
                    }
                    let _ = tx.close().await;
                }));
            }
        }
        Ok(Self {
            counters,
            go,
            stop,
            tasks,
            started: Mutex::new(None),
            flooders: n.min(rooms.len()),
            sockets: sockets.max(1),
            rate,
            actions,
        })
    }

    pub fn go(&self) {
        *self.started.lock().unwrap() = Some(Instant::now());
        let _ = self.go.send(true);
    }

    /// Stops the flood and reports what it sent and what it was answered.
    pub async fn stop(self) -> Value {
        let _ = self.stop.send(true);
        let secs = self.started.lock().unwrap().map(|t| t.elapsed().as_secs_f64()).unwrap_or(0.0);
        let frames = self.counters.frames.load(Relaxed);
        // The readers end when the server closes the sockets after the writers' close frames.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        for t in self.tasks {
            if tokio::time::timeout_at(deadline, t).await.is_err() {
                break;
            }
        }
        let c = &self.counters;
        json!({
            "flooders": self.flooders,
            "sockets_per_flooder": self.sockets,
            "actions": format!("{:?}", self.actions).to_lowercase(),
            "rate_per_socket": if self.rate > 0.0 { json!(self.rate) } else { json!("flat out") },
            "frames_sent": frames,
            "frames_per_s": if secs > 0.0 { round(frames as f64 / secs, 1) } else { 0.0 },
            "frames_received": c.received.load(Relaxed),
            "sockets_closed_by_server": c.closed.load(Relaxed),
            "errors": *c.errors.lock().unwrap(),
        })
    }
}

/// Posts the flooder's own message (its edits and reactions need one) and returns its id.
async fn first_message(ws: &mut api::Ws, room: Uuid) -> Result<String> {
    let cmid = format!("flood-own-{}", Uuid::new_v4());
    let f = json!({"action": "new_message", "room_id": room, "body": "flood starts here", "client_msg_id": cmid});
    ws.send(Message::text(f.to_string())).await.map_err(api::ws_error)?;
    let wait = async {
        while let Some(msg) = ws.next().await {
            let Message::Text(t) = msg.map_err(api::ws_error)? else { continue };
            let Ok(v) = serde_json::from_str::<Value>(t.as_str()) else { continue };
            if v["type"] == "ack" && v["client_msg_id"] == json!(cmid) {
                return v["message_id"].as_str().map(str::to_owned).ok_or_else(|| Error::new("ws_body", "ack: no id"));
            }
            if v["type"] == "error" && v["ref"] == json!(cmid) {
                return Err(Error::new("ws_error", v["message"].as_str().unwrap_or("").to_owned()));
            }
        }
        Err(Error::new("ws_closed", "closed before the flooder's ack"))
    };
    tokio::time::timeout(Duration::from_secs(15), wait).await.map_err(|_| Error::new("timeout", "no ack in time"))?
}
