"""Media storage: type and size checks, generated paths, traversal refused, health probe."""

from __future__ import annotations

import io
import re
from unittest import mock

import pytest

from nanobanana.core.errors import NotFound, ValidationError
from nanobanana.media import storage
from nanobanana.media.storage import (
    media_delete,
    media_exists,
    media_read,
    media_save,
    storage_check,
)

EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "video/mp4": "mp4"}


@pytest.mark.parametrize("content_type", list(EXTENSIONS))
def test_saved_media_reads_back_byte_for_byte_under_a_generated_path(
    media_root, fake_clock, sample_files, content_type
):
    data = sample_files[content_type]

    stored = media_save(data=data, content_type=content_type, prefix="results", filename="out")

    extension = EXTENSIONS[content_type]
    assert re.fullmatch(rf"results/2031/02/[0-9a-f]{{32}}\.{extension}", stored.path)
    assert stored.size == len(data)
    assert stored.content_type == content_type
    assert (media_root / stored.path).read_bytes() == data
    assert media_read(path=stored.path) == data


def test_two_saves_of_the_same_bytes_get_different_paths(media_root, sample_files):
    first = media_save(data=sample_files["image/png"], content_type="image/png", prefix="results", filename="a.png")
    second = media_save(data=sample_files["image/png"], content_type="image/png", prefix="results", filename="a.png")

    assert first.path != second.path


def test_the_user_filename_never_reaches_the_storage_path(media_root, sample_files):
    stored = media_save(
        data=sample_files["image/png"], content_type="image/png", prefix="inputs", filename="../../etc/passwd"
    )

    assert ".." not in stored.path
    assert "passwd" not in stored.path
    assert stored.filename == "passwd.png"
    assert [path.name for path in media_root.parent.rglob("*passwd*")] == []


def test_deleted_media_no_longer_exists_and_reads_as_not_found(media_root, sample_files):
    stored = media_save(data=sample_files["image/png"], content_type="image/png", prefix="results", filename="x")
    assert media_exists(path=stored.path) is True

    media_delete(path=stored.path)

    assert media_exists(path=stored.path) is False
    with pytest.raises(NotFound):
        media_read(path=stored.path)
    media_delete(path=stored.path)  # a second delete is harmless


@pytest.mark.parametrize(
    ("declared", "actual"),
    [
        ("image/png", "image/jpeg"),
        ("image/jpeg", "image/png"),
        ("video/mp4", "image/webp"),
        ("image/webp", "video/mp4"),
    ],
)
def test_bytes_that_do_not_match_the_declared_type_are_rejected(media_root, sample_files, declared, actual):
    with pytest.raises(ValidationError) as raised:
        media_save(data=sample_files[actual], content_type=declared, prefix="results", filename="x")

    assert raised.value.code == "media_type"
    assert not media_root.exists() or not any(media_root.rglob("*.*"))


def test_html_declared_as_png_is_rejected(media_root):
    with pytest.raises(ValidationError, match="not image/png"):
        media_save(data=b"<html><script>alert(1)</script>", content_type="image/png", prefix="results", filename="x")


@pytest.mark.parametrize("content_type", ["image/gif", "text/html", "application/octet-stream", "IMAGE/PNG"])
def test_content_types_outside_the_allowed_list_are_rejected(media_root, sample_files, content_type):
    with pytest.raises(ValidationError, match="unsupported media type"):
        media_save(data=sample_files["image/png"], content_type=content_type, prefix="results", filename="x")


def test_files_over_the_size_limit_are_rejected_with_a_clear_message(media_root, sample_files, monkeypatch):
    data = sample_files["image/png"]
    monkeypatch.setattr(storage, "MAX_MEDIA_BYTES", len(data) - 1)

    with pytest.raises(ValidationError, match="limit") as raised:
        media_save(data=data, content_type="image/png", prefix="results", filename="x")

    assert raised.value.code == "media_too_large"


def test_a_file_exactly_at_the_size_limit_is_accepted(media_root, sample_files, monkeypatch):
    data = sample_files["image/png"]
    monkeypatch.setattr(storage, "MAX_MEDIA_BYTES", len(data))

    stored = media_save(data=data, content_type="image/png", prefix="results", filename="x")

    assert stored.size == len(data)


@pytest.mark.parametrize("prefix", ["", "../up", "/abs", "a b", "Results", "a//b", "a/../b", "x\\y"])
def test_unsafe_prefixes_are_rejected(media_root, sample_files, prefix):
    with pytest.raises(ValidationError, match="prefix"):
        media_save(data=sample_files["image/png"], content_type="image/png", prefix=prefix, filename="x")


UNSAFE_PATHS = [
    "../secret.txt",
    "results/../../secret.txt",
    "/etc/passwd",
    "results\\2031\\x.png",
    "results/x.png\x00.txt",
    "",
    "results//x.png",
    "./results/x.png",
    "C:/windows/x.png",
    "results/\nx.png",
]


@pytest.mark.parametrize("path", UNSAFE_PATHS)
@pytest.mark.parametrize("operation", [media_read, media_exists, media_delete])
def test_unsafe_paths_are_rejected_before_storage_is_touched(monkeypatch, operation, path):
    fake_storage = mock.Mock()
    monkeypatch.setattr(storage, "default_storage", fake_storage)

    with pytest.raises(ValidationError, match="invalid media path"):
        operation(path=path)

    assert fake_storage.mock_calls == []


def test_a_traversal_path_cannot_read_a_file_next_to_media_root(media_root):
    media_root.mkdir()
    (media_root.parent / "secret.txt").write_text("top secret")

    with pytest.raises(ValidationError):
        media_read(path="../secret.txt")


def test_reading_a_missing_file_raises_not_found(media_root):
    with pytest.raises(NotFound):
        media_read(path="results/2031/02/0123456789abcdef0123456789abcdef.png")


def test_storage_check_writes_reads_and_cleans_up(media_root):
    assert storage_check() == (True, "ok")

    assert (media_root / "health").is_dir()
    assert list((media_root / "health").iterdir()) == []


def test_storage_check_reports_failure_without_revealing_paths(settings, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the media folder should be")
    settings.MEDIA_ROOT = blocker

    ok, detail = storage_check()

    assert ok is False
    assert detail.startswith("write: ")
    assert str(tmp_path) not in detail


def test_storage_check_fails_when_the_bytes_read_back_differ(media_root, monkeypatch):
    def corrupting_open(name, mode="rb"):
        return io.BytesIO(b"garbled")

    monkeypatch.setattr(storage.default_storage, "open", corrupting_open)

    ok, detail = storage_check()

    assert ok is False
    assert detail.startswith("read: ")
    assert list((media_root / "health").iterdir()) == []
