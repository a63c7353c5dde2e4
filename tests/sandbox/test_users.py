"""Simulated users: the updates they produce, buttons, payments."""

import asyncio
import json

import pytest

from nanobanana.sandbox import SimUser

USER = 10001


async def test_command_update_has_a_bot_command_entity(fake):
    update = await fake.send_command(USER, "start", "ref42")
    message = update["message"]
    assert message["text"] == "/start ref42"
    assert message["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
    assert message["from"] == {"id": USER, "is_bot": False, "first_name": "Alice", "language_code": "en"}
    assert message["chat"]["type"] == "private"
    assert isinstance(update["update_id"], int)


async def test_plain_text_has_no_entities(fake):
    update = await fake.send_text(USER, "hello")
    assert "entities" not in update["message"]


async def test_user_language_follows_the_simulated_user(fake):
    await fake.send_text(SimUser(id=20002, first_name="Иван", language_code="ru"), "привет")
    fake.user(20002, language_code="ru")
    update = await fake.send_text(20002, "ещё")
    assert update["message"]["from"]["language_code"] == "ru"


async def test_photo_from_user_can_be_downloaded_by_the_bot(fake, png):
    update = await fake.send_photo(USER, png, caption="edit this")
    largest = update["message"]["photo"][-1]
    assert update["message"]["caption"] == "edit this"
    file_info = (await fake.call_api("getFile", {"file_id": largest["file_id"]})).result
    assert fake.files[largest["file_id"]].content == png
    assert file_info["file_size"] == len(png)


async def test_album_shares_media_group_id_and_caption_goes_on_the_first(fake, png):
    updates = await fake.send_album(USER, [png, png, png], caption="three")
    group_ids = {update["message"]["media_group_id"] for update in updates}
    assert len(group_ids) == 1
    assert [update["message"].get("caption") for update in updates] == ["three", None, None]


async def test_sticker_and_voice_have_their_own_shapes(fake):
    sticker = (await fake.send_sticker(USER))["message"]["sticker"]
    voice = (await fake.send_voice(USER, duration=4))["message"]["voice"]
    assert sticker["type"] == "regular"
    assert sticker["emoji"]
    assert voice["duration"] == 4
    assert voice["mime_type"] == "audio/ogg"


async def test_press_button_sends_a_callback_query_with_the_message(fake):
    markup = {"inline_keyboard": [[{"text": "Go", "callback_data": "go:1"}]]}
    sent = (await fake.call_api("sendMessage", {"chat_id": USER, "text": "pick", "reply_markup": markup})).result
    update = await fake.press_button(USER, sent["message_id"], "go:1")
    query = update["callback_query"]
    assert query["data"] == "go:1"
    assert query["message"]["message_id"] == sent["message_id"]
    assert query["from"]["id"] == USER
    assert query["chat_instance"]


async def test_press_button_refuses_data_no_button_has(fake):
    sent = (await fake.call_api("sendMessage", {"chat_id": USER, "text": "no buttons"})).result
    with pytest.raises(LookupError):
        await fake.press_button(USER, sent["message_id"], "ghost")


async def invoice(fake, **overrides):
    params = {
        "chat_id": USER,
        "title": "100 tokens",
        "description": "Tokens for generations",
        "payload": "pack:100",
        "currency": "XTR",
        "prices": json.dumps([{"label": "100 tokens", "amount": 50}]),
        **overrides,
    }
    return await fake.call_api("sendInvoice", params)


async def test_stars_invoice_is_sent_with_its_total(fake):
    reply = await invoice(fake)
    assert reply.result["invoice"] == {
        "title": "100 tokens",
        "description": "Tokens for generations",
        "start_parameter": "",
        "currency": "XTR",
        "total_amount": 50,
    }


@pytest.mark.parametrize(
    "overrides",
    [
        {"title": "t" * 33},
        {"description": ""},
        {"payload": "p" * 129},
        {"provider_token": "123:TEST"},
        {"prices": json.dumps([{"label": "a", "amount": 1}, {"label": "b", "amount": 1}])},
    ],
)
async def test_bad_stars_invoices_are_refused(fake, overrides):
    reply = await invoice(fake, **overrides)
    assert reply.status == 400


async def test_paying_an_invoice_sends_successful_payment_after_an_ok_answer(fake):
    sent = (await invoice(fake)).result
    update = await fake.pay_invoice(USER, sent["message_id"])
    query = update["pre_checkout_query"]
    assert (query["currency"], query["total_amount"], query["invoice_payload"]) == ("XTR", 50, "pack:100")
    assert fake.last_message(USER).kind == "invoice"
    answer = await fake.call_api("answerPreCheckoutQuery", {"pre_checkout_query_id": query["id"], "ok": True})
    assert answer.result is True
    paid = fake.history(USER)[-1].data["successful_payment"]
    assert paid["invoice_payload"] == "pack:100"
    assert paid["telegram_payment_charge_id"]
    assert fake.pending[-1]["message"]["successful_payment"] == paid


async def test_rejected_pre_checkout_sends_no_payment(fake):
    sent = (await invoice(fake)).result
    query = (await fake.pay_invoice(USER, sent["message_id"]))["pre_checkout_query"]
    refused = await fake.call_api("answerPreCheckoutQuery", {"pre_checkout_query_id": query["id"], "ok": False})
    assert refused.json["description"] == "Bad Request: error_message is empty"
    params = {"pre_checkout_query_id": query["id"], "ok": False, "error_message": "Sold out"}
    assert (await fake.call_api("answerPreCheckoutQuery", params)).ok
    assert fake.pre_checkout_answer(query["id"]) == {"ok": False, "error_message": "Sold out"}
    assert not any("successful_payment" in m.data for m in fake.history(USER))


async def test_pre_checkout_answer_after_10_seconds_is_too_late():
    from nanobanana.sandbox import FakeTelegram
    from nanobanana.sandbox.testing import ManualClock

    clock = ManualClock()
    telegram = FakeTelegram(clock=clock)
    update = await telegram.send_pre_checkout(USER, payload="p", total_amount=5)
    clock.advance(10.5)
    reply = await telegram.call_api(
        "answerPreCheckoutQuery", {"pre_checkout_query_id": update["pre_checkout_query"]["id"], "ok": True}
    )
    assert reply.json["description"].startswith("Bad Request: query is too old")


async def test_wait_for_message_returns_the_next_bot_message(fake):
    await fake.call_api("sendMessage", {"chat_id": USER, "text": "before"})
    waiting = asyncio.create_task(fake.wait_for_message(USER, timeout=2))
    await asyncio.sleep(0.05)
    await fake.call_api("sendMessage", {"chat_id": USER, "text": "here"})
    assert (await waiting).text == "here"


async def test_wait_for_times_out_with_a_clear_error(fake):
    with pytest.raises(TimeoutError):
        await fake.wait_for(lambda: fake.last_message(USER), timeout=0.2)
