"""A vendor answer that points the result download at a private address.

The app downloads a finished video from the URL the vendor's answer names
(`nanobanana/media/download.py`). A compromised or confused vendor must not
make the worker fetch from this machine, the private network, the cloud's
metadata service or the local disk. Each probe runs the production path in
this process (as `tests/e2e` does: webhook, inbox, the queued tasks in order,
the Kling provider with its SDK-free HTTP client) with the vendor's API faked
at the transport layer. Every host but the vendor's API answers a valid
video, so a missing check would show up twice: as a fetch in the fake's log
and as a delivered video.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pytest

from nanobanana.accounts.models import TelegramUser
from nanobanana.billing.models import EntryKind, HoldStatus
from nanobanana.billing.selectors import wallet_balance
from nanobanana.billing.services import wallet_credit
from nanobanana.bot.texts import Texts
from nanobanana.generation.models import GenerationRequest, RequestStatus
from nanobanana.media import download as media_download
from nanobanana.providers import registry
from nanobanana.providers.kling import KlingProvider
from tests.e2e.conftest import Chat, fake_telegram  # noqa: F401 - the emulator fixture
from tests.faults.conftest import bot_api_texts, secret_leaks
from tests.providers.fakes import kling as kling_fake
from tests.providers.fakes.base import PUBLIC_ADDRESS, Call, Reply, httpx_client

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

# Names on Kling's allow-list of result hosts, as a hostile DNS answer would have them.
RESOLVES = {
    "intranet.klingai.com": ["10.20.30.40"],
    "mixed.klingai.com": [PUBLIC_ADDRESS, "192.168.7.7"],
    "v6.klingai.com": ["fd00::17"],
}
CDN = f"https://{kling_fake.CDN_HOST}/bs2/upload/result.mp4"


@dataclass(frozen=True)
class Probe:
    title: str
    result_url: str
    redirect_to: str = ""  # the vendor's CDN answers 302 to this


PROBES = [
    Probe("loopback 127.0.0.1", "https://127.0.0.1/result.mp4"),
    Probe("private 10.x", "https://10.0.0.8/result.mp4"),
    Probe("cloud metadata 169.254.169.254", "http://169.254.169.254/latest/meta-data/iam/security-credentials/"),
    Probe("cloud metadata 169.254.169.254 over https", "https://169.254.169.254/latest/meta-data/"),
    Probe("IPv6 loopback [::1]", "https://[::1]/result.mp4"),
    Probe("a vendor host resolving to 10.x", "https://intranet.klingai.com/result.mp4"),
    Probe("a vendor host resolving to a public and a private address", "https://mixed.klingai.com/result.mp4"),
    Probe("a vendor host resolving to an IPv6 unique-local address", "https://v6.klingai.com/result.mp4"),
    Probe("file:///etc/passwd", "file:///etc/passwd"),
    Probe("redirect to 169.254.169.254", CDN, redirect_to="https://169.254.169.254/latest/meta-data/"),
    Probe("redirect to 127.0.0.1 as IPv4-mapped IPv6", CDN, redirect_to="https://[::ffff:127.0.0.1]/admin/"),
    Probe("redirect to a vendor host resolving to 10.x", CDN, redirect_to="https://intranet.klingai.com/x.mp4"),
    Probe("redirect to file:///etc/passwd", CDN, redirect_to="file:///etc/passwd"),
]


@dataclass
class HostileKling(kling_fake.FakeKling):
    """Kling's API as documented, except that a finished task names
    `result_url`. Every other host serves a valid video, or the CDN a
    redirect to `redirect_to`: only the download's checks stand between the
    worker and the address."""

    redirect_to: str = ""

    def handle(self, call: Call) -> Reply:
        if call.host == kling_fake.API_HOST:
            return super().handle(call)
        if self.redirect_to and call.host == kling_fake.CDN_HOST:
            return Reply(302, b"", {"location": self.redirect_to})
        return Reply(200, self.video, {"content-type": "video/mp4"})

    def fetches(self) -> list[str]:
        """Every request that left for anything but the vendor's API."""
        return [
            f"{call.method} {call.host or '(no host)'}{call.path}"
            for call in self.calls
            if call.host != kling_fake.API_HOST
        ]


