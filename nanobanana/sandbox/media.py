"""Files sent to the emulator: uploads, file_id re-use, photo sizes, size limits.

https://core.telegram.org/bots/api#sending-files
"""

from __future__ import annotations

import io
import mimetypes
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from PIL import Image, UnidentifiedImageError

from nanobanana.sandbox.errors import bad_request, entity_too_large
from nanobanana.sandbox.params import Params, Upload
from nanobanana.sandbox.state import StoredFile

if TYPE_CHECKING:
    from nanobanana.sandbox.core import TelegramCore

MB = 1024 * 1024
MediaKind = Literal["photo", "document", "video", "audio", "animation"]
CLOUD_UPLOAD_LIMITS: dict[str, int] = {"photo": 10 * MB}
CLOUD_DEFAULT_UPLOAD_LIMIT = 50 * MB
LOCAL_UPLOAD_LIMIT = 2000 * MB
CLOUD_DOWNLOAD_LIMIT = 20 * MB
THUMBNAIL_SIDE = 320


@dataclass(frozen=True)
class Resolved:
    """An input file after upload or lookup: the stored bytes and the name they came with."""

    stored: StoredFile
    file_name: str | None


def upload_limit(fake: TelegramCore, kind: str) -> int:
    if fake.local_mode:
        return LOCAL_UPLOAD_LIMIT
    return CLOUD_UPLOAD_LIMITS.get(kind, CLOUD_DEFAULT_UPLOAD_LIMIT)


def resolve_input(fake: TelegramCore, params: Params, value: Any, kind: MediaKind, field: str) -> Resolved:
    """Turn an InputFile field (upload part, attach://name, file_id or URL) into a stored file."""
    upload: Upload | None = None
    if isinstance(value, str) and value.startswith("attach://"):
        upload = params.files.get(value.removeprefix("attach://"))
        if upload is None:
            raise bad_request(f"file must be uploaded as InputFile: no part named {value!r}")
    elif value is None:
        upload = params.files.get(field)
        if upload is None:
            raise bad_request(f"there is no {kind} in the request")
    elif isinstance(value, str) and value.startswith(("http://", "https://")):
        raise bad_request(
            "failed to get HTTP URL content: the sandbox has no internet; upload the file or pass a file_id"
        )
    elif isinstance(value, str):
        stored = fake.files.get(value)
        if stored is None:
            raise bad_request("wrong file identifier/HTTP URL specified")
        return Resolved(stored=stored, file_name=stored.file_name)
    else:
        raise bad_request(f"wrong type of the {kind} field")
    if len(upload.content) > upload_limit(fake, kind):
        raise entity_too_large()
    if not upload.content:
        raise bad_request("file must be non-empty")
    return Resolved(stored=_store_upload(fake, upload, kind), file_name=upload.filename)


def _store_upload(fake: TelegramCore, upload: Upload, kind: MediaKind) -> StoredFile:
    guessed = mimetypes.guess_type(upload.filename)[0]
    mime = guessed or (upload.content_type if upload.content_type != "application/octet-stream" else None)
    extension = mimetypes.guess_extension(mime) if mime else None
    if extension is None and "." in upload.filename:
        extension = "." + upload.filename.rsplit(".", 1)[1]
    folder = {"photo": "photos", "video": "videos", "audio": "music", "animation": "animations"}.get(kind, "documents")
    if kind == "photo":
        mime, extension = image_mime(upload.content) or (mime, extension)
    return fake.store_file(
        upload.content, folder=folder, extension=extension or "", mime_type=mime, file_name=upload.filename
    )


def image_mime(content: bytes) -> tuple[str, str] | None:
    """(mime type, extension) when the bytes are an image Pillow can read."""
    try:
        with Image.open(io.BytesIO(content)) as image:
            fmt = (image.format or "").lower()
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    extension = {"jpeg": ".jpg", "png": ".png", "webp": ".webp", "gif": ".gif"}.get(fmt, f".{fmt}")
    return Image.MIME.get(fmt.upper(), f"image/{fmt}"), extension


def photo_sizes(fake: TelegramCore, stored: StoredFile) -> list[dict[str, Any]]:
    """Telegram's PhotoSize list for a photo: a 320 px thumbnail (when smaller) and the full size."""
    existing = fake.photo_size_cache.get(stored.file_id)
    if existing is not None:
        return existing
    try:
        with Image.open(io.BytesIO(stored.content)) as image:
            width, height = image.size
            if max(width, height) > THUMBNAIL_SIDE:
                thumb_bytes: bytes | None = _thumbnail(image)  # decodes it
            else:
                image.load()  # decoded all the same: an unreadable image is refused at any size
                thumb_bytes = None
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise bad_request("IMAGE_PROCESS_FAILED") from error
    if width + height > 10000 or max(width, height) > 20 * min(width, height):
        raise bad_request("PHOTO_INVALID_DIMENSIONS")
    sizes: list[dict[str, Any]] = []
    if thumb_bytes is not None:
        thumb = fake.store_file(thumb_bytes, folder="photos", extension=".jpg", mime_type="image/jpeg")
        scale = THUMBNAIL_SIDE / max(width, height)
        sizes.append(_size(thumb, round(width * scale), round(height * scale)))
    sizes.append(_size(stored, width, height))
    for size in sizes:
        fake.photo_size_cache[size["file_id"]] = sizes
    return sizes


def _thumbnail(image: Image.Image) -> bytes:
    """A JPEG of at most THUMBNAIL_SIDE. `image` must not be loaded yet: a
    JPEG is then decoded at a reduced scale (`draft`), several times faster
    than decoding it whole; it is only the emulator's preview."""
    image.draft("RGB", (THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.BILINEAR, reducing_gap=None)
    small = image.convert("RGB")
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


def _size(stored: StoredFile, width: int, height: int) -> dict[str, Any]:
    return {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": stored.size,
        "width": width,
        "height": height,
    }


def media_dict(fake: TelegramCore, kind: MediaKind, resolved: Resolved, params: Params) -> Any:
    """The Message field for a sent file: list of PhotoSize for photos, an object otherwise."""
    stored = resolved.stored
    if kind == "photo":
        return photo_sizes(fake, stored)
    data: dict[str, Any] = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id}
    if resolved.file_name:
        data["file_name"] = resolved.file_name
    if stored.mime_type:
        data["mime_type"] = stored.mime_type
    data["file_size"] = stored.size
    if kind in ("video", "animation"):
        data.update(
            width=params.integer("width") or 0,
            height=params.integer("height") or 0,
            duration=params.integer("duration") or 0,
        )
    return data
