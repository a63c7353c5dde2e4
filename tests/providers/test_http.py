"""The shared TLS settings of outgoing vendor calls."""

from __future__ import annotations

import ssl

from nanobanana.core.http import http_client, tls_context
from nanobanana.providers.common import TIMEOUT


def test_every_client_verifies_certificates_with_one_context_per_process():
    context = tls_context()
    assert context is tls_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert context.get_ca_certs() or context.cert_store_stats()["x509_ca"] > 0
    with http_client(timeout=TIMEOUT) as first, http_client(timeout=TIMEOUT) as second:
        pools = [client._transport._pool for client in (first, second)]  # type: ignore[attr-defined]
        assert all(pool._ssl_context is context for pool in pools)
        assert first.follow_redirects is False
