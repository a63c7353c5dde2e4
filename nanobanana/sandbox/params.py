"""Bot API request parameters: every encoding Telegram accepts, read the way Telegram reads them.

Telegram takes parameters from the query string, `application/json`,
`application/x-www-form-urlencoded` or `multipart/form-data` bodies; in the
form encodings objects (reply_markup, media, prices) arrive as JSON strings.
https://core.telegram.org/bots/api#making-requests
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from python_multipart.multipart import MultipartParseError, MultipartParser, parse_options_header

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
    """python-multipart's parser: it finds boundaries with bytes searches, so a
    1 MB upload costs about 1 ms (the stdlib's MIME parser took 30 ms, which
    limited the sandbox to about 35 uploads a second)."""
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise bad_request("can't parse multipart/form-data body")
    # Header values stay bytes: parse_options_header reads them as latin-1
    # and gives the same bytes back, so a UTF-8 filename survives.
    parts: list[tuple[dict[str, bytes], bytearray]] = []
    field, value = bytearray(), bytearray()

    def header_end() -> None:
        parts[-1][0][field.decode("latin-1").lower()] = bytes(value)
        field.clear()
        value.clear()

    parser = MultipartParser(
        boundary,
        callbacks={
            "on_part_begin": lambda: parts.append(({}, bytearray())),
            "on_part_data": lambda data, start, end: parts[-1][1].extend(data[start:end]),
            "on_header_field": lambda data, start, end: field.extend(data[start:end]),
            "on_header_value": lambda data, start, end: value.extend(data[start:end]),
            "on_header_end": header_end,
        },
    )
    try:
        parser.write(body)
        parser.finalize()
    except MultipartParseError:
        raise bad_request("can't parse multipart/form-data body") from None
    values: dict[str, Any] = {}
    files: dict[str, Upload] = {}
    for headers, content in parts:
        _, disposition = parse_options_header(headers.get("content-disposition"))
        name = disposition.get(b"name")
        if name is None:
            continue
        part_type, type_options = parse_options_header(headers.get("content-type") or b"text/plain")
        filename = disposition.get(b"filename")
        if filename is not None:
            files[name.decode("utf-8", "replace")] = Upload(
                filename=filename.decode("utf-8", "replace"), content=bytes(content), content_type=part_type.decode()
            )
        else:
            charset = type_options.get(b"charset", b"utf-8").decode("ascii", "replace")
            try:
                values[name.decode("utf-8", "replace")] = content.decode(charset, "replace")
            except LookupError:
                values[name.decode("utf-8", "replace")] = content.decode("utf-8", "replace")
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
