//! Connection scenarios: `idle` (open N authenticated sockets and hold them; the server's memory
//! per connection) and `connect-rate` (ticket + handshake + close as fast as a given
//! concurrency allows).

use std::{
    collections::BTreeMap,
    net::IpAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use futures::{SinkExt, StreamExt, stream};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::{
    api::{self, Api, Session},
    util::{self, Error, Probe, Result, hist_json, hist_line, new_hist, record_us, round},
};

/// `users` users; with `rooms > 0` they are onboarded and spread over that many rooms
/// (user u in room u % rooms), otherwise only signed up (tickets need no onboarding).
pub async fn make_users(
    api: &Api,
    run: &str,
    users: usize,
    rooms: usize,
    concurrency: usize,
) -> Result<Vec<(Session, Option<Uuid>)>> {
    eprintln!(
        "setup: signing up {users} users{}…",
        if rooms > 0 { format!(" in {rooms} rooms") } else { String::new() }
    );
    let t = Instant::now();
    // Room owners first (they are users too: user r for r < rooms).
    let owners: Vec<Result<(usize, Session, Uuid, String)>> = stream::iter(0..rooms.min(users))
        .map(|r| {
            let api = api.clone();
            let run = run.to_owned();
            async move {
                let s = api
                    .owner(
                        &format!("{run}-u{r}@bench.example.com"),
                        &format!("bench user {r}"),
                        &format!("bench {run} {r}"),
                    )
                    .await?;
                let room = api.create_room(&s, &format!("bench-{run}-{r}")).await?;
                let code = api.invite(&s, room).await?;
                Ok((r, s, room, code))
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut room_of: Vec<Option<(Uuid, String)>> = vec![None; rooms];
    let mut out: Vec<Option<(Session, Option<Uuid>)>> = vec![None; users];
    for o in owners {
        let (r, s, room, code) = o?;
        room_of[r] = Some((room, code.clone()));
        out[r] = Some((s, Some(room)));
    }
    let rest: Vec<Result<(usize, Session, Option<Uuid>)>> = stream::iter(rooms.min(users)..users)
        .map(|u| {
            let api = api.clone();
            let run = run.to_owned();
            let room = (rooms > 0).then(|| room_of[u % rooms].clone().unwrap());
            async move {
                let email = format!("{run}-u{u}@bench.example.com");
                let name = format!("bench user {u}");
                match room {
                    Some((room, code)) => Ok((u, api.member(&email, &name, &code).await?, Some(room))),
                    None => Ok((u, api.register(&email, &name).await?, None)),
                }
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    for r in rest {
        let (u, s, room) = r?;
        out[u] = Some((s, room));
    }
    eprintln!("setup: {users} users in {:.1} s", t.elapsed().as_secs_f64());
    Ok(out.into_iter().map(Option::unwrap).collect())
}

#[derive(Default)]
struct Timings {
    ticket: Option<Histogram<u64>>,
    handshake: Option<Histogram<u64>>,
    join: Option<Histogram<u64>>,
    total: Option<Histogram<u64>>,
    failures: BTreeMap<String, u64>,
}

impl Timings {
    fn new() -> Self {
        Self {
            ticket: Some(new_hist()),
            handshake: Some(new_hist()),
            join: Some(new_hist()),
            total: Some(new_hist()),
            failures: BTreeMap::new(),
        }
    }
    fn json(&self) -> Value {
        json!({
            "ticket_ms": hist_json(self.ticket.as_ref().unwrap()),
            "handshake_ms": hist_json(self.handshake.as_ref().unwrap()),
            "join_ms": hist_json(self.join.as_ref().unwrap()),
            "connect_total_ms": hist_json(self.total.as_ref().unwrap()),
            "failures": self.failures,
        })
    }
}

/// Ticket → handshake → (join). Records the phases.
async fn open_one(
    api: &Api,
    s: &Session,
    room: Option<Uuid>,
    source: Option<IpAddr>,
    timings: &Mutex<Timings>,
) -> Result<api::Ws> {
    let t0 = Instant::now();
    let res = async {
        let ticket = api.ticket(s).await?;
        let t1 = Instant::now();
        let mut ws = api.open_ws_from(&ticket, source).await?;
        let t2 = Instant::now();
        if let Some(room) = room {
            api::join_room(&mut ws, room, Duration::from_secs(15)).await?;
        }
        let t3 = Instant::now();
        Ok::<_, Error>((ws, t1, t2, t3))
    }
    .await;
    let mut t = timings.lock().unwrap();
    match res {
        Ok((ws, t1, t2, t3)) => {
            let us = |a: Instant, b: Instant| b.duration_since(a).as_micros() as u64;
            record_us(t.ticket.as_mut().unwrap(), us(t0, t1));
            record_us(t.handshake.as_mut().unwrap(), us(t1, t2));
            if room.is_some() {
                record_us(t.join.as_mut().unwrap(), us(t2, t3));
            }
            record_us(t.total.as_mut().unwrap(), us(t0, t3));
            Ok(ws)
        }
        Err(e) => {
            *t.failures.entry(e.kind.clone()).or_default() += 1;
            Err(e)
        }
    }
}

pub struct IdleOpts {
    pub connections: usize,
    pub users: usize,
    pub rooms: usize,
    /// Messages posted to each room first (`history_bytes` each).
    pub history: usize,
    pub history_bytes: usize,
    pub hold: Duration,
    pub concurrency: usize,
    pub setup_concurrency: usize,
    pub server_pid: Option<u32>,
    /// Local addresses the sockets are opened from, in turn (none: the system's choice).
    pub sources: Vec<IpAddr>,
}

/// Posts `n` messages of `bytes` to each room, through one socket of the room's first user,
/// and waits for every `ack`.
async fn post_history(api: &Api, users: &[(Session, Option<Uuid>)], n: usize, bytes: usize) -> Result<()> {
    let mut rooms: Vec<(&Session, Uuid)> = Vec::new();
    for (s, room) in users {
        if let Some(room) = room
            && !rooms.iter().any(|(_, r)| r == room)
        {
            rooms.push((s, *room));
        }
    }
    eprintln!("setup: posting {n} messages of {bytes} bytes to each of {} rooms…", rooms.len());
    let body = util::padding(bytes);
    for (s, room) in rooms {
        // Posting needs membership, not a joined room.
        let mut ws = api.connect(s).await?;
        for k in 0..n {
            let frame =
                json!({ "action": "new_message", "room_id": room, "body": body, "client_msg_id": format!("h{k}") });
            ws.feed(Message::text(frame.to_string())).await.map_err(api::ws_error)?;
        }
        ws.flush().await.map_err(api::ws_error)?;
        let mut acked = 0;
        let wait = async {
            while acked < n {
                let Some(msg) = ws.next().await else { return Err(Error::new("ws_closed", "closed before the acks")) };
                let Message::Text(text) = msg.map_err(api::ws_error)? else { continue };
                let v: Value = serde_json::from_str(text.as_str()).unwrap_or_default();
                match v["type"].as_str() {
                    Some("ack") => acked += 1,
                    Some("error") => {
                        return Err(Error::new("ws_error", v["code"].as_str().unwrap_or("unknown").to_owned()));
                    }
                    _ => {}
                }
            }
            Ok(())
        };
        tokio::time::timeout(Duration::from_secs(60), wait).await.map_err(|_| Error::new("timeout", "acks"))??;
        let _ = ws.close(None).await;
    }
    Ok(())
}

pub async fn idle(api: Api, run: &str, o: IdleOpts) -> Result<Value> {
    if let Some(limit) = util::nofile_limit()
        && (limit as usize) < o.connections + 64
    {
        eprintln!(
            "warning: open-files limit {limit} < {} connections: raise `ulimit -n` (the server needs it too)",
            o.connections
        );
    }
    let users = make_users(&api, run, o.users.max(1), o.rooms, o.setup_concurrency).await?;
    if o.history > 0 {
        post_history(&api, &users, o.history, o.history_bytes).await?;
    }
    let pid = o.server_pid.map(|p| p.to_string());
    let mem = || pid.as_deref().and_then(util::mem_kb);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = mem();

    eprintln!("idle: opening {} sockets in two halves (concurrency {})…", o.connections, o.concurrency);
    let timings = Arc::new(Mutex::new(Timings::new()));
    let (stop_tx, stop_rx) = watch::channel(false);
    let dropped = Arc::new(AtomicU64::new(0));
    let frames = Arc::new(AtomicU64::new(0));
    let open = |range: std::ops::Range<usize>| {
        let (api, users, sources, timings, stop_rx, dropped, frames) =
            (&api, &users, &o.sources, timings.clone(), stop_rx.clone(), dropped.clone(), frames.clone());
        stream::iter(range)
            .map(move |i| {
                let api = api.clone();
                let (s, room) = users[i % users.len()].clone();
                let timings = timings.clone();
                let mut stop = stop_rx.clone();
                let dropped = dropped.clone();
                let frames = frames.clone();
                async move {
                    let source = sources.get(i % sources.len().max(1)).copied();
                    let ws = open_one(&api, &s, room, source, &timings).await.ok()?;
                    Some(tokio::spawn(async move {
                        let (mut sink, mut rx) = ws.split();
                        loop {
                            tokio::select! {
                                m = rx.next() => match m {
                                    Some(Ok(_)) => { frames.fetch_add(1, Relaxed); }
                                    _ => { dropped.fetch_add(1, Relaxed); return; }
                                },
                                _ = stop.changed() => {
                                    let _ = tokio::time::timeout(Duration::from_secs(5), sink.close()).await;
                                    return;
                                }
                            }
                        }
                    }))
                }
            })
            .buffer_unordered(o.concurrency.max(1))
            .collect::<Vec<Option<tokio::task::JoinHandle<()>>>>()
    };
    // Memory per socket is the difference between two plateaus: after the first half and after
    // the second. Measured from `before`, it would also count whatever the allocator keeps or
    // hands back from the sign-ups and the first connections' buffers.
    let half = o.connections / 2;
    let probe = Probe::start(o.server_pid);
    let t0 = Instant::now();
    let mut handles = open(0..half).await;
    let first_s = t0.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mid = mem();
    let t1 = Instant::now();
    let second = open(half..o.connections).await;
    let second_s = t1.elapsed().as_secs_f64();
    let second_ok = second.iter().filter(|h| h.is_some()).count();
    handles.extend(second);
    let connect_s = first_s + second_s;
    let connect_usage = probe.finish();
    let ok = handles.iter().filter(|h| h.is_some()).count();
    let rate = ok as f64 / connect_s;
    eprintln!("idle: {ok} sockets open in {connect_s:.1} s ({rate:.0}/s); holding {:?}…", o.hold);

    tokio::time::sleep(Duration::from_secs(2)).await;
    let connected = mem();
    let hold_probe = Probe::start(o.server_pid);
    let mut samples = Vec::new();
    let hold_start = Instant::now();
    while hold_start.elapsed() < o.hold {
        tokio::time::sleep(Duration::from_secs(1).min(o.hold)).await;
        if let Some((rss, _)) = mem() {
            samples.push(json!({ "t_s": round(hold_start.elapsed().as_secs_f64(), 1), "rss_kb": rss }));
        }
    }
    let hold_usage = hold_probe.finish();
    let held = mem();
    let dropped_during_hold = dropped.load(Relaxed);

    let _ = stop_tx.send(true);
    let _ =
        tokio::time::timeout(Duration::from_secs(30), futures::future::join_all(handles.into_iter().flatten())).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = mem();

    let per_conn = match (mid, connected) {
        (Some(m), Some(c)) if second_ok > 0 => Some(round((c.0 as f64 - m.0 as f64) / second_ok as f64, 2)),
        _ => None,
    };
    let per_conn_from_start = match (before, connected) {
        (Some(b), Some(c)) if ok > 0 => Some(round((c.0 as f64 - b.0 as f64) / ok as f64, 2)),
        _ => None,
    };
    let t = timings.lock().unwrap();
    eprintln!("idle: connect {}", hist_line(t.total.as_ref().unwrap()));
    if let Some(pc) = per_conn {
        eprintln!(
            "idle: server RSS {} → {} → {} KiB with 0, {half}, {ok} sockets: {pc:.1} KiB per connection \
             (second half); {} KiB after closing them",
            before.map(|b| b.0).unwrap_or(0),
            mid.map(|m| m.0).unwrap_or(0),
            connected.unwrap().0,
            after.map(|a| a.0).unwrap_or(0)
        );
    }
    if !t.failures.is_empty() {
        eprintln!("idle: failures {:?}", t.failures);
    }
    Ok(json!({
        "connections_requested": o.connections,
        "connections_ok": ok,
        "connect_s": round(connect_s, 3),
        "connections_per_s": round(rate, 1),
        "timings": t.json(),
        "dropped_during_hold": dropped_during_hold,
        "frames_received": frames.load(Relaxed),
        "rss_kb_before": before.map(|m| m.0),
        "rss_kb_half": mid.map(|m| m.0),
        "rss_kb_connected": connected.map(|m| m.0),
        "rss_kb_held": held.map(|m| m.0),
        "rss_kb_after_close": after.map(|m| m.0),
        "hwm_kb": after.or(held).map(|m| m.1),
        "rss_kb_per_connection": per_conn,
        "rss_kb_per_connection_from_start": per_conn_from_start,
        "rss_samples": samples,
        "connect_usage": connect_usage,
        "hold_usage": hold_usage,
    }))
}

pub struct ConnectRateOpts {
    pub duration: Duration,
    /// Each worker waits this long between connections (0: as fast as possible).
    pub pause: Duration,
    /// Per-second successes and failures in the JSON.
    pub timeline: bool,
    pub users: usize,
    pub rooms: usize,
    pub concurrency: usize,
    pub setup_concurrency: usize,
    pub server_pid: Option<u32>,
}

pub async fn connect_rate(api: Api, run: &str, o: ConnectRateOpts) -> Result<Value> {
    let users = make_users(&api, run, o.users.max(1), o.rooms, o.setup_concurrency).await?;
    let users = Arc::new(users);
    let timings = Arc::new(Mutex::new(Timings::new()));
    let next = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    eprintln!(
        "connect-rate: ticket + handshake{} + close, {} workers, {:?}…",
        if o.rooms > 0 { " + join" } else { "" },
        o.concurrency,
        o.duration
    );
    let probe = Probe::start(o.server_pid);
    let t0 = Instant::now();
    let deadline = t0 + o.duration;
    let workers = (0..o.concurrency.max(1)).map(|_| {
        let api = api.clone();
        let users = users.clone();
        let timings = timings.clone();
        let next = next.clone();
        let ok = ok.clone();
        let failed = failed.clone();
        let pause = o.pause;
        tokio::spawn(async move {
            while Instant::now() < deadline {
                let i = next.fetch_add(1, Relaxed) as usize;
                let (s, room) = &users[i % users.len()];
                match open_one(&api, s, *room, None, &timings).await {
                    Ok(mut ws) => {
                        ok.fetch_add(1, Relaxed);
                        let _ = ws.close(None).await;
                        // Read until the server's close, so it has run `$disconnect`.
                        let _ = tokio::time::timeout(Duration::from_secs(2), async {
                            while let Some(Ok(_)) = ws.next().await {}
                        })
                        .await;
                    }
                    Err(_) => {
                        failed.fetch_add(1, Relaxed);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
            }
        })
    });
    let workers = futures::future::join_all(workers);
    let sampler = async {
        let mut timeline = Vec::new();
        if !o.timeline {
            return timeline;
        }
        let mut tick = t0;
        let mut last = (0, 0);
        while Instant::now() < deadline {
            tick += Duration::from_secs(1);
            tokio::time::sleep_until(tick.into()).await;
            let cur = (ok.load(Relaxed), failed.load(Relaxed));
            timeline.push(json!({
                "t_s": round(t0.elapsed().as_secs_f64(), 2),
                "unix_ms": util::unix_ms(),
                "ok": cur.0 - last.0,
                "failed": cur.1 - last.1,
            }));
            last = cur;
        }
        timeline
    };
    let (_, timeline) = tokio::join!(workers, sampler);
    let elapsed = t0.elapsed().as_secs_f64();
    let usage = probe.finish();
    let ok = ok.load(Relaxed);
    let t = timings.lock().unwrap();
    eprintln!(
        "connect-rate: {ok} connections in {elapsed:.1} s = {:.0}/s; {}",
        ok as f64 / elapsed,
        hist_line(t.total.as_ref().unwrap())
    );
    eprintln!("connect-rate: {}", util::server_line(&usage));
    let mut body = json!({
        "connections_ok": ok,
        "connections_failed": failed.load(Relaxed),
        "elapsed_s": round(elapsed, 3),
        "connections_per_s": round(ok as f64 / elapsed, 1),
        "timings": t.json(),
        "usage": usage,
    });
    if o.timeline {
        body["timeline"] = Value::Array(timeline);
    }
    Ok(body)
}
