"""Bot API request parameters: every encoding Telegram accepts, read the way Telegram reads them.

Telegram takes parameters from the query string, `application/json`,
`application/x-www-form-urlencoded` or `multipart/form-data` bodies; in the
form encodings objects (reply_markup, media, prices) arrive as JSON strings.
https://core.telegram.org/bots/api#making-requests
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from typing import Any
from urllib.parse import parse_qsl

from nanobanana.sandbox.errors import bad_request


@dataclass(frozen=True)
class Upload:
    """A file sent as a multipart part."""

    filename: str
    content: bytes
    content_type: str | None = None


def parse_body(content_type: str, body: bytes) -> tuple[dict[str, Any], dict[str, Upload]]:
    """Split a request body into plain values and uploaded files."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if not body:
        return {}, {}
    if kind == "application/json":
        try:
            data = json.loads(body)
        except ValueError as error:
            raise bad_request("can't parse JSON object") from error
        if not isinstance(data, dict):
            raise bad_request("can't parse JSON object")
        return data, {}
    if kind == "multipart/form-data":
        return _parse_multipart(content_type, body)
    # Telegram treats any other body as form fields; so do we.
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)), {}


def _parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, Any], dict[str, Upload]]:
    # The stdlib MIME parser reads multipart/form-data once given the header line.
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise bad_request("can't parse multipart/form-data body")
    values: dict[str, Any] = {}
    files: dict[str, Upload] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        content = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            part_type = part.get_content_type()
            files[name] = Upload(filename=filename, content=content, content_type=part_type)
        else:
            charset = part.get_content_charset() or "utf-8"
            values[name] = content.decode(charset, "replace")
    return values, files


class Params:
    """Typed access to one call's parameters, with Telegram's error texts."""

    def __init__(self, values: dict[str, Any] | None = None, files: dict[str, Upload] | None = None) -> None:
        self.values: dict[str, Any] = dict(values or {})
        self.files: dict[str, Upload] = dict(files or {})

    def has(self, name: str) -> bool:
        return self.values.get(name) not in (None, "")

    def text(self, name: str, *, required: bool = False) -> str | None:
        value = self.values.get(name)
        if value is None or value == "":
            if required:
                raise bad_request(f"{name} is empty")
            return None
        if isinstance(value, bool | int | float):
            return json.dumps(value)
        if not isinstance(value, str):
            raise bad_request(f'field "{name}" must be of type String')
        return value

    def integer(self, name: str, *, required: bool = False) -> int | None:
        value = self.values.get(name)
        if value is None or value == "":
            if required:
                raise bad_request(f"{name} is empty")
            return None
        if isinstance(value, bool):
            raise bad_request(f'field "{name}" must be of type Integer')
        try:
            return int(value)
        except (TypeError, ValueError) as error:
            raise bad_request(f'field "{name}" must be of type Integer') from error

    def require_int(self, name: str) -> int:
        value = self.integer(name, required=True)
        assert value is not None
        return value

    def flag(self, name: str) -> bool:
        value = self.values.get(name)
        if isinstance(value, str):
            return value.strip().lower() in {"true", "1", "yes"}
        return bool(value)

    def obj(self, name: str) -> Any:
        """A JSON-typed parameter: an object in JSON bodies, a JSON string in form bodies."""
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError as error:
                raise bad_request(f"can't parse {name} JSON object") from error
        return value

    def chat_id(self) -> int:
        value = self.values.get("chat_id")
        if value is None or value == "":
            raise bad_request("chat_id is empty")
        try:
            return int(value)
        except (TypeError, ValueError) as error:
            # Channel usernames (@name) are not emulated: the sandbox knows chats by id only.
            raise bad_request("chat not found") from error

    def summary(self) -> dict[str, Any]:
        """The values plus a note per uploaded file, for the call log."""
        logged = dict(self.values)
        for name, upload in self.files.items():
            logged[name] = f"<upload {upload.filename} {len(upload.content)} bytes>"
        return logged
