"""Payments tests reuse the end-to-end harness (webhook + emulated Bot API)
and add a fake of lava.top's HTTP API."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import respx

from tests.e2e.conftest import Chat, chat, fake_telegram  # noqa: F401 - fixtures shared with e2e
from tests.payments.lava_fake import FakeLava

__all__ = ["Chat"]
LAVA_KEY = "test-lava-api-key"  # pragma: allowlist secret
LAVA_WEBHOOK_KEY = "test-lava-webhook-key"  # pragma: allowlist secret
OFFER_100 = "5f0c3c5e-0000-4000-8000-000000000100"


@pytest.fixture
def lava(settings: Any, packages: None) -> Iterator[FakeLava]:
    """lava.top configured, its API faked, the 100-token package sold by card."""
    from nanobanana.payments.models import TokenPackage

    settings.LAVA_API_KEY = LAVA_KEY
    settings.LAVA_WEBHOOK_API_KEY = LAVA_WEBHOOK_KEY
    settings.LAVA_API_URL = "https://gate.lava.top"
    TokenPackage.objects.filter(slug="tokens-100").update(lava_offer_id=OFFER_100, price_rub=Decimal("99.00"))
    fake = FakeLava(api_key=LAVA_KEY, offers={OFFER_100: (Decimal("99.00"), "RUB")})
    with respx.mock(base_url=settings.LAVA_API_URL, assert_all_called=False) as router:
        router.route().mock(side_effect=fake.handle)
        yield fake
