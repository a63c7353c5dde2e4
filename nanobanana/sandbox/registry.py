"""The table of emulated Bot API methods; modules register handlers into it on import."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from nanobanana.sandbox.params import Params

if TYPE_CHECKING:
    from nanobanana.sandbox.fake import FakeTelegram

Handler = Callable[["FakeTelegram", Params], Awaitable[Any]]

# Telegram matches method names case-insensitively.
METHODS: dict[str, Handler] = {}


def api_method(name: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        METHODS[name.lower()] = handler
        return handler

    return register
