//! Setting the harness up: signs up and onboards every user (room owners first, then members
//! through the rooms' invites), opens every socket and joins its rooms, then spawns one client
//! task per socket and one sender task for each of S clients of a room.

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

/// (group, client, session, socket, newest message of each of the group's rooms at join,
/// connect µs)
type Opened = (usize, usize, Session, Ws, Vec<Option<(Uuid, i64)>>, u64);

/// A group's owner and its rooms, each with an invite code.
struct Group {
    owner: Session,
    rooms: Vec<(Uuid, String)>,
}

fn email(run: &str, group: usize, client: usize) -> String {
    format!("{run}-r{group}-c{client}@bench.example.com")
}

/// Whether client `c` of a group sends to the group's room `j`: the first `s` clients, counted
/// from a different one for each room, so people in several rooms each send to their own.
fn sends_to(c: usize, j: usize, m: usize, s: usize) -> bool {
    (c + j) % m < s
}

impl Harness {
    pub async fn setup(api: Api, opts: SetupOpts) -> Result<Self> {
        let r_n = opts.rooms;
        let m = opts.clients_per_room;
        let k = opts.rooms_per_client.max(1);
        if r_n == 0 || m == 0 || opts.senders_per_room > m {
            return Err(Error::new("config", "need rooms ≥ 1, clients ≥ 1 and senders ≤ clients"));
        }
        if !r_n.is_multiple_of(k) {
            return Err(Error::new("config", "rooms must be a multiple of rooms per client"));
        }
        // Room g·k + j is the group g's room j; a group's m people are in all k of its rooms.
        let groups = r_n / k;
        let users = groups * m;
        eprintln!(
            "setup: signing up {users} users ({r_n} rooms × {m} clients, {k} room(s) per client), onboarding them…"
        );
        let t0 = Instant::now();
        let run = opts.run_id.clone();

        // Owners: sign up, onboard with a workspace, create the group's rooms, an invite to each.
        let owners: Vec<Result<(usize, Group)>> = stream::iter(0..groups)
            .map(|g| {
                let api = api.clone();
                let run = run.clone();
                async move {
                    let name = format!("bench owner {g}");
                    let s = api.owner(&email(&run, g, 0), &name, &format!("bench {run} {g}")).await?;
                    let mut rooms = Vec::with_capacity(k);
                    for j in 0..k {
                        let room = api.create_room(&s, &format!("bench-{run}-{}", g * k + j)).await?;
                        let code = api.invite(&s, room).await?;
                        rooms.push((room, code));
                    }
                    Ok((g, Group { owner: s, rooms }))
                }
            })
            .buffer_unordered(opts.setup_concurrency.max(1))
            .collect()
            .await;
        let mut made: Vec<Option<Group>> = (0..groups).map(|_| None).collect();
        for o in owners {
            let (g, group) = o?;
            made[g] = Some(group);
        }
        let made: Vec<Group> = made.into_iter().map(Option::unwrap).collect();

        // Members: sign up and onboard by the invite to the group's first room, then accept the
        // invites to its others.
        let members: Vec<Result<(usize, usize, Session)>> =
            stream::iter((0..groups).flat_map(|g| (1..m).map(move |c| (g, c))))
                .map(|(g, c)| {
                    let api = api.clone();
                    let run = run.clone();
                    let codes: Vec<String> = made[g].rooms.iter().map(|(_, code)| code.clone()).collect();
                    async move {
                        let s = api.member(&email(&run, g, c), &format!("bench {g}.{c}"), &codes[0]).await?;
                        for code in &codes[1..] {
                            api.accept_invite(&s, code).await?;
                        }
                        Ok((g, c, s))
                    }
                })
                .buffer_unordered(opts.setup_concurrency.max(1))
                .collect()
                .await;
        let mut sessions: Vec<Vec<Option<Session>>> = (0..groups)
            .map(|g| {
                let mut v = vec![None; m];
                v[0] = Some(made[g].owner.clone());
                v
            })
            .collect();
        for res in members {
            let (g, c, s) = res?;
            sessions[g][c] = Some(s);
        }
        let signup_s = t0.elapsed().as_secs_f64();
        eprintln!("setup: {users} users ready in {signup_s:.1} s; opening {users} sockets and joining…");

        // Sockets: ticket, handshake, a join_room for each of the group's rooms.
        let t1 = Instant::now();
        let clients: Vec<(usize, usize, Session)> = sessions
            .iter()
            .enumerate()
            .flat_map(|(g, v)| v.iter().enumerate().map(move |(c, s)| (g, c, s.clone().unwrap())))
            .collect();
        let connected: Vec<Result<Opened>> = stream::iter(clients)
            .map(|(g, c, s)| {
                let api = api.clone();
                let rooms: Vec<Uuid> = made[g].rooms.iter().map(|(id, _)| *id).collect();
                async move {
                    let mut last_err = None;
                    for attempt in 0..3 {
                        if attempt > 0 {
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                        let t = Instant::now();
                        let res = async {
                            let mut ws = api.connect(&s).await?;
                            let mut lasts = Vec::with_capacity(rooms.len());
                            for room in &rooms {
                                lasts.push(api::join_room(&mut ws, *room, JOIN_TIMEOUT).await?.last);
                            }
                            Ok::<_, Error>((ws, lasts))
                        }
                        .await;
                        match res {
                            Ok((ws, lasts)) => {
                                let us = t.elapsed().as_micros() as u64;
                                return Ok((g, c, s, ws, lasts, us));
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
            let (g, c, s, ws, lasts, us) = res?;
            record_us(&mut connect_hist, us);
            let rooms: Vec<(u32, Uuid)> = (0..k).map(|j| ((g * k + j) as u32, made[g].rooms[j].0)).collect();
            if c == 0 {
                for (j, last) in lasts.iter().enumerate() {
                    anchors[g * k + j] = last.map(|l| l.0);
                }
            }
            // This client's senders, one per room it sends to, numbered across the run.
            let sends: Vec<(usize, u32, Uuid)> = (0..k)
                .filter(|&j| sends_to(c, j, m, opts.senders_per_room))
                .map(|j| {
                    n_senders += 1;
                    (n_senders - 1, rooms[j].0, rooms[j].1)
                })
                .collect();
            let (tx, rx) = mpsc::unbounded_channel::<String>();
            let ctx = ClientCtx {
                idx: g * m + c,
                rooms: rooms.clone(),
                senders: sends.iter().map(|&(n, r, _)| (n, r)).collect(),
                session: s,
                api: api.clone(),
                shared: shared.clone(),
                stop: stop_rx.clone(),
                reconnect: opts.reconnect,
            };
            shared.connected.fetch_add(1, Relaxed);
            let seqs = lasts.iter().map(|l| l.map(|l| l.1).unwrap_or(0)).collect();
            tasks.push(tokio::spawn(client_loop(ctx, ws, seqs, rx)));
            for (n, _, room_id) in sends {
                tasks.push(tokio::spawn(sender_loop(
                    shared.clone(),
                    tx.clone(),
                    plan_rx.clone(),
                    room_id,
                    n,
                    pad.clone(),
                )));
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
        let rooms = (0..r_n)
            .map(|r| RoomInfo { id: made[r / k].rooms[r % k].0, owner: made[r / k].owner.clone(), anchor: anchors[r] })
            .collect();
        Ok(Self { api, opts, rooms, shared, n_senders, setup, plan_tx, stop_tx, tasks })
    }
}
