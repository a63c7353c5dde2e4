"""Payments tests reuse the end-to-end harness (webhook + emulated Bot API)."""

from __future__ import annotations

from tests.e2e.conftest import Chat, chat, fake_telegram  # noqa: F401 - fixtures shared with e2e

__all__ = ["Chat"]
