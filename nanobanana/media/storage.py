"""Media storage services: save, read and link generated files.

Everything goes through Django's `default_storage`, so the backend is a
setting (a local folder under MEDIA_ROOT now, S3 through django-storages
later). Paths are always generated here (`<prefix>/<yyyy>/<mm>/<uuid>.<ext>`)
and every path that comes back in is checked before storage sees it.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings
from django.core import signing
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse

from nanobanana.core import clock
from nanobanana.core.errors import NotFound, ValidationError

logger = logging.getLogger(__name__)

MAX_MEDIA_BYTES = 200 * 1024 * 1024
LINK_SALT = "nanobanana.media.link"
HEALTH_PREFIX = "health"

_PREFIX = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}(/[a-z0-9][a-z0-9_-]{0,39}){0,3}$")
_UNSAFE_FILENAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def _is_png(data: bytes) -> bool:
    return data.startswith(b"\x89PNG\r\n\x1a\n")


def _is_jpeg(data: bytes) -> bool:
    return data.startswith(b"\xff\xd8\xff")


def _is_webp(data: bytes) -> bool:
    return len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP"


def _is_mp4(data: bytes) -> bool:
    # ISO base media file: a box size, then the `ftyp` box type.
    return len(data) >= 12 and data[4:8] == b"ftyp"


@dataclass(frozen=True, slots=True)
class MediaType:
    content_type: str
    extension: str
    matches: Callable[[bytes], bool]


MEDIA_TYPES: dict[str, MediaType] = {
    media_type.content_type: media_type
    for media_type in (
        MediaType("image/png", "png", _is_png),
        MediaType("image/jpeg", "jpg", _is_jpeg),
        MediaType("image/webp", "webp", _is_webp),
        MediaType("video/mp4", "mp4", _is_mp4),
    )
}
_TYPES_BY_EXTENSION = {media_type.extension: media_type for media_type in MEDIA_TYPES.values()}


@dataclass(frozen=True, slots=True)
class StoredMedia:
    """A saved file. `path` is the storage key to keep in the database;
    `filename` is the cleaned display name (for downloads), never a path."""

    path: str
    size: int
    content_type: str
    filename: str = ""


class _TypedContentFile(ContentFile):
    # django-storages' S3 backend reads `content_type` from the file object.
    content_type: str


def media_save(*, data: bytes, content_type: str, prefix: str, filename: str) -> StoredMedia:
    """Store `data` under a new generated path and describe it.

    The bytes must really be of `content_type` (checked by magic number) and
    at most MAX_MEDIA_BYTES. `prefix` is a code-chosen folder such as
    `results` or `inputs`; `filename` only becomes the display name.
    """
    media_type = MEDIA_TYPES.get(content_type)
    if media_type is None:
        raise ValidationError(f"unsupported media type {content_type!r}", code="media_type")
    if not media_type.matches(data):
        raise ValidationError(f"the file's contents are not {content_type}", code="media_type")
    if len(data) > MAX_MEDIA_BYTES:
        raise ValidationError(
            f"the file is {len(data)} bytes; the limit is {MAX_MEDIA_BYTES} bytes", code="media_too_large"
        )
    if not _PREFIX.match(prefix):
        raise ValidationError(f"invalid storage prefix {prefix!r}", code="media_path")

    today = clock.now()
    path = f"{prefix}/{today:%Y}/{today:%m}/{uuid.uuid4().hex}.{media_type.extension}"
    content = _TypedContentFile(data)
    content.content_type = content_type
    saved = default_storage.save(path, content)
    return StoredMedia(
        path=saved,
        size=len(data),
        content_type=content_type,
        filename=_display_filename(filename, media_type.extension),
    )


def media_open(*, path: str) -> IO[Any]:
    """Open a stored file for streaming; the caller closes it. `NotFound` if missing."""
    _check_path(path)
    try:
        return default_storage.open(path, "rb")
    except FileNotFoundError:
        raise NotFound("no such media") from None


def media_read(*, path: str) -> bytes:
    """The whole stored file. `NotFound` if missing."""
    with media_open(path=path) as stored:
        data: bytes = stored.read()
    return data


def media_exists(*, path: str) -> bool:
    _check_path(path)
    return default_storage.exists(path)


def media_delete(*, path: str) -> None:
    """Delete a stored file; deleting a missing file is not an error."""
    _check_path(path)
    default_storage.delete(path)


def media_content_type(*, path: str) -> str:
    """The content type implied by a stored path's extension (we chose it at save)."""
    _check_path(path)
    extension = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    media_type = _TYPES_BY_EXTENSION.get(extension)
    return media_type.content_type if media_type else "application/octet-stream"


