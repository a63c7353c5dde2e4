"""A Telegram Bot API emulator and a browser chat page over it.

Tests use it as the fake Telegram at the transport layer; `make run` mounts
it at `/sandbox` so a person can talk to the bot without a Telegram token.
It never imports Django or other nanobanana modules.

    fake = FakeTelegram(limits=RateLimits.off())
    with run_sandbox(fake) as base_url:  # Bot(..., session=AiohttpSession(api=TelegramAPIServer.from_base(base_url)))
        fake.sync.send_text(10001, "/start")
"""

from nanobanana.sandbox.app import create_app
from nanobanana.sandbox.core import DEFAULT_TOKEN, ApiResponse
from nanobanana.sandbox.errors import ApiError
from nanobanana.sandbox.fake import FakeTelegram, SyncDriver
from nanobanana.sandbox.faults import Fault, FaultKind
from nanobanana.sandbox.limits import RateLimits, Window
from nanobanana.sandbox.params import Upload
from nanobanana.sandbox.runner import run_sandbox, serve_sandbox
from nanobanana.sandbox.state import ApiCall, SimUser, StoredFile, StoredMessage

__all__ = [
    "DEFAULT_TOKEN",
    "ApiCall",
    "ApiError",
    "ApiResponse",
    "FakeTelegram",
    "Fault",
    "FaultKind",
    "RateLimits",
    "SimUser",
    "StoredFile",
    "StoredMessage",
    "SyncDriver",
    "Upload",
    "Window",
    "create_app",
    "run_sandbox",
    "serve_sandbox",
]
