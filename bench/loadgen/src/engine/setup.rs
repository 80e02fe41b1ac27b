//! Setting the harness up: signs up and onboards every user (room owners first, then members
//! through the room's invite), opens and joins every socket, then spawns one client task per
//! socket and one sender task for each of the first S clients of a room.

use std::{
    sync::{Arc, atomic::Ordering::Relaxed},
    time::{Duration, Instant},
};

use futures::{StreamExt, stream};
use serde_json::json;
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use super::{
    Harness, JOIN_TIMEOUT, RoomInfo, SetupOpts, Shared,
    client::{ClientCtx, client_loop},
    sender::sender_loop,
};
use crate::{
    api::{self, Api, Session, Ws},
    util::{Error, Result, hist_json, new_hist, record_us, round},
};

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
        let pad = crate::util::padding(opts.body_bytes);
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
}
