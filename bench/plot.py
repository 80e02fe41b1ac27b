#!/usr/bin/env python3
"""Latency (p50, p99) against offered load from a saturation run, as a hand-written SVG.

    python3 bench/plot.py [RESULTS.jsonl] [--run-id ID] [--out bench/latency-vs-load.svg]

RESULTS defaults to the newest file in bench/results/. The saturation run is the newest one in
the file (the one with `--run-id` when given): its `saturate_step` lines, one per step. Only
the standard library is used.
"""

import argparse
import glob
import json
import math
import os
import sys
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))


def load(path, run_id=None):
    steps, summary, env = [], None, None
    with open(path) as f:
        lines = [json.loads(l) for l in f if l.strip().startswith("{")]
    if run_id is None:
        runs = [l["run_id"] for l in lines if l.get("type") == "saturate_step"]
        if not runs:
            sys.exit(f"{path}: no saturate_step lines (run `bash bench/run.sh saturate` first)")
        run_id = runs[-1]
    for l in lines:
        if l.get("run_id") == run_id and l.get("type") == "saturate_step":
            steps.append(l)
        elif l.get("run_id") == run_id and l.get("type") == "saturate":
            summary = l
    # The env line written just before the run, if any.
    first_ts = steps[0]["ts_unix_ms"] if steps else 0
    for l in lines:
        if l.get("type") == "env" and l.get("ts_unix_ms", 0) <= first_ts:
            env = l
    return run_id, steps, summary, env


def nice_ticks(lo, hi, n=6):
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=10 * mag)
    start = math.ceil(lo / step) * step
    ticks, t = [], start
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 10))
        t += step
    return ticks


def log_ticks(lo, hi):
    ticks = []
    for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        for m in (1, 2, 5):
            v = m * 10**e
            if lo <= v <= hi:
                ticks.append(v)
    return ticks


def fmt(v):
    if v >= 1000 and v % 1000 == 0:
        return f"{int(v // 1000)}k"
    if v >= 100 or v == int(v):
        return f"{int(v)}"
    return f"{v:g}"


class Axis:
    def __init__(self, lo, hi, a, b, log):
        self.log, self.a, self.b = log, a, b
        if log:
            self.lo, self.hi = 10 ** math.floor(math.log10(lo)), 10 ** math.ceil(math.log10(hi))
        else:
            ticks = nice_ticks(0, hi)
            self.lo, self.hi = 0, ticks[-1] if ticks[-1] >= hi else hi * 1.1
        self.ticks = log_ticks(self.lo, self.hi) if log else nice_ticks(self.lo, self.hi)

    def __call__(self, v):
        if self.log:
            f = (math.log10(v) - math.log10(self.lo)) / (math.log10(self.hi) - math.log10(self.lo))
        else:
            f = (v - self.lo) / (self.hi - self.lo)
        return self.a + f * (self.b - self.a)


