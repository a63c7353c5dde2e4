"""The production Celery worker, timed per task, and with the Kling
provider's HTTP transport pointed at the benchmark's fake vendor
(bench/apps/fake_vendor.py) when BENCH_VENDOR_URL is set.

Everything else is the real worker: same queues and options as
`deploy/process.sh worker`, prefork pool, the app's settings from the
environment. With BENCH_TASK_TIMES_DIR, each pool process writes its CPU
and wall time per task name there (`TaskClock`). With BENCH_VENDOR_URL, two
things differ, both at the transport layer:

- every request of the Kling provider (API and result CDN) goes to
  BENCH_VENDOR_URL, with the host it was meant for in `X-Bench-Host`;
- the safe downloader's DNS lookup answers a public address for the vendor's
  CDN host (there is no DNS here); its allow-list and checks still run.

    python -m bench.apps.vendor_worker   # with the app's environment
"""

from __future__ import annotations

import json
import os
import time

import django
import httpx

PUBLIC_ADDRESS = "93.184.216.34"  # example.com: a public address, never dialled


class ToFakeVendor(httpx.HTTPTransport):
    """Sends every request to the fake vendor, naming the intended host.
    One per pool process (made after the fork), keeping its connections."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = httpx.URL(base)

    _per_process: dict[int, ToFakeVendor] = {}

    @classmethod
    def of_this_process(cls, base: str) -> ToFakeVendor:
        pid = os.getpid()
        if pid not in cls._per_process:
            cls._per_process[pid] = cls(base)
        return cls._per_process[pid]

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.headers["X-Bench-Host"] = request.url.host
        request.url = request.url.copy_with(scheme=self.base.scheme, host=self.base.host, port=self.base.port)
        return super().handle_request(request)


class TaskClock:
    """CPU and wall time per task name in this pool process, written to
    BENCH_TASK_TIMES_DIR/<pid>.json after every task (the process may be
    killed at the end of the run, so there is no final write to wait for)."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.started: dict[str, tuple[float, float]] = {}
        self.totals: dict[str, list[float]] = {}

    def before(self, task_id: str = "", **_: object) -> None:
        self.started[task_id] = (time.process_time(), time.perf_counter())

    def after(self, task_id: str = "", task: object = None, **_: object) -> None:
        cpu, wall = self.started.pop(task_id, (time.process_time(), time.perf_counter()))
        name = getattr(task, "name", "?")
        entry = self.totals.setdefault(name, [0, 0.0, 0.0])
        entry[0] += 1
        entry[1] += time.process_time() - cpu
        entry[2] += time.perf_counter() - wall
        path = os.path.join(self.folder, f"{os.getpid()}.json")
        with open(path + ".tmp", "w") as handle:
            json.dump(self.totals, handle)
        os.replace(path + ".tmp", path)


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from config.celery import app
    from nanobanana.media import download
    from nanobanana.providers import registry
    from nanobanana.providers.kling import KlingProvider

    base = os.environ.get("BENCH_VENDOR_URL")
    if base:
        registry.PROVIDERS = {
            **registry.PROVIDERS,
            "kling": lambda: KlingProvider(
                http_client=httpx.Client(transport=ToFakeVendor.of_this_process(base), timeout=30.0)
            ),
        }
        download.resolver = lambda host: [PUBLIC_ADDRESS]
    if os.environ.get("BENCH_TASK_TIMES_DIR"):
        from celery import signals

        clock = TaskClock(os.environ["BENCH_TASK_TIMES_DIR"])
        signals.task_prerun.connect(clock.before, weak=False)
        signals.task_postrun.connect(clock.after, weak=False)
    concurrency = os.environ.get("WORKER_CONCURRENCY", "3")
    app.worker_main(
        [
            "worker",
            "-Q",
            "updates,generation,delivery",
            "--concurrency",
            concurrency,
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
        ]
    )


if __name__ == "__main__":
    main()
