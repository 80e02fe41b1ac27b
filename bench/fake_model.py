#!/usr/bin/env python3
"""An OpenAI-compatible streaming model for the `ai` scenario's added-latency figure.

`POST /v1/chat/completions` with `stream: true` answers Server-Sent Events, one token every
TOKEN_MS milliseconds (default 20: 50 tokens/s, a typical hosted model). Every token is a
marker `~<unix microseconds when it was written>~ ` — so the load generator, on the same
machine and clock, reads from each `ai_stream_chunk` how long every token spent inside Mathia
between the model writing it and the socket delivering it.

Usage: python3 bench/fake_model.py PORT [TOKENS] [TOKEN_MS]   (standard library only)
"""

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 0
TOKENS = int(sys.argv[2]) if len(sys.argv) > 2 else 40
TOKEN_MS = float(sys.argv[3]) if len(sys.argv) > 3 else 20.0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            for _ in range(TOKENS):
                time.sleep(TOKEN_MS / 1000)
                token = f"~{time.time_ns() // 1000}~ "
                chunk = {
                    "id": "bench",
                    "object": "chat.completion.chunk",
                    "choices": [{"index": 0, "delta": {"content": token}, "finish_reason": None}],
                }
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    print(f"fake model on http://127.0.0.1:{server.server_address[1]}/v1", flush=True)
    server.serve_forever()
