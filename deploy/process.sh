#!/bin/sh
# Start one NanoBanana process in the foreground: web | worker | beat | release.
#
# The Dockerfile, Railway, compose and the Makefile all start processes here.
# Each branch `exec`s, so the process replaces this shell and is the one the
# platform signals: on a deploy, Celery gets SIGTERM itself and runs its warm
# shutdown, uvicorn its graceful one. (Started under `make`, it would not:
# make does not pass SIGTERM on to the command it runs.)
set -eu

BIN="${VENV_BIN:-.venv/bin}"

case "${1:-}" in
  web)
    # DATABASE_POOL_MAX_SIZE: Postgres connections per web worker (config/settings.py).
    DATABASE_POOL_MAX_SIZE="${DATABASE_POOL_MAX_SIZE:-${WEB_DB_POOL:-10}}"
    export DATABASE_POOL_MAX_SIZE
    # uvloop and httptools named, not left to uvicorn's "auto": without them
    # (uvicorn[standard] gone from the lock) it would fall back to asyncio and
    # h11 in silence (both slower in pure Python); this way it fails to start.
    exec "$BIN/uvicorn" config.asgi:application --host 0.0.0.0 --port "${PORT:-8000}" \
      --workers "${WEB_CONCURRENCY:-2}" --loop uvloop --http httptools \
      --proxy-headers --forwarded-allow-ips='*' --no-access-log --lifespan auto
    ;;
  worker)
    exec "$BIN/celery" -A config worker -Q updates,generation,delivery --concurrency "${WORKER_CONCURRENCY:-3}" \
      --loglevel INFO --without-gossip --without-mingle
    ;;
  beat)
    exec "$BIN/celery" -A config beat --scheduler nanobanana.ops.scheduler:HeartbeatScheduler --loglevel INFO
    ;;
  release)
    "$BIN/python" manage.py migrate --noinput
    exec "$BIN/python" manage.py setup_defaults
    ;;
  *)
    echo "usage: deploy/process.sh web|worker|beat|release" >&2
    exit 64
    ;;
esac
