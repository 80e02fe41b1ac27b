//! Readings of the emulator: its `/_emulator/stats` counters, the CPU time of the function
//! instances (the emulator's children) and the length of the log file; and `settle`, which
//! waits until the message-driven counters stop moving.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use super::AwsCostOpts;
use crate::{
    api::Api,
    util::{self, Error, Result},
};

/// One reading of the emulator's counters, of the function instances' CPU and of the log.
pub(super) struct Snapshot {
    pub(super) at: Instant,
    pub(super) stats: Value,
    /// Per instance pid: (function, CPU seconds).
    pub(super) cpu: HashMap<u32, (String, f64)>,
    pub(super) emulator_cpu: Option<f64>,
    pub(super) log_len: Option<u64>,
}

/// The function instances: the emulator's children, named by their executable.
fn instances_cpu(emulator: u32) -> HashMap<u32, (String, f64)> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else { return out };
    for entry in dir.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else { continue };
        // `rest` starts at field 3 (state); the parent pid is field 4.
        let ppid = rest.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok());
        if ppid != Some(emulator) {
            continue;
        }
        let name = std::fs::read_link(format!("/proc/{pid}/exe"))
            .ok()
            .and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "?".into());
        if let Some(cpu) = util::cpu_seconds(&pid.to_string()) {
            out.insert(pid, (name, cpu));
        }
    }
    out
}

pub(super) async fn snapshot(api: &Api, o: &AwsCostOpts) -> Result<Snapshot> {
    let stats = api.get("/_emulator/stats", None).await?;
    if !stats["functions"].is_object() {
        return Err(Error::new("config", "/_emulator/stats has no `functions`: is this `mathia-local emulate`?"));
    }
    Ok(Snapshot {
        at: Instant::now(),
        stats,
        cpu: o.emulator_pid.map(instances_cpu).unwrap_or_default(),
        emulator_cpu: o.emulator_pid.and_then(|p| util::cpu_seconds(&p.to_string())),
        log_len: o.log_file.as_ref().and_then(|f| std::fs::metadata(f).ok()).map(|m| m.len()),
    })
}

pub(super) fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// Waits at least `min`, then until the message-driven counters have not moved for 2 s.
pub(super) async fn settle(api: &Api, min: Duration, timeout: Duration) -> Result<()> {
    tokio::time::sleep(min).await;
    let key = |s: &Value| -> Vec<f64> {
        let f = &s["functions"];
        vec![
            num(&f["ws-message"]["invocations"]),
            num(&f["moderation-worker"]["invocations"]),
            num(&f["ai-worker"]["invocations"]),
            num(&s["aws_calls"]["sqs.SendMessage"]),
            num(&s["aws_calls"]["sqs.SendMessageBatch"]),
            num(&s["management_api"]["post"]),
        ]
    };
    let deadline = Instant::now() + timeout;
    let mut last = key(&api.get("/_emulator/stats", None).await?);
    let mut still = Instant::now();
    while still.elapsed() < Duration::from_secs(2) {
        if Instant::now() > deadline {
            eprintln!("aws-cost: warning: counters still moving after {timeout:?}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = key(&api.get("/_emulator/stats", None).await?);
        if now != last {
            last = now;
            still = Instant::now();
        }
    }
    Ok(())
}

/// An empty snapshot: counters from zero (for what the setup did).
pub(super) fn after_setup_start() -> Snapshot {
    Snapshot { at: Instant::now(), stats: json!({}), cpu: HashMap::new(), emulator_cpu: None, log_len: None }
}
