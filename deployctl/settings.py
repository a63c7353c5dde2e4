"""One settings object, read from the environment, that creates every client.

Tests and benchmarks build it with fake base URLs and a simulated clock.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from deployctl.clients.github import GITHUB_API_URL, GitHubClient
from deployctl.clients.railway import RAILWAY_GRAPHQL_URL, RailwayClient
from deployctl.clients.telegram import TELEGRAM_API_URL, TelegramClient
from deployctl.clock import Clock, SystemClock
from deployctl.errors import ConfigError
from deployctl.http import NO_RETRY, HttpClient, RetryPolicy

# The two long-lived environments and the git branch each deploys from.
ENVIRONMENT_BRANCHES = {"staging": "staging", "production": "main"}
WEB_SERVICE = "web"
SERVICES = ("web", "worker", "beat")
WEBHOOK_PATH = "/api/telegram/webhook"


@dataclass(frozen=True)
class Settings:
    """Everything deployctl reads from the environment. Secrets are optional
    here; a command that needs one fails with a ConfigError naming it."""

    railway_token: str | None = None
    # Project tokens go in `Project-Access-Token`; account and team tokens are Bearer tokens.
    railway_project_scoped: bool = False
    railway_project_id: str | None = None
    railway_url: str = RAILWAY_GRAPHQL_URL
    github_token: str | None = None
    github_repository: str | None = None
    github_api_url: str = GITHUB_API_URL
    telegram_api_url: str = TELEGRAM_API_URL
    notify_token: str | None = None
    notify_chat_id: str | None = None
    bot_token: str | None = None
    webhook_secret: str | None = None
    base_urls: Mapping[str, str] = field(default_factory=dict)
    services: tuple[str, ...] = SERVICES
    web_service: str = WEB_SERVICE
    run_url: str | None = None
    clock: Clock = field(default_factory=SystemClock)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout_seconds: float = 15.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, clock: Clock | None = None) -> Settings:
        """Read the settings; empty variables count as unset."""
        source = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = source.get(name, "").strip()
            return value or None

        base_urls = {
            name: url.rstrip("/")
            for name, url in (("staging", get("STAGING_BASE_URL")), ("production", get("PRODUCTION_BASE_URL")))
            if url
        }
        services = tuple(s.strip() for s in (get("DEPLOYCTL_SERVICES") or ",".join(SERVICES)).split(",") if s.strip())
        server = get("GITHUB_SERVER_URL")
        run_id = get("GITHUB_RUN_ID")
        repository = get("GITHUB_REPOSITORY")
        run_url = f"{server}/{repository}/actions/runs/{run_id}" if server and repository and run_id else None
        return cls(
            railway_token=get("RAILWAY_API_TOKEN"),
            railway_project_scoped=(get("RAILWAY_TOKEN_KIND") or "").lower() == "project",
            railway_project_id=get("RAILWAY_PROJECT_ID"),
            railway_url=get("RAILWAY_API_URL") or RAILWAY_GRAPHQL_URL,
            github_token=get("ADMIN_GH_TOKEN") or get("GITHUB_TOKEN"),
            github_repository=repository,
            github_api_url=get("GITHUB_API_URL") or GITHUB_API_URL,
            telegram_api_url=get("TELEGRAM_API_URL") or TELEGRAM_API_URL,
            notify_token=get("TELEGRAM_NOTIFY_TOKEN"),
            notify_chat_id=get("TELEGRAM_NOTIFY_CHAT_ID"),
            bot_token=get("TELEGRAM_BOT_TOKEN"),
            webhook_secret=get("TG_WEBHOOK_SECRET"),
            base_urls=base_urls,
            services=services or SERVICES,
            run_url=run_url,
            clock=clock or SystemClock(),
        )

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret value, so errors and messages can be scrubbed of them."""
        values = (self.railway_token, self.github_token, self.notify_token, self.bot_token, self.webhook_secret)
        return tuple(value for value in values if value)

    def http(
        self, name: str, base_url: str, *, headers: Mapping[str, str] | None = None, retry: RetryPolicy | None = None
    ) -> HttpClient:
        return HttpClient(
            name=name,
            base_url=base_url,
            clock=self.clock,
            headers=dict(headers or {}),
            timeout_seconds=self.timeout_seconds,
            retry=retry or self.retry,
            secrets=self.secrets,
        )

    def base_url(self, environment: str) -> str:
        if environment not in ENVIRONMENT_BRANCHES:
            raise ConfigError(f"unknown environment {environment!r}: use one of {', '.join(ENVIRONMENT_BRANCHES)}")
        url = self.base_urls.get(environment)
        if not url:
            raise ConfigError(f"{environment.upper()}_BASE_URL is not set")
        return url

    def app(self, base_url: str) -> HttpClient:
        """The app's own HTTP endpoints. No retries: callers poll on their own schedule."""
        return self.http("app", base_url.rstrip("/"), retry=NO_RETRY)

    def railway(self) -> RailwayClient:
        if not self.railway_token:
            raise ConfigError("RAILWAY_API_TOKEN is not set")
        if not self.railway_project_id:
            raise ConfigError("RAILWAY_PROJECT_ID is not set")
        if self.railway_project_scoped:
            headers = {"Project-Access-Token": self.railway_token}
        else:
            headers = {"Authorization": f"Bearer {self.railway_token}"}
        return RailwayClient(self.http("railway", self.railway_url, headers=headers), self.railway_project_id)

    def github(self) -> GitHubClient:
        if not self.github_token:
            raise ConfigError("ADMIN_GH_TOKEN is not set")
        if not self.github_repository or "/" not in self.github_repository:
            raise ConfigError("GITHUB_REPOSITORY is not set (owner/name)")
        headers = {
            "Authorization": f"Bearer {self.github_token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }
        return GitHubClient(self.http("github", self.github_api_url, headers=headers), self.github_repository)

    def bot(self) -> TelegramClient:
        """The environment's own bot (the one whose webhook we manage)."""
        if not self.bot_token:
            raise ConfigError("TELEGRAM_BOT_TOKEN is not set")
        return TelegramClient(self.http("telegram", self.telegram_api_url), self.bot_token)

    def notifier(self) -> TelegramClient:
        """The ops bot that writes to the ops chat."""
        if not self.notify_token:
            raise ConfigError("TELEGRAM_NOTIFY_TOKEN is not set")
        if not self.notify_chat_id:
            raise ConfigError("TELEGRAM_NOTIFY_CHAT_ID is not set")
        return TelegramClient(self.http("telegram-notify", self.telegram_api_url), self.notify_token)
