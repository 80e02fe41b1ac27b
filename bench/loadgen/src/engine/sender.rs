//! One sender: follows the step plan, open loop (it never waits for the server's answers), and
//! queues `new_message` frames for its client's socket, stamping each with its send time.

use std::{
    sync::{Arc, atomic::Ordering::Relaxed},
    time::Instant,
};

use serde_json::json;
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use super::{SHARDS, Shared, StepPlan};
use crate::util::{self, new_hist, record_us};

pub(super) async fn sender_loop(
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