# --- Signed links -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MediaLink:
    """What a verified link token points at."""

    path: str
    filename: str


class LinkInvalid(ValidationError):
    code = "link_invalid"


class LinkExpired(ValidationError):
    code = "link_expired"


def media_link(*, path: str, max_age: int | None = None, filename: str | None = None) -> str:
    """An absolute URL anyone can use to download `path` until it expires.

    For results Telegram refuses to carry. The token is signed with the
    SECRET_KEY and carries its own expiry (default
    settings.MEDIA_LINK_MAX_AGE_SECONDS); `filename` is the download name
    (default: the stored file's name).
    """
    _check_path(path)
    age = settings.MEDIA_LINK_MAX_AGE_SECONDS if max_age is None else max_age
    if age <= 0:
        raise ValidationError("a link's max_age must be positive")
    extension = path.rsplit(".", 1)[-1]
    payload = {
        "p": path,
        "f": _display_filename(filename or path.rsplit("/", 1)[-1], extension),
        "x": int(clock.now().timestamp()) + int(age),
    }
    token = signing.dumps(payload, salt=LINK_SALT, compress=True)
    return settings.PUBLIC_BASE_URL + reverse("media:download", kwargs={"token": token})


def media_link_verify(*, token: str) -> MediaLink:
    """The target of a link token; `LinkInvalid` when forged or malformed,
    `LinkExpired` when past its expiry."""
    try:
        payload = signing.loads(token, salt=LINK_SALT)
    except signing.BadSignature:
        raise LinkInvalid("the link is not valid") from None
    if (
        not isinstance(payload, dict)
        or not isinstance(payload.get("p"), str)
        or not isinstance(payload.get("f"), str)
        or not isinstance(payload.get("x"), int)
    ):
        raise LinkInvalid("the link is not valid")
    if clock.now().timestamp() > payload["x"]:
        raise LinkExpired("the link has expired")
    return MediaLink(path=payload["p"], filename=payload["f"])


# --- Health -------------------------------------------------------------------


def storage_check() -> tuple[bool, str]:
    """Write, read back and delete a tiny object under `health/`.

    Returns (ok, detail). The detail names only the failing step and the
    error's type, since it may be shown on a public health page; the full
    error goes to the log.
    """
    probe = f"nanobanana-health-{uuid.uuid4().hex}".encode()
    step = "write"
    saved: str | None = None
    try:
        saved = default_storage.save(f"{HEALTH_PREFIX}/{uuid.uuid4().hex}.txt", ContentFile(probe))
        step = "read"
        with default_storage.open(saved, "rb") as stored:
            read_back = stored.read()
        if read_back != probe:
            return False, "read: the stored bytes differ from those written"
        step = "delete"
        default_storage.delete(saved)
        saved = None
    except Exception as error:
        logger.exception("storage check failed at %s", step)
        return False, f"{step}: {type(error).__name__}"
    finally:
        if saved is not None:
            _delete_quietly(saved)
    return True, "ok"


def _delete_quietly(path: str) -> None:
    try:
        default_storage.delete(path)
    except Exception:
        logger.warning("storage check could not remove its probe", exc_info=True)


# --- Paths --------------------------------------------------------------------


def _check_path(path: str) -> None:
    """Refuse anything that is not a plain relative path, before storage sees it."""
    if (
        not path
        or len(path) > 500
        or path.startswith("/")
        or "\\" in path
        or "\x00" in path
        or ":" in path
        or any(segment in {"", ".", ".."} for segment in path.split("/"))
        or any(ord(char) < 32 for char in path)
    ):
        raise ValidationError("invalid media path", code="media_path")


def _display_filename(filename: str, extension: str) -> str:
    """A safe download name: ASCII letters, digits, `._-`; the stored file's extension."""
    stem = filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    stem = stem.rsplit(".", 1)[0] if "." in stem else stem
    stem = _UNSAFE_FILENAME_CHARS.sub("-", stem).strip(".-_")[:80] or "file"
    return f"{stem}.{extension}"
