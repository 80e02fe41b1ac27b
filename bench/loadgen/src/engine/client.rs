//! One client: reads every frame of its socket (deliveries, acks, errors) into the shared
//! counters and the latency histograms, writes what its sender queues, and reconnects (new
//! ticket, new socket, join again) when the socket drops, if asked to.

use std::{
    borrow::Cow,
    sync::{Arc, Mutex, atomic::Ordering::Relaxed},
    time::Duration,
};

use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use super::{JOIN_TIMEOUT, SHARDS, Shard, Shared};
use crate::{
    api::{self, Api, Session, Ws},
    util::{Error, new_hist, now_ns, record_us},
};

pub(super) struct ClientCtx {
    pub(super) idx: usize,
    /// The rooms this socket is in: (index among the run's rooms, id).
    pub(super) rooms: Vec<(u32, Uuid)>,
    /// This client's senders: (sender number, index of the room it sends to).
    pub(super) senders: Vec<(usize, u32)>,
    pub(super) session: Session,
    pub(super) api: Api,
    pub(super) shared: Arc<Shared>,
    pub(super) stop: watch::Receiver<bool>,
    pub(super) reconnect: bool,
}

/// A frame, read without copying: `message` is kept as raw JSON and parsed only for
/// `new_message` (as [`InMsg`], two fields) or `error` (a string). Parsing it into an untagged
/// enum buffered every delivered message whole, every field of it, before choosing.
#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(rename = "type", borrow)]
    ty: Cow<'a, str>,
    room_id: Option<Uuid>,
    /// A stored message in `new_message`, a human text in `error`.
    #[serde(borrow)]
    message: Option<&'a RawValue>,
    #[serde(borrow)]
    client_msg_id: Option<Cow<'a, str>>,
    message_id: Option<Uuid>,
    #[serde(borrow)]
    code: Option<Cow<'a, str>>,
    #[serde(rename = "ref", borrow)]
    reference: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct InMsg<'a> {
    seq: i64,
    #[serde(borrow)]
    client_msg_id: Option<Cow<'a, str>>,
}

/// `b<step>:<send_ns>:…` → (step, send_ns).
fn parse_cmid(cmid: &str) -> Option<(u32, u64)> {
    let mut parts = cmid.strip_prefix('b')?.split(':');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// `b<step>:<send_ns>:<sender>:…` → sender.
fn cmid_sender(cmid: &str) -> Option<usize> {
    cmid.strip_prefix('b')?.split(':').nth(2)?.parse().ok()
}

enum Outcome {
    Stop,
    Lost,
}

/// `last_seqs`: the newest `seq` of each of `ctx.rooms` when joined.
pub(super) async fn client_loop(
    ctx: ClientCtx,
    first: Ws,
    mut last_seqs: Vec<i64>,
    mut rx: mpsc::UnboundedReceiver<String>,
) {
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
                    let mut joined = Vec::with_capacity(ctx.rooms.len());
                    for (_, room) in &ctx.rooms {
                        joined.push(api::join_room(&mut w, *room, JOIN_TIMEOUT).await?);
                    }
                    Ok::<_, Error>((w, joined))
                };
                match attempt.await {
                    Ok((w, joined)) => {
                        sh.reconnects.fetch_add(1, Relaxed);
                        sh.connected.fetch_add(1, Relaxed);
                        for (seq, j) in last_seqs.iter_mut().zip(&joined) {
                            *seq = j.last.map(|l| l.1).unwrap_or(*seq);
                        }
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
                        Ok(Message::Text(t)) => on_frame(&ctx, t.as_str(), &mut last_seqs),
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

fn on_frame(ctx: &ClientCtx, text: &str, last_seqs: &mut [i64]) {
    let sh = &ctx.shared;
    let Ok(f) = serde_json::from_str::<Incoming>(text) else {
        sh.count_error("unparsable_frame");
        return;
    };
    match &*f.ty {
        "new_message" => {
            let Some(Ok(msg)) = f.message.map(|m| serde_json::from_str::<InMsg>(m.get())) else {
                return;
            };
            // Order is per room: the socket's place in the room this message is for.
            let Some(at) = ctx.rooms.iter().position(|(_, id)| Some(*id) == f.room_id) else {
                sh.count_error("message_for_another_room");
                return;
            };
            let last_seq = &mut last_seqs[at];
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
                // The room is the one this message's sender sends to.
                let sender = cmid_sender(&cmid);
                let room = ctx.senders.iter().find(|(n, _)| Some(*n) == sender).map_or(ctx.rooms[0].0, |(_, r)| *r);
                s.acked_ids.push((room, id));
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
            if let Some(Ok(text)) = f.message.map(|m| serde_json::from_str::<String>(m.get())) {
                sh.sample_error(f.code.as_deref().unwrap_or("unknown"), &text);
            }
            if let Some(step) = f.reference.as_deref().and_then(parse_cmid).map(|(step, _)| step) {
                sh.step(step).errors.fetch_add(1, Relaxed);
            }
        }
        "typing" => {
            sh.typing_heard.fetch_add(1, Relaxed);
        }
        "presence_update" => {
            sh.presence_heard.fetch_add(1, Relaxed);
        }
        _ => {}
    }
}
