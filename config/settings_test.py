"""Settings for pytest: the real settings, fed a test environment.

Commands run with these settings (`make check`, `make migrations-lint`) only
read from the server's `postgres` database; pytest creates its own per process.
The suite runs against the machine's real PostgreSQL and Redis by default
(override with TEST_DATABASE_URL / TEST_REDIS_URL)."""

import os
import tempfile

os.environ.update(
    {
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "test-secret-key-that-is-long-enough-for-checks-0123456789",
        "TG_WEBHOOK_SECRET": "test-webhook-secret",
        "DJANGO_ALLOWED_HOSTS": "testserver,127.0.0.1,localhost",
        "TELEGRAM_BOT_TOKEN": "123456:TEST-token-for-the-fake-bot-api",
        "TELEGRAM_API_URL": os.environ.get("TEST_TELEGRAM_API_URL", "http://127.0.0.1:9"),
        "DATABASE_URL": os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
        "REDIS_URL": os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
        "CELERY_TASK_ALWAYS_EAGER": "1",
        "LOCAL_PROVIDER_ENABLED": "1",
        "LOCAL_PROVIDER_LATENCY_SECONDS": "0",
        "NANOBANANA_DATA_DIR": tempfile.mkdtemp(prefix="nanobanana-test-"),
        "LOG_LEVEL": "WARNING",
    }
)

from config.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Each pytest process gets its own test database, so parallel runs on one
# machine (several developers or agents) never drop each other's.
DATABASES["default"]["TEST"] = {"NAME": f"test_nanobanana_{os.getpid()}"}  # noqa: F405
os.makedirs(STATIC_ROOT, exist_ok=True)  # noqa: F405
