"""Fixtures for deployctl's tests: one per fake, all sharing one simulated
world and clock, and a Settings object pointing every client at them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from deployctl.settings import Settings
from tests.deployctl.fakes import github as github_fake_module
from tests.deployctl.fakes import railway as railway_fake_module
from tests.deployctl.fakes import telegram as telegram_fake_module
from tests.deployctl.fakes.app import FakeApp
from tests.deployctl.fakes.github import FakeGitHub
from tests.deployctl.fakes.railway import FakeRailway
from tests.deployctl.fakes.server import FakeServer
from tests.deployctl.fakes.telegram import FakeTelegram
from tests.deployctl.fakes.world import SimClock, World


@pytest.fixture
def clock() -> SimClock:
    return SimClock()


@pytest.fixture
def world(clock: SimClock) -> World:
    return World(clock)


@pytest.fixture
def railway_fake(world: World) -> Iterator[tuple[FakeRailway, str]]:
    fake = FakeRailway(world)
    server = FakeServer(fake)
    yield fake, server.url
    server.close()


@pytest.fixture
def github_fake(world: World) -> Iterator[tuple[FakeGitHub, str]]:
    fake = FakeGitHub(world)
    server = FakeServer(fake)
    yield fake, server.url
    server.close()


@pytest.fixture
def telegram_fake(world: World) -> Iterator[tuple[FakeTelegram, str]]:
    fake = FakeTelegram(world)
    server = FakeServer(fake)
    yield fake, server.url
    server.close()


@pytest.fixture
def app_fake(world: World) -> Iterator[tuple[FakeApp, str]]:
    fake = FakeApp(world)
    server = FakeServer(fake)
    yield fake, server.url
    server.close()


@pytest.fixture
def env(
    railway_fake: tuple[FakeRailway, str],
    github_fake: tuple[FakeGitHub, str],
    telegram_fake: tuple[FakeTelegram, str],
    app_fake: tuple[FakeApp, str],
    world: World,
) -> dict[str, str]:
    """The environment variables a workflow would set, pointing at the fakes."""
    return {
        "RAILWAY_API_TOKEN": railway_fake_module.TOKEN,
        "RAILWAY_PROJECT_ID": world.project_id,
        "RAILWAY_API_URL": railway_fake[1],
        "ADMIN_GH_TOKEN": github_fake_module.TOKEN,
        "GITHUB_REPOSITORY": github_fake_module.REPOSITORY,
        "GITHUB_API_URL": github_fake[1],
        "TELEGRAM_API_URL": telegram_fake[1],
        "TELEGRAM_NOTIFY_TOKEN": telegram_fake_module.NOTIFY_TOKEN,
        "TELEGRAM_NOTIFY_CHAT_ID": telegram_fake_module.NOTIFY_CHAT_ID,
        "TELEGRAM_BOT_TOKEN": telegram_fake_module.BOT_TOKEN,
        "TG_WEBHOOK_SECRET": "test-webhook-secret",
        "PRODUCTION_BASE_URL": app_fake[1],
        "STAGING_BASE_URL": "https://staging.example.test",
    }


@pytest.fixture
def settings(env: dict[str, str], clock: SimClock, world: World) -> Settings:
    """Settings from the fake environment; the production webhook URL is the fake app's."""
    world.webhook.url = env["PRODUCTION_BASE_URL"] + "/api/telegram/webhook"
    return Settings.from_env(env, clock=clock)
