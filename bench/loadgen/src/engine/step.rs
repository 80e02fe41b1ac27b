//! One timed step: hands the senders their plan, samples the counters while it runs (timeline,
//! the server's RSS, progress lines), drains what is still in flight, then merges the step's
//! histograms from every shard into the step's JSON result.

use std::{
    collections::BTreeMap,
    sync::atomic::Ordering::Relaxed,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use super::{Harness, StepOpts, StepPlan, StepResult};
use crate::util::{self, Probe, hist_json, new_hist, round};

impl Harness {
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
}
