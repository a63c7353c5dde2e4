"""The anchor: aiogram 3's own aiohttp webhook handler (`SimpleRequestHandler`)
with a router whose handlers do nothing, in N processes sharing one port
(SO_REUSEPORT), as many as the web process has workers.

    python -m bench.apps.aiogram_hook --port 8080 --workers 2 --secret S
"""

from __future__ import annotations

import argparse
import multiprocessing
import os

from aiogram import Bot, Dispatcher, Router
from aiogram.types import CallbackQuery, Message
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web

from bench.harness import BOT_TOKEN, WEBHOOK_PATH


def build() -> web.Application:
    router = Router(name="noop")

    @router.message()
    async def on_message(message: Message) -> None:
        return None

    @router.callback_query()
    async def on_callback(callback: CallbackQuery) -> None:
        return None

    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    bot = Bot(BOT_TOKEN)
    app = web.Application()
    SimpleRequestHandler(dispatcher=dispatcher, bot=bot, secret_token=os.environ["BENCH_SECRET"]).register(
        app, path=WEBHOOK_PATH
    )
    setup_application(app, dispatcher, bot=bot)
    return app


def serve(port: int) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    web.run_app(build(), host="127.0.0.1", port=port, reuse_port=True, access_log=None, print=None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--secret", required=True)
    args = parser.parse_args()
    os.environ["BENCH_SECRET"] = args.secret
    workers = [multiprocessing.Process(target=serve, args=(args.port,)) for _ in range(args.workers)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


if __name__ == "__main__":
    main()
