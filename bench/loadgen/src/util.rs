//! Small shared pieces: the process clock, errors, histogram summaries, `/proc` probes.

use std::{
    fmt,
    sync::OnceLock,
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use hdrhistogram::Histogram;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Clock: one origin per process, so a sender's timestamp and a receiver's clock agree.

static ORIGIN: OnceLock<Instant> = OnceLock::new();

/// `n` bytes of harmless words, at most 3,900 (words moderation never flags).
pub fn padding(n: usize) -> String {
    const WORDS: &str = "the quick brown fox jumps over the lazy dog ";
    WORDS.repeat(n / WORDS.len() + 1)[..n.min(3900)].trim_end().to_owned()
}

pub fn origin() -> Instant {
    *ORIGIN.get_or_init(Instant::now)
}

/// Nanoseconds since the process origin.
pub fn now_ns() -> u64 {
    origin().elapsed().as_nanos() as u64
}

pub fn instant_ns(at: Instant) -> u64 {
    at.saturating_duration_since(origin()).as_nanos() as u64
}

pub fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

pub fn round(x: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (x * p).round() / p
}

// ---------------------------------------------------------------------------------------------
// Errors

#[derive(Debug, Clone)]
pub struct Error {
    /// A short, stable kind for counting: `http_503`, `transport`, `ws_401`, `timeout`…
    pub kind: String,
    pub message: String,
}

impl Error {
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        Self { kind: kind.into(), message: message.into() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

// ---------------------------------------------------------------------------------------------
// Histograms: values in microseconds, 1 µs to 60 s, 3 significant figures.

pub fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds")
}

pub fn record_us(h: &mut Histogram<u64>, us: u64) {
    h.saturating_record(us.clamp(1, 60_000_000));
}

/// `{count, mean, p50, p90, p99, p999, max}` in milliseconds.
pub fn hist_json(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return json!({ "count": 0 });
    }
    let ms = |us: u64| round(us as f64 / 1000.0, 3);
    json!({
        "count": h.len(),
        "mean": round(h.mean() / 1000.0, 3),
        "p50": ms(h.value_at_quantile(0.50)),
        "p90": ms(h.value_at_quantile(0.90)),
        "p99": ms(h.value_at_quantile(0.99)),
        "p999": ms(h.value_at_quantile(0.999)),
        "max": ms(h.max()),
    })
}

pub fn hist_line(h: &Histogram<u64>) -> String {
    if h.is_empty() {
        return "n=0".into();
    }
    let ms = |us: u64| us as f64 / 1000.0;
    format!(
        "p50 {:.2} ms · p90 {:.2} ms · p99 {:.2} ms · max {:.2} ms (n={})",
        ms(h.value_at_quantile(0.50)),
        ms(h.value_at_quantile(0.90)),
        ms(h.value_at_quantile(0.99)),
        ms(h.max()),
        h.len()
    )
}

// ---------------------------------------------------------------------------------------------
// /proc probes (Linux)

fn clk_tck() -> f64 {
    static TCK: OnceLock<f64> = OnceLock::new();
    *TCK.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|v| *v > 0.0)
            .unwrap_or(100.0)
    })
}

/// utime + stime of a process, in seconds.
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); utime is field 14, stime field 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clk_tck())
}

/// (VmRSS, VmHWM) in KiB.
pub fn mem_kb(pid: &str) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Whole-machine (busy, total) jiffies from /proc/stat.
fn system_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?;
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

pub fn nofile_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// CPU seconds of every process named `postgres` or `redis-server` (the server's dependencies,
/// on this machine), by pid.
fn deps_cpu() -> std::collections::HashMap<u32, (&'static str, f64)> {
    let mut out = std::collections::HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(comm) = std::fs::read_to_string(format!("/proc/{pid}/comm")) else {
            continue;
        };
        let name = match comm.trim() {
            "postgres" => "postgres",
            "redis-server" => "redis",
            _ => continue,
        };
        if let Some(cpu) = cpu_seconds(&pid.to_string()) {
            out.insert(pid, (name, cpu));
        }
    }
    out
}

