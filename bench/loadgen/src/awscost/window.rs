//! What happened between two readings of the emulator: AWS calls by operation, management-API
//! calls, each function's invocations, cold starts, errors, durations and CPU, and the log
//! lines written; plus the duration quantiles and billed time the report gives per function.

use std::{collections::BTreeMap, path::PathBuf};

use serde_json::{Value, json};

use super::emulator::{Snapshot, num};
use crate::util::round;

fn function_names(a: &Snapshot, b: &Snapshot) -> Vec<String> {
    let mut names: Vec<String> =
        b.stats["functions"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default();
    for k in a.stats["functions"].as_object().into_iter().flat_map(|m| m.keys()) {
        if !names.contains(k) {
            names.push(k.clone());
        }
    }
    names.sort();
    names
}

/// Counter differences between two snapshots: AWS calls by operation, management API, functions.
pub(super) struct Window {
    pub(super) secs: f64,
    pub(super) aws: BTreeMap<String, f64>,
    pub(super) management: BTreeMap<String, f64>,
    pub(super) invocations: BTreeMap<String, f64>,
    pub(super) cold_starts: BTreeMap<String, f64>,
    pub(super) errors: BTreeMap<String, f64>,
    /// Durations of the invocations that ended in the window.
    pub(super) durations: BTreeMap<String, Vec<f64>>,
    /// CPU seconds of each function's instances.
    pub(super) cpu: BTreeMap<String, f64>,
    pub(super) emulator_cpu: Option<f64>,
    /// (lines, bytes) of the functions' JSON log lines.
    pub(super) log: Option<(u64, u64)>,
}

pub(super) fn window(a: &Snapshot, b: &Snapshot, log_file: Option<&PathBuf>) -> Window {
    let diff_map = |key: &str| -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for (k, v) in b.stats[key].as_object().into_iter().flatten() {
            let before = num(&a.stats[key][k]);
            if v.is_number() {
                out.insert(k.clone(), num(v) - before);
            }
        }
        out
    };
    let (mut invocations, mut cold_starts, mut errors, mut durations) =
        (BTreeMap::new(), BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    for f in function_names(a, b) {
        let (fa, fb) = (&a.stats["functions"][&f], &b.stats["functions"][&f]);
        invocations.insert(f.clone(), num(&fb["invocations"]) - num(&fa["invocations"]));
        cold_starts.insert(f.clone(), num(&fb["cold_starts"]) - num(&fa["cold_starts"]));
        errors.insert(f.clone(), num(&fb["errors"]) - num(&fa["errors"]));
        let before = fa["durations_ms"].as_array().map(Vec::len).unwrap_or(0);
        let all: Vec<f64> = fb["durations_ms"].as_array().into_iter().flatten().filter_map(Value::as_f64).collect();
        durations.insert(f.clone(), all.get(before..).unwrap_or(&[]).to_vec());
    }
    let mut cpu: BTreeMap<String, f64> = BTreeMap::new();
    for (pid, (name, after)) in &b.cpu {
        let before = a.cpu.get(pid).map(|(_, c)| *c).unwrap_or(0.0);
        *cpu.entry(name.clone()).or_default() += after - before;
    }
    let log = match (log_file, a.log_len, b.log_len) {
        (Some(f), Some(from), Some(to)) if to >= from => read_log_range(f, from, to),
        _ => None,
    };
    Window {
        secs: b.at.duration_since(a.at).as_secs_f64(),
        aws: diff_map("aws_calls"),
        management: diff_map("management_api"),
        invocations,
        cold_starts,
        errors,
        durations,
        cpu,
        emulator_cpu: match (a.emulator_cpu, b.emulator_cpu) {
            (Some(x), Some(y)) => Some(y - x),
            _ => None,
        },
        log,
    }
}

/// JSON lines (the functions log JSON, as on Lambda; the emulator's own lines are plain text).
fn read_log_range(file: &PathBuf, from: u64, to: u64) -> Option<(u64, u64)> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(file).ok()?;
    f.seek(SeekFrom::Start(from)).ok()?;
    let mut buf = Vec::new();
    f.take(to - from).read_to_end(&mut buf).ok()?;
    let (mut lines, mut bytes) = (0, 0);
    for line in buf.split(|b| *b == b'\n') {
        if line.first() == Some(&b'{') {
            lines += 1;
            bytes += line.len() as u64 + 1;
        }
    }
    Some((lines, bytes))
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

pub(super) fn duration_json(d: &[f64]) -> Value {
    let mut s = d.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let sum: f64 = s.iter().sum();
    let billed: f64 = s.iter().map(|x| x.ceil().max(1.0)).sum();
    json!({
        "n": s.len(),
        "p10": round(quantile(&s, 0.10), 2),
        "p50": round(quantile(&s, 0.50), 2),
        "p90": round(quantile(&s, 0.90), 2),
        "p99": round(quantile(&s, 0.99), 2),
        // Invocations that took 40 ms or more: a delayed ACK's length on Linux, which a small
        // write held back by Nagle's algorithm waits for.
        "n_over_40ms": s.iter().filter(|x| **x >= 40.0).count(),
        "mean": round(if s.is_empty() { 0.0 } else { sum / s.len() as f64 }, 2),
        "max": round(s.last().copied().unwrap_or(0.0), 2),
        "sum": round(sum, 1),
        // Lambda bills each invocation's duration rounded up to the next ms.
        "billed_sum": billed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_and_billing() {
        let d = duration_json(&[1.2, 3.0, 0.4, 10.5]);
        assert_eq!(d["n"], 4);
        assert_eq!(d["p50"], 1.2);
        assert_eq!(d["max"], 10.5);
        // 2 + 3 + 1 + 11
        assert_eq!(d["billed_sum"], 17.0);
    }
}
