#!/usr/bin/env python3
"""Scale curves from bench/curves.sh: a Markdown table per curve (printed) and an SVG plot per
curve (bench/curve-<name>.svg), latency or memory against the size of the work, with server CPU
and RSS in the table beside it.

    python3 bench/plot_curves.py [RESULTS.jsonl ...]

Files default to every file in bench/results/; for each curve and x the newest point is used.
The history-depth curve (bench/history.sh) is read from the newest "History depth" section of
bench/RESULTS.md and drawn as bench/curve-history.svg. Only the standard library is used.
"""

import glob
import json
import math
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def points(paths):
    found = {}
    for path in paths:
        with open(path) as f:
            for line in f:
                if not line.strip().startswith("{"):
                    continue
                r = json.loads(line)
                meta = r.get("meta") or {}
                if "curve" not in meta or r.get("type") not in ("fanout", "idle"):
                    continue
                key = (meta["curve"], float(meta["x"]))
                if key not in found or r["ts_unix_ms"] > found[key]["ts_unix_ms"]:
                    found[key] = r
    curves = {}
    for (curve, x), r in sorted(found.items()):
        curves.setdefault(curve, []).append((x, r))
    return curves


def row(curve, x, r):
    if r["type"] == "fanout":
        l, u = r["latency_ms"], r.get("usage") or {}
        s = u.get("server") or {}
        return {
            "x": int(x),
            "delivered": f'{r["delivered"]:,} of {r["expected_deliveries"]:,} ({r["delivery_ratio"] * 100:.2f} %)',
            "deliveries/s": f'{r["delivered_per_s"]:,.0f}',
            "p50 ms": l["p50"],
            "p99 ms": l["p99"],
            "max ms": l["max"],
            "server CPU %": s.get("cpu_pct"),
            "server RSS MiB": round(s.get("rss_kb", 0) / 1024, 1),
            "Postgres CPU %": u.get("postgres_cpu_pct"),
            "git": (r.get("meta") or {}).get("git"),
        }
    return {
        "x": int(x),
        "open": f'{r["connections_ok"]:,} of {r["connections_requested"]:,}',
        "opened/s": r["connections_per_s"],
        "KiB per socket": r["rss_kb_per_connection"],
        "server RSS MiB, held": round(r["rss_kb_held"] / 1024, 1),
        "server CPU % while held": ((r.get("hold_usage") or {}).get("server") or {}).get("cpu_pct"),
        "dropped": r["dropped_during_hold"],
        "git": (r.get("meta") or {}).get("git"),
    }


def table(curve, rows):
    head = list(rows[0].keys())
    out = [f"### {curve}", "", "| " + " | ".join(head) + " |", "| " + " | ".join("---" for _ in head) + " |"]
    for r in rows:
        out.append("| " + " | ".join(str(r[h]) for h in head) + " |")
    return "\n".join(out)


