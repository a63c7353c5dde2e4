"""Signed media links and the download view behind them."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.core import signing

from nanobanana.media import storage
from nanobanana.media.storage import media_link, media_save


def save(sample_files, content_type="image/png"):
    return media_save(data=sample_files[content_type], content_type=content_type, prefix="results", filename="out")


def local_path(url: str) -> str:
    return urlsplit(url).path


def test_a_link_is_an_absolute_url_under_the_public_base_url(media_root, sample_files):
    url = media_link(path=save(sample_files).path)

    assert url.startswith("https://nb.example/media/")
    assert "results/" not in url  # the storage path is signed and compressed, not spelled out


@pytest.mark.parametrize(
    ("content_type", "extension"),
    [("image/png", "png"), ("image/jpeg", "jpg"), ("image/webp", "webp"), ("video/mp4", "mp4")],
)
def test_a_valid_link_streams_the_file_inline_with_its_content_type(
    client, media_root, sample_files, content_type, extension
):
    stored = save(sample_files, content_type)

    response = client.get(local_path(media_link(path=stored.path, filename="banana")))

    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert response["Content-Disposition"] == f'inline; filename="banana.{extension}"'
    assert b"".join(response.streaming_content) == sample_files[content_type]


def test_without_a_filename_the_download_is_named_after_the_stored_file(client, media_root, sample_files):
    stored = save(sample_files)

    response = client.get(local_path(media_link(path=stored.path)))

    assert response["Content-Disposition"] == f'inline; filename="{stored.path.rsplit("/", 1)[-1]}"'


def test_a_filename_with_header_tricks_is_cleaned(client, media_root, sample_files):
    stored = save(sample_files)

    response = client.get(local_path(media_link(path=stored.path, filename='evil"\r\nSet-Cookie: x=1.png')))

    disposition = response["Content-Disposition"]
    assert disposition.startswith('inline; filename="evil-Set-Cookie-x-1.png"')
    assert "\r" not in disposition
    assert "\n" not in disposition


def test_a_link_works_until_its_max_age_then_is_refused_as_expired(client, media_root, sample_files, fake_clock):
    url = local_path(media_link(path=save(sample_files).path, max_age=60))

    fake_clock.advance(60)
    assert client.get(url).status_code == 200

    fake_clock.advance(1)
    response = client.get(url)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "link_expired"


def test_the_default_max_age_comes_from_settings(client, media_root, sample_files, fake_clock, settings):
    settings.MEDIA_LINK_MAX_AGE_SECONDS = 100
    url = local_path(media_link(path=save(sample_files).path))

    fake_clock.advance(100)
    assert client.get(url).status_code == 200
    fake_clock.advance(1)
    assert client.get(url).status_code == 403


def test_a_non_positive_max_age_is_refused(media_root):
    with pytest.raises(storage.ValidationError):
        media_link(path="results/2031/02/x.png", max_age=0)


def test_a_tampered_token_is_refused_without_revealing_the_path(client, media_root, sample_files):
    stored = save(sample_files)
    url = local_path(media_link(path=stored.path))
    tampered = url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB")

    response = client.get(tampered)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "link_invalid"
    assert stored.path.encode() not in response.content


def test_a_token_signed_for_another_purpose_is_refused(client, media_root, sample_files):
    stored = save(sample_files)
    payload = {"p": stored.path, "f": "x.png", "x": 4_000_000_000}
    token = signing.dumps(payload, salt="some.other.salt", compress=True)

    response = client.get(f"/media/{token}")

    assert response.status_code == 403


def test_a_correctly_signed_token_with_a_traversal_path_is_still_refused(client, media_root):
    media_root.mkdir()
    (media_root.parent / "secret.txt").write_text("top secret")
    token = signing.dumps({"p": "../secret.txt", "f": "x.png", "x": 4_000_000_000}, salt=storage.LINK_SALT)

    response = client.get(f"/media/{token}")

    assert response.status_code == 403
    assert b"top secret" not in response.content
    assert b"secret.txt" not in response.content


def test_a_signed_token_with_a_malformed_payload_is_refused(client, media_root):
    token = signing.dumps({"p": "results/x.png", "x": "tomorrow"}, salt=storage.LINK_SALT)

    assert client.get(f"/media/{token}").status_code == 403


def test_a_link_to_a_deleted_file_is_not_found_without_revealing_the_path(client, media_root, sample_files):
    stored = save(sample_files)
    url = local_path(media_link(path=stored.path))
    storage.media_delete(path=stored.path)

    response = client.get(url)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert stored.path.encode() not in response.content


def test_the_download_view_only_answers_get_and_head(client, media_root, sample_files):
    url = local_path(media_link(path=save(sample_files).path))

    assert client.post(url).status_code == 405
    assert client.head(url).status_code == 200
