"""Settings for every process, read from the environment in this one place.

With no environment at all the system runs embedded on one machine: SQLite,
a filesystem Celery broker, a local media folder, the `local` provider and the
Telegram sandbox. Real deployments set DATABASE_URL, REDIS_URL,
TELEGRAM_BOT_TOKEN and friends; with DJANGO_DEBUG off, unsafe settings stop the
process at start-up with one message that names every problem.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_float, env_int, env_list, env_str, env_zone
from config.storage import default_storage_backend, storage_problems
from nanobanana.core.sentry import sentry_init

# Lets admin classes be written as ModelAdmin[Model] for the type checker.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("NANOBANANA_DATA_DIR", str(BASE_DIR / ".data")))

DEV_SECRET_KEY = "dev-only-insecure-secret-key-never-use-in-production"
DEV_WEBHOOK_SECRET = "sandbox-webhook-secret"
SANDBOX_BOT_TOKEN = "123456:SANDBOX-TOKEN-not-a-real-bot"

DATABASE_URL = env_str("DATABASE_URL")
# Embedded runs (no DATABASE_URL) default to debug; anything with a real
# database defaults to production behaviour, so forgetting the flag is safe.
DEBUG = env_bool("DJANGO_DEBUG", default=not DATABASE_URL)

PORT = env_int("PORT", 8000)
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", f"http://127.0.0.1:{PORT}").rstrip("/")

SECRET_KEY = env_str("DJANGO_SECRET_KEY", env_str("SECRET_KEY", DEV_SECRET_KEY))

RAILWAY_HEALTHCHECK_HOST = "healthcheck.railway.app"
_configured_hosts = env_list("DJANGO_ALLOWED_HOSTS")
_public_host = urlsplit(PUBLIC_BASE_URL).hostname
if env_str("PUBLIC_BASE_URL") and _public_host:
    _configured_hosts.append(_public_host)
if DEBUG:
    _configured_hosts += ["127.0.0.1", "localhost", "[::1]", "testserver"]
ALLOWED_HOSTS = [*sorted(set(_configured_hosts)), RAILWAY_HEALTHCHECK_HOST]
CSRF_TRUSTED_ORIGINS = [PUBLIC_BASE_URL] if PUBLIC_BASE_URL.startswith("https://") else []

# --- Telegram ---------------------------------------------------------------
TELEGRAM_BOT_TOKEN = env_str("TELEGRAM_BOT_TOKEN")
# Without a real token the bot talks to the built-in sandbox (a Bot API
# emulator served by the web process under /sandbox/).
SANDBOX_ENABLED = env_bool("SANDBOX_ENABLED", default=not TELEGRAM_BOT_TOKEN)
if not TELEGRAM_BOT_TOKEN and SANDBOX_ENABLED:
    TELEGRAM_BOT_TOKEN = SANDBOX_BOT_TOKEN
TELEGRAM_API_URL = env_str(
    "TELEGRAM_API_URL",
    f"http://127.0.0.1:{PORT}/sandbox" if SANDBOX_ENABLED else "https://api.telegram.org",
).rstrip("/")
# True when TELEGRAM_API_URL is a local Bot API server (`--local`), which
# lifts the 50 MB upload limit.
TELEGRAM_API_LOCAL = env_bool("TELEGRAM_API_LOCAL", default=False)
TG_WEBHOOK_SECRET = env_str("TG_WEBHOOK_SECRET", DEV_WEBHOOK_SECRET if DEBUG else "")
TELEGRAM_WEBHOOK_PATH = "/api/telegram/webhook"
TELEGRAM_WEBHOOK_MAX_BODY_BYTES = env_int("TELEGRAM_WEBHOOK_MAX_BODY_BYTES", 1_000_000)
# The webhook's group commit, per web process (bot/webhook_asgi.py, decision
# 005): WEBHOOK_THREADS threads do its database work, each holding at most one
# connection while it works; all but one write batches of updates, the last
# is kept for pre-checkout queries. A batch starts WEBHOOK_BATCH_MAX_WAIT_MS
# after its first update when a writer is free (at once with 0; meanwhile
# busy writers let batches grow anyway), or as soon as WEBHOOK_BATCH_MAX_SIZE
# updates wait (Telegram opens at most 100 connections). 10 ms: bigger
# batches cost less CPU per update (bench/analysis.md), for 10 ms of latency.
WEBHOOK_THREADS = env_int("WEBHOOK_THREADS", 3)
WEBHOOK_BATCH_MAX_SIZE = env_int("WEBHOOK_BATCH_MAX_SIZE", 100)
WEBHOOK_BATCH_MAX_WAIT_MS = env_float("WEBHOOK_BATCH_MAX_WAIT_MS", 10.0)
# Telegram's documented limits, enforced for every process by the sender.
# 29, not 30: sends leave on their slot plus scheduling jitter, and at exactly
# 30/s a late send and the one 30 slots after it land in the same second: the
# 31st in a second draws a 429 and a bot-wide pause (bench/sender.py measured
# 3 to 36 429s per 330 messages at 30/s, none at 29/s).
TELEGRAM_RATE_PER_SECOND = env_float("TELEGRAM_RATE_PER_SECOND", 29.0)
TELEGRAM_CHAT_INTERVAL_SECONDS = env_float("TELEGRAM_CHAT_INTERVAL_SECONDS", 1.0)
TELEGRAM_GROUP_INTERVAL_SECONDS = env_float("TELEGRAM_GROUP_INTERVAL_SECONDS", 3.0)
# A send that would wait longer than this in-process is re-queued instead.
TELEGRAM_MAX_INLINE_WAIT_SECONDS = env_float("TELEGRAM_MAX_INLINE_WAIT_SECONDS", 10.0)
# For tasks that send one message a run (`chat_turns()`: status and progress
# edits): the part of that wait its own chat may cause (sends ahead of it to
# the same chat): one private-chat interval, i.e. one send ahead (a group is
# allowed as many sends ahead, 3x this). A longer chat queue re-queues the
# send with a promised turn, so a busy chat does not keep worker slots asleep
# (docs/decisions/406-chat-turns-for-deferred-sends.md).
TELEGRAM_MAX_CHAT_INLINE_WAIT_SECONDS = env_float("TELEGRAM_MAX_CHAT_INLINE_WAIT_SECONDS", 1.0)
TELEGRAM_UPLOAD_LIMIT_BYTES = (2000 if TELEGRAM_API_LOCAL else 50) * 1024 * 1024
TELEGRAM_PHOTO_LIMIT_BYTES = 10 * 1024 * 1024

# --- Business rules ---------------------------------------------------------
WELCOME_BONUS_TOKENS = env_int("WELCOME_BONUS_TOKENS", 30)
PROMPT_MAX_LENGTH = env_int("PROMPT_MAX_LENGTH", 1000)
TOKENS_PER_USD = env_float("TOKENS_PER_USD", 100.0)
PRICE_MARKUP = env_float("PRICE_MARKUP", 2.0)
INBOX_REDRIVE_AFTER_SECONDS = env_int("INBOX_REDRIVE_AFTER_SECONDS", 60)
INBOX_MAX_ATTEMPTS = env_int("INBOX_MAX_ATTEMPTS", 5)
HEARTBEAT_MAX_AGE_SECONDS = env_int("HEARTBEAT_MAX_AGE_SECONDS", 180)
INBOX_BACKLOG_LIMIT = env_int("INBOX_BACKLOG_LIMIT", 100)
# The bot's time zone. Telegram tells a bot nothing about a person's zone, so
# the daily bonus's day turns at midnight here and the times the bot shows
# (the history) are in it, with its abbreviation ("16:57 MSK"). BONUS_TIMEZONE
# is its earlier name, for the bonus day only, still read.
BOT_TIME_ZONE = env_zone("BOT_TIME_ZONE", env_zone("BONUS_TIMEZONE", "Europe/Moscow"))
# Daily bonus: BASE tokens on the first day of a streak, STEP more for each
# further consecutive day, never more than MAX. The bonus day starts at
# midnight in BOT_TIME_ZONE (docs/decisions/404-bonuses-promo-referrals.md).
DAILY_BONUS_BASE_TOKENS = env_int("DAILY_BONUS_BASE_TOKENS", 3)
DAILY_BONUS_STREAK_STEP = env_int("DAILY_BONUS_STREAK_STEP", 1)
DAILY_BONUS_MAX_TOKENS = env_int("DAILY_BONUS_MAX_TOKENS", 10)
# Referral rewards, paid once on the invited user's first purchase.
REFERRAL_REFERRER_TOKENS = env_int("REFERRAL_REFERRER_TOKENS", 50)
REFERRAL_REFERRED_TOKENS = env_int("REFERRAL_REFERRED_TOKENS", 25)

# --- Payments ---------------------------------------------------------------
# lava.top card payments (https://gate.lava.top/docs). LAVA_API_KEY signs our
# calls to lava.top; LAVA_WEBHOOK_API_KEY is the key lava.top sends to our
# webhook in X-Api-Key ("your service's API key" in its webhook settings).
# Without LAVA_API_KEY the card button is not shown.
LAVA_API_KEY = env_str("LAVA_API_KEY")
LAVA_WEBHOOK_API_KEY = env_str("LAVA_WEBHOOK_API_KEY")
LAVA_API_URL = env_str("LAVA_API_URL", "https://gate.lava.top").rstrip("/")
LAVA_TIMEOUT_SECONDS = env_float("LAVA_TIMEOUT_SECONDS", 15.0)
# lava.top requires a buyer e-mail; Telegram gives us none, so invoices carry
# tg<telegram id>@<this domain> unless the operator configures a real mailbox.
LAVA_BUYER_EMAIL_DOMAIN = env_str("LAVA_BUYER_EMAIL_DOMAIN", "users.nanobanana.invalid")
LAVA_WEBHOOK_PATH = "/api/payments/lava/webhook"
LAVA_WEBHOOK_MAX_BODY_BYTES = env_int("LAVA_WEBHOOK_MAX_BODY_BYTES", 100_000)
# The ops chat that hears about reconciliation mismatches (a Telegram chat id).
OPS_CHAT_ID = env_str("OPS_CHAT_ID")

# --- Local provider (offline image generator) -------------------------------
# The offline generator is for development, tests and benchmarks: off in
# production unless asked for, so no one pays tokens for a placeholder.
LOCAL_PROVIDER_ENABLED = env_bool("LOCAL_PROVIDER_ENABLED", default=DEBUG)
LOCAL_PROVIDER_LATENCY_SECONDS = env_float("LOCAL_PROVIDER_LATENCY_SECONDS", 2.0)
LOCAL_PROVIDER_FAILURE_RATE = env_float("LOCAL_PROVIDER_FAILURE_RATE", 0.0)

# --- Circuit breaker per model (decision 506) --------------------------------
BREAKER_FAILURE_THRESHOLD = env_int("BREAKER_FAILURE_THRESHOLD", 5)
BREAKER_COOLDOWN_SECONDS = env_int("BREAKER_COOLDOWN_SECONDS", 120)
BREAKER_PROBE_TIMEOUT_SECONDS = env_int("BREAKER_PROBE_TIMEOUT_SECONDS", 1800)

# --- Release and error reporting -------------------------------------------


def _git_sha(root: Path = BASE_DIR) -> str:
    """Read the checked-out commit without running git (images have no git).

    Handles a plain clone (`.git` is a folder) and a worktree (`.git` is a
    file naming its git dir, whose `commondir` holds the shared refs)."""
    try:
        git = root / ".git"
        if git.is_file():
            git = (root / git.read_text().strip().removeprefix("gitdir:").strip()).resolve()
        common = (git / (git / "commondir").read_text().strip()).resolve() if (git / "commondir").exists() else git
        ref = (git / "HEAD").read_text().strip()
        if not ref.startswith("ref: "):
            return ref
        name = ref[5:]
        for folder in (git, common):
            if (folder / name).exists():
                return (folder / name).read_text().strip()
        for line in (common / "packed-refs").read_text().splitlines():
            if line.endswith(" " + name):
                return line.split()[0]
    except OSError:
        pass
    return "unknown"


RELEASE_VERSION = env_str("RELEASE", env_str("RAILWAY_GIT_COMMIT_SHA")) or _git_sha()
SENTRY_DSN = env_str("SENTRY_DSN")
SENTRY_ENVIRONMENT = env_str("SENTRY_ENVIRONMENT", "development" if DEBUG else "production")
SENTRY_TRACES_SAMPLE_RATE = env_float("SENTRY_TRACES_SAMPLE_RATE", 0.0)

# --- Django -----------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "nanobanana.core",
    "nanobanana.accounts",
    "nanobanana.billing",
    "nanobanana.catalog",
    "nanobanana.generation",
    "nanobanana.media",
    "nanobanana.bot",
    "nanobanana.ops",
    "nanobanana.payments",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]
ASGI_APPLICATION = "config.asgi.application"

# The web process serves Django's sync views under ASGI, where every request
# runs in its own thread and a persistent connection is per thread: under load
# that is one Postgres connection per in-flight request (100 webhook
# connections exhausted max_connections=100). `make web` sets
# DATABASE_POOL_MAX_SIZE, which puts a bounded psycopg pool in front instead
# (connections are borrowed per request and returned; persistent per-thread
# connections are off). Celery workers keep persistent connections: one
# thread per process. See docs/benchmarks.md.
DATABASE_POOL_MAX_SIZE = env_int("DATABASE_POOL_MAX_SIZE", 0)
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL or f"sqlite:///{DATA_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0 if not DATABASE_URL or DATABASE_POOL_MAX_SIZE else 60),
        conn_health_checks=bool(DATABASE_URL),
    )
}
if DATABASE_POOL_MAX_SIZE and DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": DATABASE_POOL_MAX_SIZE,
        # A request waits this long for a free connection, then gets 503.
        "timeout": env_float("DATABASE_POOL_TIMEOUT_SECONDS", 2.0),
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes share the file: wait for locks instead of failing,
    # and take the write lock at BEGIN so transactions cannot deadlock.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(DATA_DIR / "media")))
MEDIA_URL = "/media/"
STORAGES = {
    # The local folder, or Supabase Storage over S3 when SUPABASE_* is set.
    "default": default_storage_backend(os.environ),
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
# Signed media links given to users when Telegram refuses a file.
MEDIA_LINK_MAX_AGE_SECONDS = env_int("MEDIA_LINK_MAX_AGE_SECONDS", 7 * 24 * 3600)

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG

# --- Redis and Celery -------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
BROKER_DIR = DATA_DIR / "broker"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL or "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # kombu's filesystem transport: a real broker between processes with no
    # server to run. It needs its folders to exist before anyone connects.
    for _folder in ("queue", "control"):
        os.makedirs(BROKER_DIR / _folder, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
        "polling_interval": 0.1,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
if CELERY_BROKER_URL.startswith("redis://"):
    # kombu's Redis transport, fixed so that losing Redis while tasks are in
    # flight does not stop the worker (nanobanana/core/broker.py, decision
    # 006). Not for rediss://: naming a transport would drop kombu's TLS
    # default for that scheme.
    CELERY_BROKER_TRANSPORT = "nanobanana.core.broker:RedisTransport"
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fixup closes every database connection before and after each
# task unless this is set (celery/fixups/django.py), so each task paid a new
# Postgres connection: a backend process forked per task, about a fifth of a
# worker's time in the video benchmark. With it the fixup closes them only
# every this many tasks, and config/celery.py applies Django's own rules
# between tasks instead (CONN_MAX_AGE, health checks), as for a web request.
CELERY_DB_REUSE_MAX = 1000
CELERY_TASK_DEFAULT_QUEUE = "updates"
CELERY_TASK_ROUTES = {
    "bot.*": {"queue": "updates"},
    "generation.*": {"queue": "generation"},
    # Status and progress edits are the lowest priority (Redis: 0 is the
    # highest, 9 the lowest; the worker takes a message of a lower priority
    # only when no queue holds one of a higher): under a backlog, starts,
    # completions and deliveries go first, and an edit that comes late is
    # superseded by the result anyway.
    "delivery.status": {"queue": "delivery", "priority": 9},
    "delivery.*": {"queue": "delivery"},
    "ops.*": {"queue": "updates"},
    "payments.*": {"queue": "updates"},
    "billing.*": {"queue": "updates"},
}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BEAT_SCHEDULER = "nanobanana.ops.scheduler:HeartbeatScheduler"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# aiogram FSM state: Redis when we have it, the database otherwise.
BOT_FSM_STORAGE = "redis" if REDIS_URL else "database"

# --- Logging: JSON lines on stdout with a `level` field ---------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "nanobanana.core.logging.RedactSecretsFilter"}},
    "formatters": {"json": {"()": "nanobanana.core.logging.JsonFormatter"}},
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "json",
            "filters": ["redact"],
        }
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        "aiogram.event": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "django.db.backends": {"level": "WARNING"},
        # Replaces Django's default console handler, which would print twice.
        "django": {"handlers": ["stdout"], "level": "INFO", "propagate": False},
    },
}


def production_problems() -> list[str]:
    """Every reason these settings are unsafe outside debug mode."""
    problems: list[str] = []
    if SECRET_KEY == DEV_SECRET_KEY or len(SECRET_KEY) < 32:
        problems.append("DJANGO_SECRET_KEY is unset, the development default, or shorter than 32 characters")
    if not TG_WEBHOOK_SECRET:
        problems.append("TG_WEBHOOK_SECRET is unset (the webhook would accept anyone)")
    if not [host for host in ALLOWED_HOSTS if host != RAILWAY_HEALTHCHECK_HOST]:
        problems.append("ALLOWED_HOSTS is empty (set DJANGO_ALLOWED_HOSTS or PUBLIC_BASE_URL)")
    if SANDBOX_ENABLED:
        problems.append("TELEGRAM_BOT_TOKEN is unset (the sandbox is for development only)")
    problems += storage_problems(os.environ)
    if LAVA_API_KEY and not LAVA_WEBHOOK_API_KEY:
        problems.append("LAVA_API_KEY is set but LAVA_WEBHOOK_API_KEY is not (card payments would never be credited)")
    return problems


if not DEBUG:
    _problems = production_problems()
    if _problems:
        raise ImproperlyConfigured("Refusing to start with unsafe settings: " + "; ".join(_problems) + ".")

os.makedirs(DATA_DIR, exist_ok=True)

sentry_init(
    dsn=SENTRY_DSN,
    environment=SENTRY_ENVIRONMENT,
    release=RELEASE_VERSION,
    traces_sample_rate=SENTRY_TRACES_SAMPLE_RATE,
)