@pytest.fixture
def hostile_kling(monkeypatch: pytest.MonkeyPatch) -> HostileKling:
    monkeypatch.setenv("KLING_ACCESS_KEY", kling_fake.ACCESS_KEY)
    monkeypatch.setenv("KLING_SECRET_KEY", kling_fake.SECRET_KEY)
    monkeypatch.setattr(media_download, "resolver", lambda host: RESOLVES.get(host, [PUBLIC_ADDRESS]))
    fake = HostileKling()
    monkeypatch.setattr(
        registry, "PROVIDERS", {**registry.PROVIDERS, "kling": lambda: KlingProvider(http_client=httpx_client(fake))}
    )
    return fake


LABELS = {
    "ru": {"video": "Создать видео", "next": "Далее", "confirm": "Создать за"},
    "en": {"video": "Create video", "next": "Next", "confirm": "Create for"},
}


@pytest.mark.parametrize("probe", PROBES, ids=[probe.title for probe in PROBES])
def test_result_url_to_a_private_address_is_refused(
    probe: Probe,
    hostile_kling: HostileKling,
    fake_telegram: Any,  # noqa: F811 - the fixture imported above
    client: Any,
    task_queue: Any,
    catalog: None,
    packages: None,
    settings: Any,
    caplog: pytest.LogCaptureFixture,
    record: Any,
) -> None:
    """A vendor's result URL to a private address or file://, or redirecting there: refused, nothing fetched

    The request fails with `result_invalid`, the user is told why in their
    language, the hold is released (the balance is what it was), and no
    request leaves for the address."""
    caplog.set_level(logging.INFO)
    # Half the probes speak Russian, half English: the refusal reaches each in theirs.
    language = "ru" if PROBES.index(probe) % 2 == 0 else "en"
    labels = LABELS[language]
    user_id = 601 + PROBES.index(probe)
    fake_telegram.user(user_id, first_name="Probe", language_code=language)
    chat = Chat(fake_telegram, client, task_queue, user_id, settings.TG_WEBHOOK_SECRET, language=language)
    hostile_kling.result_url = probe.result_url
    hostile_kling.redirect_to = probe.redirect_to

    chat.send("/start")
    user = TelegramUser.objects.get(telegram_id=user_id)
    wallet_credit(user=user, amount=1000, kind=EntryKind.BONUS, idempotency_key=f"probe-fund-{user_id}")
    before = wallet_balance(user=user).available
    chat.tap(labels["video"])
    chat.tap("Kling 2.1 ·")
    chat.tap(labels["next"])
    chat.send("a lighthouse at dusk")
    chat.tap(labels["confirm"])
    chat.tasks.run_all()  # start, then the scheduled checks of the vendor's job

    request = GenerationRequest.objects.select_related("hold").get(chat_id=user_id)
    texts = Texts(language)
    reason = texts("reason.result_invalid")
    told = [m.text or m.caption or "" for m in chat.bot_messages() if reason in (m.text or m.caption or "")]
    fetched = hostile_kling.fetches()
    allowed_fetches = [f"GET {kling_fake.CDN_HOST}/bs2/upload/result.mp4"] if probe.redirect_to else []
    leaks = secret_leaks(
        {"logs": caplog.text, **bot_api_texts(fake_telegram)},
        {
            "bot token": settings.TELEGRAM_BOT_TOKEN,
            "webhook secret": settings.TG_WEBHOOK_SECRET,
            "Django secret key": settings.SECRET_KEY,
            "Kling secret key": kling_fake.SECRET_KEY,
        },
    )
    record(
        f"{probe.title}: vendor answered {probe.result_url}"
        + (f", its CDN redirected to {probe.redirect_to}" if probe.redirect_to else "")
        + f"; request {request.status} ({request.error_code}), hold {request.hold.status}, "
        f"balance {before} -> {wallet_balance(user=user).available}; told the user ({language}): {bool(told)}; "
        f"fetched {fetched or 'nothing'}; secrets in logs or Bot API calls: {leaks or 'none'}"
    )
    assert request.status == RequestStatus.FAILED
    assert request.error_code == "result_invalid"
    assert request.hold.status == HoldStatus.RELEASED
    assert wallet_balance(user=user).available == before
    assert told, [m.text for m in chat.bot_messages()[-3:]]
    assert fetched == allowed_fetches
    assert leaks == {}
