"""The chat page and its JSON API: what a person at the browser can do."""

import asyncio

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from nanobanana.sandbox import create_app
from nanobanana.sandbox.ui.routes import UI_USER

PERSON = UI_USER.id


@pytest.fixture
async def page(fake):
    app = create_app(fake)  # registers the page's user
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox") as http:
        yield http
    await fake.aclose()


async def test_page_is_one_self_contained_html_file(page, fake):
    response = await page.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert '<base href="/">' in html
    assert "{{" not in html
    assert "/*{{" not in html
    assert "function formatted" in html  # the JS is inlined
    assert ".bubble" in html  # the CSS is inlined
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "").replace(
        "xmlns='http://www.w3.org/2000/svg'", ""
    )  # no CDN, no external resources
    assert fake.bot.token not in html


async def test_page_base_follows_the_mount_prefix(fake):
    outer = Starlette(routes=[Mount("/sandbox", app=create_app(fake))])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=outer), base_url="http://web") as http:
        response = await http.get("/sandbox/")
        state = await http.get("/sandbox/ui/api/state")
    assert '<base href="/sandbox/">' in response.text
    assert state.json()["user"]["id"] == PERSON


async def test_sending_text_queues_an_update_and_shows_in_events(page, fake):
    assert (await page.post("/ui/api/send", json={"text": "/start"})).json() == {"ok": True}
    update = fake.pending[-1]
    assert update["message"]["text"] == "/start"
    assert update["message"]["from"]["id"] == PERSON
    events = (await page.get("/ui/api/events", params={"after": 0})).json()
    assert [(m["text"], m["outgoing"]) for m in events["messages"]] == [("/start", False)]
    assert events["status"]["pending"] == 1
    assert fake.bot.token not in str(events)


async def test_empty_text_is_refused(page):
    response = await page.post("/ui/api/send", json={"text": "  "})
    assert response.status_code == 400


async def test_events_long_poll_until_the_bot_answers(page, fake):
    seq = (await page.get("/ui/api/state")).json()["seq"]
    waiting = asyncio.create_task(page.get("/ui/api/events", params={"after": seq, "wait": 5}))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    markup = {"inline_keyboard": [[{"text": "Go", "callback_data": "go"}]]}
    await fake.call_api(
        "sendMessage", {"chat_id": PERSON, "text": "<b>Hi</b>", "parse_mode": "HTML", "reply_markup": markup}
    )
    events = (await asyncio.wait_for(waiting, 3)).json()
    [message] = events["messages"]
    assert message["text"] == "Hi"
    assert message["entities"] == [{"type": "bold", "offset": 0, "length": 2}]
    assert message["buttons"] == [[{"text": "Go", "callback_data": "go"}]]
    assert message["outgoing"] is True


async def test_edits_and_deletes_reach_the_page(page, fake):
    sent = (await fake.call_api("sendMessage", {"chat_id": PERSON, "text": "v1"})).result
    seq = (await page.get("/ui/api/state")).json()["seq"]
    await fake.call_api("editMessageText", {"chat_id": PERSON, "message_id": sent["message_id"], "text": "v2"})
    edited = (await page.get("/ui/api/events", params={"after": seq})).json()["messages"]
    assert [(m["text"], m["edited"]) for m in edited] == [("v2", True)]
    await fake.call_api("deleteMessage", {"chat_id": PERSON, "message_id": sent["message_id"]})
    deleted = (await page.get("/ui/api/events", params={"after": seq})).json()["messages"]
    assert deleted[-1]["deleted"] is True


async def test_pressing_a_button_sends_a_callback_query_and_the_answer_is_a_notice(page, fake):
    markup = {"inline_keyboard": [[{"text": "Go", "callback_data": "go"}]]}
    sent = (await fake.call_api("sendMessage", {"chat_id": PERSON, "text": "t", "reply_markup": markup})).result
    response = await page.post("/ui/api/press", json={"message_id": sent["message_id"], "data": "go"})
    assert response.json() == {"ok": True}
    query = fake.pending[-1]["callback_query"]
    seq = (await page.get("/ui/api/state")).json()["seq"]
    await fake.call_api("answerCallbackQuery", {"callback_query_id": query["id"], "text": "Saved", "show_alert": True})
    events = (await page.get("/ui/api/events", params={"after": seq})).json()
    assert events["notices"] == [{"text": "Saved", "alert": True}]
    missing = await page.post("/ui/api/press", json={"message_id": sent["message_id"], "data": "nope"})
    assert missing.status_code == 400


async def test_uploading_several_photos_sends_an_album(page, fake, png):
    files = [("file00", ("a.png", png, "image/png")), ("file01", ("b.png", png, "image/png"))]
    response = await page.post("/ui/api/upload", files=files, data={"caption": "both"})
    assert response.json() == {"ok": True}
    messages = [update["message"] for update in fake.pending]
    assert len(messages) == 2
    assert messages[0]["media_group_id"] == messages[1]["media_group_id"]
    assert messages[0]["caption"] == "both"


async def test_uploading_a_non_image_sends_a_document(page, fake):
    response = await page.post("/ui/api/upload", files={"file00": ("notes.txt", b"hello", "text/plain")})
    assert response.json() == {"ok": True}
    document = fake.pending[-1]["message"]["document"]
    assert document["file_name"] == "notes.txt"
    assert fake.file_bytes(document["file_id"]) == b"hello"


async def test_language_switch_changes_the_users_language_code(page, fake):
    assert (await page.post("/ui/api/language", json={"language_code": "en"})).json()["language_code"] == "en"
    await page.post("/ui/api/send", json={"text": "hi"})
    assert fake.pending[-1]["message"]["from"]["language_code"] == "en"
    assert (await page.post("/ui/api/language", json={"language_code": "de"})).status_code == 400


async def test_reset_clears_the_chat_on_the_page(page, fake):
    await page.post("/ui/api/send", json={"text": "old"})
    seq = (await page.get("/ui/api/state")).json()["seq"]
    await page.post("/ui/api/reset")
    events = (await page.get("/ui/api/events", params={"after": seq})).json()
    assert events["reset"] is True
    assert events["messages"] == []
    assert fake.history(PERSON)[0].deleted


async def test_files_are_served_for_display_and_download(page, fake, png):
    sent = await fake.call_api(
        "sendDocument",
        {
            "chat_id": PERSON,
            "document": fake.store_file(
                png, folder="documents", extension=".png", mime_type="image/png", file_name="pic.png"
            ).file_id,
        },
    )
    document = sent.result["document"]
    shown = await page.get(f"/ui/files/{document['file_id']}")
    assert shown.content == png
    assert shown.headers["content-type"] == "image/png"
    download = await page.get(f"/ui/files/{document['file_id']}", params={"download": 1})
    assert download.headers["content-disposition"] == 'attachment; filename="pic.png"'
    assert (await page.get("/ui/files/missing")).status_code == 404


async def test_paying_an_invoice_from_the_page_starts_pre_checkout(page, fake):
    params = {
        "chat_id": PERSON,
        "title": "Tokens",
        "description": "d",
        "payload": "pack:1",
        "currency": "XTR",
        "prices": [{"label": "x", "amount": 5}],
    }
    invoice = (await fake.call_api("sendInvoice", params)).result
    assert (await page.post("/ui/api/pay", json={"message_id": invoice["message_id"]})).json() == {"ok": True}
    assert fake.pending[-1]["pre_checkout_query"]["invoice_payload"] == "pack:1"
