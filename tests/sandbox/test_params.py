"""Request bodies as Telegram reads them: multipart/form-data keeps binary
files byte for byte and UTF-8 names intact, and a broken body is a 400."""

from __future__ import annotations

import os

import pytest

from nanobanana.sandbox.errors import ApiError
from nanobanana.sandbox.params import parse_body

BOUNDARY = "----nanobanana-test-boundary"


def multipart(*parts: tuple[str, bytes, str | None, str | None]) -> bytes:
    """(name, content, filename, content type) -> a multipart/form-data body."""
    chunks = []
    for name, content, filename, content_type in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
        if content_type:
            head += f"Content-Type: {content_type}\r\n"
        chunks.append(head.encode() + b"\r\n" + content + b"\r\n")
    return b"".join(chunks) + f"--{BOUNDARY}--\r\n".encode()


def test_multipart_keeps_binary_files_and_utf8_names() -> None:
    video = os.urandom(256 * 1024) + b"\r\n--" + BOUNDARY[:-1].encode()  # a near-boundary inside the data
    body = multipart(
        ("chat_id", b"42", None, None),
        ("caption", "Кот в лучах заката".encode(), None, "text/plain; charset=utf-8"),
        ("document", video, "видео.mp4", "video/mp4"),
    )
    values, files = parse_body(f"multipart/form-data; boundary={BOUNDARY}", body)
    assert values == {"chat_id": "42", "caption": "Кот в лучах заката"}
    assert files["document"].filename == "видео.mp4"
    assert files["document"].content_type == "video/mp4"
    assert files["document"].content == video


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (f"multipart/form-data; boundary={BOUNDARY}", b"not a multipart body"),
        ("multipart/form-data", multipart(("chat_id", b"42", None, None))),
    ],
    ids=["garbage", "no-boundary"],
)
def test_a_broken_multipart_body_is_a_bad_request(content_type: str, body: bytes) -> None:
    with pytest.raises(ApiError) as raised:
        parse_body(content_type, body)
    assert raised.value.status == 400
    assert "multipart/form-data" in raised.value.description
