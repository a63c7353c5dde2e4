"""The preview sent before a result's full-quality document: a small JPEG or
opaque PNG goes as it is; anything larger, wider or transparent is re-encoded
as a JPEG that fits PREVIEW_MAX_SIDE."""

from __future__ import annotations

import io
import os

from PIL import Image

from nanobanana.bot.delivery import PREVIEW_MAX_SIDE, PREVIEW_REUSE_MAX_BYTES, preview_image

JPEG_MAGIC = b"\xff\xd8\xff"


def encoded(image: Image.Image, image_format: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return buffer.getvalue()


def test_a_small_opaque_png_is_its_own_preview() -> None:
    data = encoded(Image.new("RGB", (1024, 1024), (30, 120, 200)), "PNG")
    assert preview_image(data) == (data, "png")


def test_a_small_jpeg_is_its_own_preview() -> None:
    data = encoded(Image.new("RGB", (800, 600), (200, 30, 30)), "JPEG")
    assert preview_image(data) == (data, "jpg")


def test_a_png_with_transparency_is_reencoded_as_jpeg() -> None:
    data = encoded(Image.new("RGBA", (256, 256), (0, 0, 0, 0)), "PNG")
    preview = preview_image(data)
    assert preview is not None
    assert preview[1] == "jpg"
    assert preview[0].startswith(JPEG_MAGIC)


def test_a_wide_image_is_shrunk_to_the_preview_size() -> None:
    data = encoded(Image.new("RGB", (4096, 1024), (10, 10, 10)), "PNG")
    preview = preview_image(data)
    assert preview is not None
    assert preview[1] == "jpg"
    with Image.open(io.BytesIO(preview[0])) as image:
        assert image.size == (PREVIEW_MAX_SIDE, PREVIEW_MAX_SIDE // 4)


def test_a_heavy_image_of_preview_size_is_reencoded() -> None:
    noise = Image.frombytes("RGB", (1000, 1000), os.urandom(3 * 1000 * 1000))
    data = encoded(noise, "PNG")
    assert len(data) > PREVIEW_REUSE_MAX_BYTES
    preview = preview_image(data)
    assert preview is not None
    assert preview[1] == "jpg"
    assert preview[0] != data


def test_bytes_that_are_not_an_image_have_no_preview() -> None:
    assert preview_image(b"\x00\x00\x00 ftypmp42 not a picture") is None
