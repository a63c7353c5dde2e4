"""Real concurrency on PostgreSQL: holds never overdraw a wallet."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections

from nanobanana.billing.models import Hold
from nanobanana.billing.selectors import wallet_balance
from nanobanana.core.errors import InsufficientFunds
from nanobanana.generation.models import GenerationRequest
from nanobanana.generation.services import request_submit

pytestmark = pytest.mark.django_db(transaction=True)


def test_fifty_concurrent_submits_with_funds_for_five_make_exactly_five(catalog, make_user, task_queue):
    assert connection.vendor == "postgresql"
    user = make_user(tokens=10)  # local-fast costs 2 per image: funds for 5
    barrier = threading.Barrier(50)

    def attempt(index: int) -> str:
        try:
            barrier.wait()
            request_submit(
                user=user, model_slug="local-fast", raw_params={}, prompt="p", chat_id=1, idempotency_key=f"c{index}"
            )
            return "ok"
        except InsufficientFunds:
            return "refused"
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=50) as pool:
        outcomes = list(pool.map(attempt, range(50)))
    assert outcomes.count("ok") == 5
    assert outcomes.count("refused") == 45
    assert Hold.objects.count() == GenerationRequest.objects.count() == 5
    balance = wallet_balance(user=user)
    assert (balance.held, balance.available) == (10, 0)


def test_concurrent_taps_on_one_confirm_make_one_request(catalog, make_user, task_queue):
    user = make_user(tokens=10)
    barrier = threading.Barrier(8)

    def tap(_: int) -> int:
        try:
            barrier.wait()
            request, _ = request_submit(
                user=user, model_slug="local-fast", raw_params={}, prompt="p", chat_id=1, idempotency_key="same"
            )
            return request.pk
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = set(pool.map(tap, range(8)))
    assert len(ids) == 1
    assert wallet_balance(user=user).held == 2
