"""Fixtures shared by the whole suite. Fakes of outside services live with
their area (`tests/sandbox` for Telegram); the ones every area needs are here."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import pytest
from celery import current_app

from nanobanana.accounts.models import TelegramUser
from nanobanana.accounts.services import TelegramProfile, user_ensure
from nanobanana.core import tasks as core_tasks


@dataclass
class TaskQueue:
    """Tasks enqueued by the code under test, run on demand in this thread,
    in order, as a worker would (no eager mode: nesting stays realistic)."""

    pending: deque[tuple[str, list[Any], float | None]] = field(default_factory=deque)
    ran: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, task_name: str, args: list[Any], countdown: float | None) -> None:
        with self.lock:
            self.pending.append((task_name, args, countdown))

    def send_many(self, task_name: str, args_list: list[list[Any]]) -> None:
        for args in args_list:
            self.send(task_name, args, None)

    def names(self) -> list[str]:
        return [name for name, _, _ in self.pending]

    def updates(self) -> list[int]:
        """The ids of the stored updates queued for handling, in order, one
        task each (`bot.handle_update`) or a chunk to a task (`bot.handle_updates`)."""
        ids: list[int] = []
        for name, args, _ in self.pending:
            if name == "bot.handle_update":
                ids.append(args[0])
            elif name == "bot.handle_updates":
                ids.extend(args[0])
        return ids

    def run_all(self, *, limit: int = 200, include_delayed: bool = True, only: str = "") -> list[str]:
        """Run until nothing runnable is left; returns the names run. Delayed
        tasks (a countdown) and tasks not starting with `only` stay queued."""
        done: list[str] = []
        while len(done) < limit:
            with self.lock:
                runnable = [
                    item for item in self.pending if item[0].startswith(only) and (include_delayed or not item[2])
                ]
                if not runnable:
                    break
                self.pending.remove(runnable[0])
            name, args, _ = runnable[0]
            current_app.tasks[name].apply(args=tuple(args), throw=True)
            done.append(name)
        self.ran += done
        return done


@pytest.fixture
def task_queue(monkeypatch: pytest.MonkeyPatch) -> TaskQueue:
    current_app.loader.import_default_modules()  # registers every app's tasks
    queue = TaskQueue()
    monkeypatch.setattr(core_tasks, "send", queue.send)
    monkeypatch.setattr(core_tasks, "send_many", queue.send_many)
    return queue


VENDOR_ENV = (
    "GEMINI_API_KEY",
    "USE_VERTEX_AI",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_CLOUD_LOCATION",
    "OPENAI_API_KEY",
    "KLING_ACCESS_KEY",
    "KLING_SECRET_KEY",
    "RUNWAYML_API_SECRET",
)


@pytest.fixture(autouse=True)
def no_vendor_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests run as a fresh clone does: no vendor key, whatever the machine has."""
    for name in VENDOR_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def fresh_engine_process() -> None:
    """Each test starts as a new worker process would: no batch scheduled, no
    count of waiting videos remembered from another test."""
    from nanobanana.generation.services import process_caches_clear

    process_caches_clear()


@pytest.fixture
def catalog(db: None) -> None:
    from nanobanana.catalog.services import catalog_seed

    catalog_seed()


@pytest.fixture
def packages(db: None) -> None:
    """The development token packages (tokens-100 / -300 / -1000)."""
    from nanobanana.payments.packages import packages_seed

    packages_seed()


@pytest.fixture
def make_user(db: None) -> Any:
    counter = iter(range(1_000_001, 2_000_000))

    def make(*, tokens: int = 0, language_code: str = "ru", **fields: Any) -> TelegramUser:
        from nanobanana.billing.models import EntryKind
        from nanobanana.billing.services import wallet_credit

        telegram_id = fields.pop("telegram_id", next(counter))
        user, _ = user_ensure(profile=TelegramProfile(telegram_id=telegram_id, language_code=language_code, **fields))
        if tokens:
            wallet_credit(user=user, amount=tokens, kind=EntryKind.BONUS, idempotency_key=f"test:{telegram_id}")
        return user

    return make