/// CPU and memory of the server (when its pid is known), of this process and of the machine,
/// between `start` and `finish`.
#[derive(Clone)]
pub struct Probe {
    pid: Option<String>,
    at: Instant,
    server_cpu: Option<f64>,
    server_rss: Option<u64>,
    self_cpu: Option<f64>,
    sys: Option<(u64, u64)>,
    deps: std::collections::HashMap<u32, (&'static str, f64)>,
}

impl Probe {
    pub fn start(pid: Option<u32>) -> Self {
        let pid = pid.map(|p| p.to_string());
        Self {
            server_cpu: pid.as_deref().and_then(cpu_seconds),
            server_rss: pid.as_deref().and_then(mem_kb).map(|m| m.0),
            self_cpu: cpu_seconds("self"),
            sys: system_jiffies(),
            deps: deps_cpu(),
            at: Instant::now(),
            pid,
        }
    }

    /// `{server: {pid, cpu_s, cpu_pct, rss_kb_start, rss_kb, hwm_kb}, loadgen_cpu_pct, system_cpu_busy_pct}`;
    /// CPU percentages are of one core (200 % = both cores of a 2-core machine), except
    /// `system_cpu_busy_pct`, which is of the whole machine.
    pub fn finish(&self) -> Value {
        let wall = self.at.elapsed().as_secs_f64().max(1e-9);
        let pct = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => Some(round((b - a) / wall * 100.0, 1)),
            _ => None,
        };
        let server = match self.pid.as_deref() {
            Some(pid) => {
                let cpu_now = cpu_seconds(pid);
                let mem = mem_kb(pid);
                json!({
                    "pid": pid.parse::<u64>().ok(),
                    "cpu_s": match (self.server_cpu, cpu_now) { (Some(a), Some(b)) => Some(round(b - a, 2)), _ => None },
                    "cpu_pct": pct(self.server_cpu, cpu_now),
                    "rss_kb_start": self.server_rss,
                    "rss_kb": mem.map(|m| m.0),
                    "hwm_kb": mem.map(|m| m.1),
                })
            }
            None => Value::Null,
        };
        let sys = match (self.sys, system_jiffies()) {
            (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => Some(round((b1 - b0) as f64 / (t1 - t0) as f64 * 100.0, 1)),
            _ => None,
        };
        let (mut pg, mut redis) = (0.0, 0.0);
        for (pid, (name, cpu)) in deps_cpu() {
            let before = self.deps.get(&pid).map(|d| d.1).unwrap_or(0.0);
            if name == "postgres" {
                pg += cpu - before;
            } else {
                redis += cpu - before;
            }
        }
        let loadgen = pct(self.self_cpu, cpu_seconds("self"));
        // What kept the machine busy besides the four processes above, in % of a core: other
        // programs, CPU steal, and processes that started and ended within the window (a
        // Postgres autovacuum worker, say), whose CPU time the samples above cannot see.
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
        let known = server["cpu_pct"].as_f64().unwrap_or(0.0) + (pg + redis) / wall * 100.0 + loadgen.unwrap_or(0.0);
        let other = sys.map(|busy| round((busy * cores - known).max(0.0), 1));
        json!({
            "server": server,
            "postgres_cpu_pct": round(pg / wall * 100.0, 1),
            "redis_cpu_pct": round(redis / wall * 100.0, 1),
            "loadgen_cpu_pct": loadgen,
            "other_cpu_pct": other,
            "system_cpu_busy_pct": sys,
            "wall_s": round(wall, 3),
        })
    }
}

pub fn server_line(v: &Value) -> String {
    let s = &v["server"];
    let mut out = String::new();
    if !s.is_null() {
        out.push_str(&format!(
            "server cpu {}% of a core, rss {} MiB (peak {} MiB); ",
            s["cpu_pct"],
            s["rss_kb"].as_u64().map(|k| k / 1024).unwrap_or(0),
            s["hwm_kb"].as_u64().map(|k| k / 1024).unwrap_or(0),
        ));
    }
    out.push_str(&format!(
        "postgres cpu {}%, redis cpu {}% (all processes of that name); loadgen cpu {}%; other {}%; machine busy {}% of all cores",
        v["postgres_cpu_pct"], v["redis_cpu_pct"], v["loadgen_cpu_pct"], v["other_cpu_pct"], v["system_cpu_busy_pct"]
    ));
    out
}
