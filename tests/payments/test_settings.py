"""Production refuses a lava.top set-up that could take money and never credit it."""

from __future__ import annotations

import config.settings as project_settings


def test_a_lava_key_without_a_webhook_key_is_a_production_problem(monkeypatch):
    monkeypatch.setattr(project_settings, "LAVA_API_KEY", "key")
    monkeypatch.setattr(project_settings, "LAVA_WEBHOOK_API_KEY", "")
    assert any("LAVA_WEBHOOK_API_KEY" in problem for problem in project_settings.production_problems())
    monkeypatch.setattr(project_settings, "LAVA_WEBHOOK_API_KEY", "webhook-key")
    assert not any("LAVA" in problem for problem in project_settings.production_problems())
