"""A fake video vendor over real HTTP: the Kling API fake of the contract
suite (tests/providers/fakes/kling.py, built from Kling's documentation),
with every task taking `--latency` seconds, served on a port of its own.

The worker of the video benchmark reaches it through a transport that sends
every vendor request here and names the host it was meant for in
`X-Bench-Host` (the fake answers the API and the CDN host differently).

    python -m bench.apps.fake_vendor --port 8091 --latency 60 --video-bytes 1048576

`GET /__stats` answers the number of task creations, task-list pages read
(the batch poller's calls), single status checks, and how many single checks
each task needed.
"""

from __future__ import annotations

import argparse
import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import django
import httpx
from django.conf import settings

HOST_HEADER = "X-Bench-Host"


def build(latency: float, video_bytes: int) -> Any:
    # The fake keeps time with the app's clock, which needs Django's settings.
    if not settings.configured:
        settings.configure(USE_TZ=True, TIME_ZONE="UTC")
        django.setup()
    from tests.providers.fakes.base import sample_mp4
    from tests.providers.fakes.kling import FakeKling

    header = sample_mp4()
    video = header + b"\x00" * max(0, video_bytes - len(header))
    return FakeKling(latency_seconds=latency, video=video)


def serve(port: int, latency: float, video_bytes: int) -> None:
    fake = build(latency, video_bytes)
    lock = threading.Lock()
    checks: Counter[str] = Counter()
    totals = {"creates": 0, "lists": 0, "checks": 0, "downloads": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body leave in separate writes; with Nagle's algorithm on,
        # the body then waits for the client's delayed ACK, which added about
        # 40 ms to every call on a kept-alive connection (a fake's artifact,
        # not a vendor's latency).
        disable_nagle_algorithm = True

        def _handle(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.path == "/__stats":
                with lock:
                    per_task = sorted(Counter(checks.values()).items())
                    payload = {**totals, "checks_per_task": {str(k): v for k, v in per_task}}
                self._reply(200, json.dumps(payload).encode(), {"content-type": "application/json"})
                return
            host = self.headers.get(HOST_HEADER) or "unknown"
            url = httpx.URL(f"https://{host}{self.path}")
            with lock:
                reply = fake.dispatch(self.command, url, dict(self.headers.items()), body)
                fake.calls.clear()  # a long run would otherwise keep every request body
                if self.command == "POST":
                    totals["creates"] += 1
                elif host == fake.cdn_host:
                    totals["downloads"] += 1
                elif "?" in self.path:
                    totals["lists"] += 1
                else:
                    totals["checks"] += 1
                    checks[self.path.rsplit("/", 1)[-1]] += 1
            self._reply(reply.status, reply.body, reply.headers)

        def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency", type=float, default=60.0)
    parser.add_argument("--video-bytes", type=int, default=1024 * 1024)
    args = parser.parse_args()
    serve(args.port, args.latency, args.video_bytes)


if __name__ == "__main__":
    main()
