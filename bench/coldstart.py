#!/usr/bin/env python3
"""Lambda cold start of each function binary, through a local stand-in for the Runtime API.

For every binary and run: start the stand-in on a free port, exec the binary with the
environment Lambda gives it (AWS_LAMBDA_RUNTIME_API and friends) and Mathia's own variables,
and time from exec to its first `GET /2018-06-01/runtime/invocation/next` — the moment it is
ready for its first event. A binary that reports `init/error`, or exits, fails the run.

Usage: python3 bench/coldstart.py --bin-dir DIR [--runs 20] [--backend local|aws] [--json]
The caller provides DATABASE_URL (an existing, migrated database), REDIS_URL and
MATHIA_MASTER_KEY; with --backend aws also AWS_ENDPOINT_URL. bench/coldstart.sh does all that.
Standard library only.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time

FUNCTIONS = [
    "ws-connect",
    "ws-message",
    "ws-disconnect",
    "http-api",
    "ai-worker",
    "moderation-worker",
    "reminder-worker",
    "scheduler",
]


def first_request(listener, proc, timeout):
    """Seconds until the binary's first request line, and that line."""
    listener.settimeout(0.05)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return None, f"exited with {proc.returncode}"
        try:
            conn, _ = listener.accept()
        except socket.timeout:
            continue
        at = time.perf_counter()
        conn.settimeout(2)
        head = b""
        while b"\r\n" not in head:
            chunk = conn.recv(4096)
            if not chunk:
                break
            head += chunk
        conn.close()
        return at, head.split(b"\r\n", 1)[0].decode(errors="replace")
    return None, "no request within the timeout"


def one_run(binary, name, backend):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_REGION": "us-east-1",
        "MATHIA_BACKEND": backend,
        "RUST_LOG": "warn",
    }
    for key in (
        "DATABASE_URL",
        "REDIS_URL",
        "MATHIA_REDIS_PREFIX",
        "MATHIA_MASTER_KEY",
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "MATHIA_CONNECTIONS_TABLE",
        "MATHIA_WS_ENDPOINT",
        "MATHIA_FILES_BUCKET",
    ):
        if key in os.environ:
            env[key] = os.environ[key]
    start = time.perf_counter()
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    at, line = first_request(listener, proc, timeout=10)
    proc.kill()
    _, err = proc.communicate()
    listener.close()
    if at is None or "/invocation/next" not in line:
        tail = err.decode(errors="replace").strip().splitlines()[-3:]
        raise SystemExit(f"{name}: not ready ({line}); stderr: {tail}")
    return (at - start) * 1000


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--backend", choices=["local", "aws"], default="local")
    parser.add_argument("--json", action="store_true", help="one JSON line per function")
    args = parser.parse_args()
    for name in FUNCTIONS:
        binary = os.path.join(args.bin_dir, name)
        times = [one_run(binary, name, args.backend) for _ in range(args.runs)]
        result = {
            "scenario": "coldstart",
            "function": name,
            "backend": args.backend,
            "runs": args.runs,
            "p50_ms": round(statistics.median(times), 1),
            "p99_ms": round(percentile(times, 99), 1),
            "max_ms": round(max(times), 1),
            "min_ms": round(min(times), 1),
            "binary_bytes": os.path.getsize(binary),
        }
        if args.json:
            print(json.dumps(result), flush=True)
        else:
            mib = result["binary_bytes"] / 1048576
            print(
                f"{name:18} p50 {result['p50_ms']:6.1f} ms  p99 {result['p99_ms']:6.1f} ms  "
                f"max {result['max_ms']:6.1f} ms  {mib:5.1f} MiB",
                file=sys.stderr,
                flush=True,
            )


if __name__ == "__main__":
    main()
