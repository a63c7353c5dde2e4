"""Where media goes: the local folder, or Supabase Storage through its S3
protocol (django-storages + boto3). Pure functions of the environment, used
only by settings (decision 507).

Supabase: `SUPABASE_URL` is the project URL `https://<ref>.supabase.co`; its
S3 endpoint is `https://<ref>.storage.supabase.co/storage/v1/s3` (the direct
storage host), addressed path-style with SigV4, with the S3 access keys the
project generates (`SUPABASE_S3_ACCESS_KEY_ID`, `SUPABASE_S3_SECRET_ACCESS_KEY`)
and the project's region (`SUPABASE_S3_REGION`). Any other URL (a local
MinIO, say) is used as the endpoint as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

S3_BACKEND = "storages.backends.s3.S3Storage"
FILE_BACKEND = "django.core.files.storage.FileSystemStorage"
REQUIRED = ("SUPABASE_URL", "SUPABASE_BUCKET", "SUPABASE_S3_ACCESS_KEY_ID", "SUPABASE_S3_SECRET_ACCESS_KEY")


def supabase_endpoint(url: str) -> str:
    parts = urlsplit(url.strip().rstrip("/"))
    host = parts.hostname or ""
    if host.endswith(".supabase.co") and not host.endswith(".storage.supabase.co"):
        ref = host.removesuffix(".supabase.co")
        return f"https://{ref}.storage.supabase.co/storage/v1/s3"
    if host.endswith(".storage.supabase.co") and not parts.path:
        return f"https://{host}/storage/v1/s3"
    return url.strip().rstrip("/")


def storage_problems(environ: Mapping[str, str]) -> list[str]:
    """What is missing when S3 storage was asked for (SUPABASE_URL set)."""
    if not environ.get("SUPABASE_URL", "").strip():
        return []
    return [f"{name} is unset (needed with SUPABASE_URL)" for name in REQUIRED if not environ.get(name, "").strip()]


def default_storage_backend(environ: Mapping[str, str]) -> dict[str, Any]:
    """The `STORAGES["default"]` entry for this environment."""
    if not environ.get("SUPABASE_URL", "").strip() or storage_problems(environ):
        return {"BACKEND": FILE_BACKEND}
    return {
        "BACKEND": S3_BACKEND,
        "OPTIONS": {
            "bucket_name": environ["SUPABASE_BUCKET"].strip(),
            "endpoint_url": supabase_endpoint(environ["SUPABASE_URL"]),
            "region_name": environ.get("SUPABASE_S3_REGION", "").strip() or "us-east-1",
            "access_key": environ["SUPABASE_S3_ACCESS_KEY_ID"].strip(),
            "secret_key": environ["SUPABASE_S3_SECRET_ACCESS_KEY"].strip(),
            "addressing_style": "path",
            "signature_version": "s3v4",
            "file_overwrite": False,
            "default_acl": None,
            # Files are served through our own signed links (decision 503),
            # never by public bucket URLs.
            "querystring_auth": True,
        },
    }
