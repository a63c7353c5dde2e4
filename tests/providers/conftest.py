"""Fixtures for provider tests: a job factory, a movable clock, settings."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from nanobanana.core import clock as core_clock
from nanobanana.providers.base import GenerationJob
from nanobanana.providers.local import LocalProvider
from tests.fake_clock import FakeClock


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """A frozen clock; also makes any `time.sleep` fail the test, since
    providers must never wait for a vendor by sleeping."""
    fake = FakeClock(datetime(2030, 1, 15, 12, 0, tzinfo=UTC))
    monkeypatch.setattr(core_clock, "now", fake.now)

    def no_sleep(seconds: float) -> None:
        raise AssertionError(f"a provider slept for {seconds} s")

    monkeypatch.setattr(time, "sleep", no_sleep)
    return fake


@pytest.fixture
def local_settings(settings: Any) -> Any:
    """The local provider answers at once and never fails, unless a test says otherwise."""
    settings.LOCAL_PROVIDER_LATENCY_SECONDS = 0.0
    settings.LOCAL_PROVIDER_FAILURE_RATE = 0.0
    return settings


@pytest.fixture
def local_provider(local_settings: Any, fake_clock: FakeClock) -> LocalProvider:
    return LocalProvider()


@pytest.fixture
def make_job() -> Callable[..., GenerationJob]:
    def make(
        *,
        request_id: int = 1,
        prompt: str = "a banana surfing a wave at sunset",
        kind: str = "image",
        input_images: tuple[bytes, ...] = (),
        **params: Any,
    ) -> GenerationJob:
        return GenerationJob(
            request_id=request_id,
            model="local-image",
            kind=kind,  # type: ignore[arg-type]
            prompt=prompt,
            params={"aspect_ratio": "1:1", "count": 1, **params},
            input_images=input_images,
        )

    return make
