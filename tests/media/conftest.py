"""Fixtures for media tests: a private MEDIA_ROOT, a movable clock, sample files."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from nanobanana.core import clock as core_clock
from tests.fake_clock import FakeClock


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock(datetime(2031, 2, 3, 10, 0, tzinfo=UTC))
    monkeypatch.setattr(core_clock, "now", fake.now)
    return fake


@pytest.fixture
def media_root(settings: Any, tmp_path: Path) -> Path:
    """Storage writes go to a fresh folder; links point at a known public URL."""
    root = tmp_path / "media"
    settings.MEDIA_ROOT = root
    settings.PUBLIC_BASE_URL = "https://nb.example"
    settings.MEDIA_LINK_MAX_AGE_SECONDS = 3600
    # WhiteNoise warns on every request when STATIC_ROOT is missing; the
    # view tests go through the full middleware stack.
    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
    return root


def _encode(image_format: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (250, 200, 0)).save(buffer, format=image_format)
    return buffer.getvalue()


# A minimal ISO base media header: a 24-byte `ftyp` box (brand mp42), then padding.
MP4_BYTES = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64


@pytest.fixture
def sample_files() -> dict[str, bytes]:
    """Real bytes for every allowed content type."""
    return {
        "image/png": _encode("PNG"),
        "image/jpeg": _encode("JPEG"),
        "image/webp": _encode("WEBP"),
        "video/mp4": MP4_BYTES,
    }
