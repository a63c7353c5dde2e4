"""The webhook load generator: Telegram-like POSTs over N keep-alive
connections for a fixed time, each with a unique `update_id`.

    python -m bench.load --url URL --connections 100 --duration 20 --first-id 1 [--secret S]

Prints one JSON object: requests sent, answers by status, transport errors,
latency percentiles (ms), the achieved rate, and the ids answered 2xx (as
ranges), so the caller can check what the server stored. Each connection
sends its next request when the previous answer arrives, as Telegram does
with `max_connections`. Runs on uvloop when it is installed.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from collections import Counter
from typing import Any

import aiohttp

from bench.harness import percentile


def update(update_id: int) -> bytes:
    """A private text message, as Telegram sends it (about 400 bytes)."""
    user = 100_000 + update_id % 5000
    return json.dumps(
        {
            "update_id": update_id,
            "message": {
                "message_id": update_id,
                "from": {
                    "id": user,
                    "is_bot": False,
                    "first_name": "Аня",
                    "username": f"user{user}",
                    "language_code": "ru",
                },
                "chat": {"id": user, "first_name": "Аня", "username": f"user{user}", "type": "private"},
                "date": 1_767_000_000 + update_id % 100_000,
                "text": "рыжий кот в космосе, акварель",
            },
        },
        ensure_ascii=False,
    ).encode()


def ranges(ids: list[int]) -> list[list[int]]:
    """[[first, last], ...] of sorted ids: compact for millions of ids."""
    out: list[list[int]] = []
    for value in sorted(ids):
        if out and value == out[-1][1] + 1:
            out[-1][1] = value
        else:
            out.append([value, value])
    return out


async def drive(url: str, *, connections: int, duration: float, first_id: int, secret: str) -> dict[str, Any]:
    counter = itertools.count(first_id)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    acked: list[int] = []
    headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": secret}
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        end = started + duration

        async def connection() -> None:
            while time.perf_counter() < end:
                update_id = next(counter)
                body = update(update_id)
                sent = time.perf_counter()
                try:
                    async with session.post(url, data=body, headers=headers) as response:
                        await response.read()
                        status = response.status
                except (aiohttp.ClientError, TimeoutError) as error:
                    errors[type(error).__name__] += 1
                    continue
                latencies.append(time.perf_counter() - sent)
                statuses[status] += 1
                if 200 <= status < 300:
                    acked.append(update_id)

        await asyncio.gather(*(connection() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    completed = len(latencies)
    return {
        "url": url,
        "connections": connections,
        "duration_s": round(elapsed, 2),
        "sent": next(counter) - first_id,
        "completed": completed,
        "ok": len(acked),
        "non_2xx": sum(count for status, count in statuses.items() if not 200 <= status < 300),
        "statuses": {str(status): count for status, count in sorted(statuses.items())},
        "errors": dict(errors),
        "rate_per_s": round(len(acked) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p90_ms": round(percentile(latencies, 0.90) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "max_ms": round(max(latencies, default=0.0) * 1000, 2),
        "acked_ranges": ranges(acked),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--first-id", type=int, default=1)
    parser.add_argument("--secret", default="")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        pass
    result = asyncio.run(
        drive(
            args.url, connections=args.connections, duration=args.duration, first_id=args.first_id, secret=args.secret
        )
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