def esc(s):
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def svg(steps, summary, env, run_id):
    pts = sorted(
        (s["offered_msgs_per_s"], s["latency_ms"].get("p50"), s["latency_ms"].get("p99"), s.get("good"), s)
        for s in steps
        if s["latency_ms"].get("count")
    )
    if not pts:
        sys.exit("no step has latency figures")
    W, H = 820, 520
    L, R, T, B = 80, 200, 60, 70
    xs = [p[0] for p in pts]
    ys = [v for p in pts for v in (p[1], p[2])] + [250.0]
    xlog = max(xs) / max(min(xs), 1e-9) >= 8
    ylog = max(ys) / max(min(ys), 1e-9) >= 30
    x = Axis(min(xs), max(xs), L, W - R, xlog)
    y = Axis(max(min(ys), 0.01), max(ys), H - B, T, ylog)
    o = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
        'font-family="Helvetica, Arial, sans-serif" font-size="12">',
        f'<rect width="{W}" height="{H}" fill="white"/>',
    ]
    when = datetime.fromtimestamp(steps[0]["ts_unix_ms"] / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    p = steps[0]["params"]
    title = f"Mathia: delivery latency vs offered load ({p['rooms']} rooms × {p['clients_per_room']} clients)"
    sub = f"run {run_id} · {when}"
    if env:
        sub += f" · git {env.get('git')}{'+dirty' if env.get('git_dirty') else ''} · {env.get('server_profile')} build · {env.get('nproc')} cores"
    o.append(f'<text x="{L}" y="24" font-size="16" font-weight="bold">{esc(title)}</text>')
    o.append(f'<text x="{L}" y="42" fill="#555">{esc(sub)}</text>')
    # Grid and ticks.
    for t in x.ticks:
        px = x(t)
        o.append(f'<line x1="{px:.1f}" y1="{T}" x2="{px:.1f}" y2="{H - B}" stroke="#eee"/>')
        o.append(f'<text x="{px:.1f}" y="{H - B + 18}" text-anchor="middle">{fmt(t)}</text>')
    for t in y.ticks:
        py = y(t)
        o.append(f'<line x1="{L}" y1="{py:.1f}" x2="{W - R}" y2="{py:.1f}" stroke="#eee"/>')
        o.append(f'<text x="{L - 8}" y="{py + 4:.1f}" text-anchor="end">{fmt(t)}</text>')
    o.append(f'<rect x="{L}" y="{T}" width="{W - R - L}" height="{H - B - T}" fill="none" stroke="#333"/>')
    o.append(
        f'<text x="{(L + W - R) / 2}" y="{H - 25}" text-anchor="middle">'
        f'offered load, messages/s over all senders{" (log scale)" if xlog else ""}</text>'
    )
    o.append(
        f'<text transform="translate(22 {(T + H - B) / 2}) rotate(-90)" text-anchor="middle">'
        f'delivery latency, ms{" (log scale)" if ylog else ""}</text>'
    )
    # The p99 target.
    target = steps[0]["params"].get("max_p99_ms", 250)
    py = y(target)
    o.append(f'<line x1="{L}" y1="{py:.1f}" x2="{W - R}" y2="{py:.1f}" stroke="#c33" stroke-dasharray="6 4"/>')
    o.append(f'<text x="{W - R - 4}" y="{py - 5:.1f}" text-anchor="end" fill="#c33">p99 target {fmt(target)} ms</text>')
    # Series.
    for idx, name, colour in ((1, "p50", "#1f77b4"), (2, "p99", "#ff7f0e")):
        path = " ".join(f"{'M' if i == 0 else 'L'}{x(pt[0]):.1f},{y(max(pt[idx], y.lo)):.1f}" for i, pt in enumerate(pts))
        o.append(f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for pt in pts:
            fill = colour if pt[3] else "white"
            s = pt[4]
            tip = (
                f"{name} {pt[idx]} ms at {pt[0]} msg/s offered; delivered {s['delivered_per_s']}/s, "
                f"ratio {s['delivery_ratio']}, {'good' if pt[3] else 'bad'} (step {s['step']})"
            )
            o.append(
                f'<circle cx="{x(pt[0]):.1f}" cy="{y(max(pt[idx], y.lo)):.1f}" r="4.5" fill="{fill}" '
                f'stroke="{colour}" stroke-width="2"><title>{esc(tip)}</title></circle>'
            )
    # Legend and summary.
    lx, ly = W - R + 20, T + 10
    for i, (name, colour) in enumerate((("p50", "#1f77b4"), ("p99", "#ff7f0e"))):
        o.append(f'<line x1="{lx}" y1="{ly + i * 20}" x2="{lx + 24}" y2="{ly + i * 20}" stroke="{colour}" stroke-width="2"/>')
        o.append(f'<circle cx="{lx + 12}" cy="{ly + i * 20}" r="4" fill="{colour}"/>')
        o.append(f'<text x="{lx + 32}" y="{ly + i * 20 + 4}">{name}</text>')
    o.append(f'<circle cx="{lx + 12}" cy="{ly + 40}" r="4" fill="white" stroke="#333" stroke-width="2"/>')
    o.append(f'<text x="{lx + 32}" y="{ly + 44}">step failed</text>')
    o.append(f'<text x="{lx + 32}" y="{ly + 58}" fill="#555">(delivery or p99)</text>')
    if summary:
        lines = [
            "best sustained:",
            f"{summary.get('best_sustained_delivered_per_s')} deliveries/s",
            f"at {summary.get('best_offered_msgs_per_s')} msg/s offered",
            f"first bad: {summary.get('first_bad_offered_msgs_per_s')} msg/s",
        ]
        for i, text in enumerate(lines):
            o.append(f'<text x="{lx}" y="{ly + 95 + i * 16}" fill="#333">{esc(text)}</text>')
    o.append("</svg>")
    return "\n".join(o) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="?", help="a results .jsonl (default: newest in bench/results/)")
    ap.add_argument("--run-id", help="which saturation run (default: the newest in the file)")
    ap.add_argument("--out", default=os.path.join(HERE, "latency-vs-load.svg"))
    a = ap.parse_args()
    path = a.results
    if not path:
        files = sorted(glob.glob(os.path.join(HERE, "results", "*.jsonl")), key=os.path.getmtime)
        if not files:
            sys.exit("no results in bench/results/")
        path = files[-1]
    run_id, steps, summary, env = load(path, a.run_id)
    if not steps:
        sys.exit(f"{path}: no saturate_step lines for run {run_id}")
    with open(a.out, "w") as f:
        f.write(svg(steps, summary, env, run_id))
    print(f"wrote {a.out} ({len(steps)} steps of run {run_id} from {path})")


if __name__ == "__main__":
    main()
