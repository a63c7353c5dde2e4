"""Faults a test can make the emulator answer with, once or several times."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from nanobanana.sandbox.errors import ApiError, bad_request, blocked, entity_too_large, too_many_requests

FaultKind = Literal[
    "retry_after",  # 429 with parameters.retry_after
    "server_error",  # 500 Internal Server Error
    "bad_gateway",  # 502 Bad Gateway
    "blocked",  # 403 Forbidden: bot was blocked by the user
    "file_too_big",  # 400 Bad Request: file is too big
    "bad_request",  # 400 Bad Request: `description`
    "entity_too_large",  # 413 Request Entity Too Large
    "timeout",  # hang for `seconds`, then handle the call normally
    "malformed",  # a 200 answer whose body is not JSON
]


@dataclass
class Fault:
    """One injected fault; `times=None` means until removed with `FakeTelegram.clear_faults()`."""

    kind: FaultKind
    method: str | None = None
    chat_id: int | None = None
    times: int | None = 1
    retry_after: int = 1
    seconds: float = 5.0
    description: str = "wrong file identifier/HTTP URL specified"
    hits: int = 0

    def matches(self, method: str, chat_id: int | None) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method is not None and self.method.lower() != method.lower():
            return False
        return self.chat_id is None or self.chat_id == chat_id

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.hits >= self.times

    def error(self) -> ApiError | None:
        """The error this fault answers with; None for kinds that are not an error answer."""
        errors: dict[str, ApiError] = {
            "retry_after": too_many_requests(self.retry_after),
            "server_error": ApiError(500, "Internal Server Error"),
            "bad_gateway": ApiError(502, "Bad Gateway"),
            "blocked": blocked(),
            "file_too_big": bad_request("file is too big"),
            "bad_request": bad_request(self.description),
            "entity_too_large": entity_too_large(),
        }
        return errors.get(self.kind)


MALFORMED_BODY = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
