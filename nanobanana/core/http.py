"""Outgoing HTTPS clients (vendor APIs, result downloads) that share one TLS
context per process.

httpx builds a fresh TLS context for every client it makes, and loading the
CA bundle into it costs 20-40 ms of CPU. A client per vendor call paid that
on every status check of every job: in the video benchmark it was 40% of the
worker's time (docs/benchmarks.md, video_jobs). One context is safe to share
between clients and threads; certifi's bundle is the one httpx itself uses,
so a slim container without system CA certificates still verifies vendors.
"""

from __future__ import annotations

import functools
import ssl

import certifi
import httpx


@functools.cache
def tls_context() -> ssl.SSLContext:
    """Certificate-verifying TLS settings, built once per process."""
    return ssl.create_default_context(cafile=certifi.where())


def http_client(*, timeout: httpx.Timeout) -> httpx.Client:
    """A client that verifies certificates with the process's shared context.
    It never follows redirects by itself (callers that do check each hop)."""
    return httpx.Client(timeout=timeout, verify=tls_context(), follow_redirects=False)