def svg(curve, series, xlabel, ylabel, xname=lambda x: f"{int(x):,}"):
    """A line chart with a log x axis: series = [(label, colour, [(x, y)])]."""
    W, H, L, R, T, B = 560, 320, 60, 20, 30, 50
    xs = [x for _, _, pts in series for x, _ in pts]
    ys = [y for _, _, pts in series for _, y in pts if y is not None]
    if not xs or not ys:
        return None
    x0, x1 = math.log10(min(xs)), math.log10(max(xs))
    x1 = x1 if x1 > x0 else x0 + 1
    y1 = max(ys) * 1.15 or 1
    px = lambda x: L + (math.log10(x) - x0) / (x1 - x0) * (W - L - R)
    py = lambda y: H - B - y / y1 * (H - T - B)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">',
             f'<rect width="{W}" height="{H}" fill="white"/>',
             f'<text x="{W / 2}" y="16" text-anchor="middle" font-size="13">{curve}</text>',
             f'<line x1="{L}" y1="{H - B}" x2="{W - R}" y2="{H - B}" stroke="#444"/>',
             f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H - B}" stroke="#444"/>',
             f'<text x="{W / 2}" y="{H - 12}" text-anchor="middle">{xlabel}</text>',
             f'<text x="14" y="{H / 2}" text-anchor="middle" transform="rotate(-90 14 {H / 2})">{ylabel}</text>']
    for x in sorted(set(xs)):
        parts.append(f'<text x="{px(x):.1f}" y="{H - B + 14}" text-anchor="middle">{xname(x)}</text>')
    for i in range(5):
        y = y1 * i / 4
        parts.append(f'<text x="{L - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{y:.3g}</text>')
        parts.append(f'<line x1="{L}" y1="{py(y):.1f}" x2="{W - R}" y2="{py(y):.1f}" stroke="#eee"/>')
    for n, (label, colour, pts) in enumerate(series):
        pts = [(x, y) for x, y in pts if y is not None]
        path = " ".join(f"{'M' if i == 0 else 'L'}{px(x):.1f},{py(y):.1f}" for i, (x, y) in enumerate(pts))
        parts.append(f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts += [f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{colour}"/>' for x, y in pts]
        parts.append(f'<text x="{W - R - 4}" y="{T + 14 * (n + 1)}" text-anchor="end" fill="{colour}">{label}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


LABELS = {"room-size": "people in the room", "many-rooms": "rooms of 5 people (200 msg/s in all)",
          "many-rooms-multi": "rooms of 5 people, each person in 5 of them (200 msg/s in all)",
          "idle": "authenticated idle sockets"}


HISTORY_LINE = re.compile(r"^- depth=(\d+) .*?send p50_ms=([\d.]+) p99_ms=([\d.]+) .*?"
                          r"latest_page p50_ms=([\d.]+) p99_ms=([\d.]+) .*?deep_page p50_ms=([\d.]+) p99_ms=([\d.]+)")


def history():
    """The newest "History depth" section of RESULTS.md: a table and curve-history.svg."""
    with open(os.path.join(HERE, "RESULTS.md")) as f:
        sections = f.read().split("\n## History depth")
    if len(sections) < 2:
        return
    rows = [m.groups() for m in map(HISTORY_LINE.match, sections[-1].splitlines()) if m]
    if not rows:
        return
    head = ["stored messages", "send p50 ms", "send p99 ms", "latest page p50 ms", "latest page p99 ms",
            "deep page p50 ms", "deep page p99 ms"]
    out = ["### history", "", "| " + " | ".join(head) + " |", "| " + " | ".join("---" for _ in head) + " |"]
    out += ["| " + " | ".join([f"{int(r[0]):,}", *r[1:]]) + " |" for r in rows]
    print("\n".join(out) + "\n")
    # A log axis has no 0: the empty room is drawn a decade before the first depth.
    first = min(int(r[0]) for r in rows if int(r[0]) > 0)
    at = lambda d: d if d > 0 else first / 10
    name = lambda x: "empty" if x < first else f"{int(x):,}"
    series = [("send p99", "#d9480f", [(at(int(r[0])), float(r[2])) for r in rows]),
              ("send p50", "#f59f00", [(at(int(r[0])), float(r[1])) for r in rows]),
              ("latest page p99", "#2f6fdf", [(at(int(r[0])), float(r[4])) for r in rows]),
              ("deep page p99", "#37b24d", [(at(int(r[0])), float(r[6])) for r in rows])]
    drawn = svg("history", series, "messages stored in the room", "latency, ms", name)
    with open(os.path.join(HERE, "curve-history.svg"), "w") as f:
        f.write(drawn + "\n")


def main():
    paths = sys.argv[1:] or sorted(glob.glob(os.path.join(HERE, "results", "*.jsonl")))
    history()
    curves = points(paths)
    if not curves:
        sys.exit("no curve points (run `bash bench/curves.sh` first)")
    for curve, pts in curves.items():
        rows = [row(curve, x, r) for x, r in pts]
        print(table(curve, rows) + "\n")
        if pts[0][1]["type"] == "fanout":
            series = [("p50 ms", "#2f6fdf", [(x, r["latency_ms"]["p50"]) for x, r in pts]),
                      ("p99 ms", "#d9480f", [(x, r["latency_ms"]["p99"]) for x, r in pts])]
            drawn = svg(curve, series, LABELS.get(curve, "x"), "latency, ms")
        else:
            series = [("KiB per socket", "#2f6fdf", [(x, r["rss_kb_per_connection"]) for x, r in pts])]
            drawn = svg(curve, series, LABELS.get(curve, "x"), "server RSS per socket, KiB")
        if drawn:
            with open(os.path.join(HERE, f"curve-{curve}.svg"), "w") as f:
                f.write(drawn + "\n")


if __name__ == "__main__":
    main()
