"""Serving: the threaded runner for sync tests, prefix mounting, and the ASGI dispatcher for the web process."""

import httpx
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from nanobanana.sandbox import FakeTelegram, RateLimits, create_app, run_sandbox
from nanobanana.sandbox.asgi import mount_sandbox

USER = 10001


def test_run_sandbox_serves_on_a_loopback_port_for_sync_code():
    fake = FakeTelegram(limits=RateLimits.off())
    with run_sandbox(fake) as base_url:
        assert base_url.startswith("http://127.0.0.1:")
        fake.sync.send_command(USER, "start")
        updates = httpx.get(f"{base_url}/bot{fake.bot.token}/getUpdates").json()["result"]
        assert updates[0]["message"]["text"] == "/start"
        reply = httpx.post(f"{base_url}/bot{fake.bot.token}/sendMessage", json={"chat_id": USER, "text": "hi"})
        assert reply.json()["ok"] is True
        message = fake.sync.wait_for(lambda: fake.last_message(USER), timeout=2)
        assert message.text == "hi"
    fake.close()


def test_sync_driver_works_without_a_server():
    fake = FakeTelegram()
    try:
        update = fake.sync.send_text(USER, "offline")
        assert update["message"]["text"] == "offline"
        assert fake.pending_update_count == 1
    finally:
        fake.close()


def test_run_sandbox_with_a_prefix():
    fake = FakeTelegram()
    with run_sandbox(fake, prefix="/sandbox") as base_url:
        assert base_url.endswith("/sandbox")
        assert httpx.get(f"{base_url}/bot{fake.bot.token}/getMe").json()["ok"] is True


async def test_app_works_when_mounted_under_a_prefix(fake):
    outer = Starlette(routes=[Mount("/sandbox", app=create_app(fake))])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=outer), base_url="http://web") as http:
        me = await http.get(f"/sandbox/bot{fake.bot.token}/getMe")
        assert me.json()["result"]["id"] == fake.bot.id
        stored = fake.store_file(b"data", folder="documents", extension=".txt")
        file = await http.get(f"/sandbox/file/bot{fake.bot.token}/{stored.file_path}")
        assert file.content == b"data"


async def test_mount_sandbox_routes_the_prefix_and_passes_everything_else(fake):
    async def home(request):
        return PlainTextResponse("django")

    web = mount_sandbox(Starlette(routes=[Route("/", home)]), fake, prefix="/sandbox")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://web") as http:
        assert (await http.get("/")).text == "django"
        assert (await http.get(f"/sandbox/bot{fake.bot.token}/getMe")).json()["ok"] is True
        redirect = await http.get("/sandbox")
        assert redirect.status_code == 307
        assert redirect.headers["location"] == "/sandbox/"
