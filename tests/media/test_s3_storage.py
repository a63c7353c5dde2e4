"""Supabase Storage over S3: the settings mapping, and a real
django-storages S3 backend saving through media storage, with boto3's
HTTP calls answered by botocore's Stubber (no network)."""

from __future__ import annotations

import pytest
from botocore.stub import ANY, Stubber
from storages.backends.s3 import S3Storage

from config.storage import FILE_BACKEND, S3_BACKEND, default_storage_backend, storage_problems, supabase_endpoint
from nanobanana.media import storage as media_storage
from tests.providers.fakes.base import sample_png

ENV = {
    "SUPABASE_URL": "https://abcdefgh.supabase.co",
    "SUPABASE_BUCKET": "media",
    "SUPABASE_S3_ACCESS_KEY_ID": "test-access-key",
    "SUPABASE_S3_SECRET_ACCESS_KEY": "test-secret-key",  # pragma: allowlist secret
    "SUPABASE_S3_REGION": "eu-central-1",
}


@pytest.mark.parametrize(
    ("url", "endpoint"),
    [
        ("https://abcdefgh.supabase.co", "https://abcdefgh.storage.supabase.co/storage/v1/s3"),
        ("https://abcdefgh.supabase.co/", "https://abcdefgh.storage.supabase.co/storage/v1/s3"),
        ("https://abcdefgh.storage.supabase.co", "https://abcdefgh.storage.supabase.co/storage/v1/s3"),
        ("http://storage:9000", "http://storage:9000"),  # a local MinIO is used as it is
    ],
)
def test_supabase_urls_map_to_the_s3_endpoint(url, endpoint):
    assert supabase_endpoint(url) == endpoint


def test_without_supabase_settings_media_stays_in_the_local_folder():
    assert default_storage_backend({}) == {"BACKEND": FILE_BACKEND}
    assert storage_problems({}) == []


def test_half_configured_s3_is_a_production_problem_not_a_silent_fallback():
    partial = {"SUPABASE_URL": ENV["SUPABASE_URL"], "SUPABASE_BUCKET": "media"}
    problems = storage_problems(partial)
    assert len(problems) == 2
    assert all("SUPABASE_S3_" in problem for problem in problems)


def test_full_settings_select_path_style_sigv4_s3():
    backend = default_storage_backend(ENV)
    assert backend["BACKEND"] == S3_BACKEND
    options = backend["OPTIONS"]
    assert options["endpoint_url"] == "https://abcdefgh.storage.supabase.co/storage/v1/s3"
    assert (options["bucket_name"], options["region_name"]) == ("media", "eu-central-1")
    assert (options["addressing_style"], options["signature_version"]) == ("path", "s3v4")
    assert options["file_overwrite"] is False


def test_media_save_stores_through_the_s3_backend(monkeypatch):
    s3 = S3Storage(**default_storage_backend(ENV)["OPTIONS"])
    client = s3.connection.meta.client
    png = sample_png()
    with Stubber(client) as stub:
        stub.add_client_error("head_object", service_error_code="404", http_status_code=404)
        stub.add_response(
            "put_object",
            {"ETag": '"etag"'},
            {"Bucket": "media", "Key": ANY, "Body": ANY, "ContentType": "image/png", "ChecksumAlgorithm": ANY},
        )
        monkeypatch.setattr(media_storage, "default_storage", s3)
        stored = media_storage.media_save(data=png, content_type="image/png", prefix="generations", filename="a.png")
        stub.assert_no_pending_responses()
    assert stored.path.startswith("generations/")
    assert stored.path.endswith(".png")
    assert stored.size == len(png)
