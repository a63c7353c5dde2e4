"""Bot API methods over HTTP: shapes of answers, encodings, and Telegram's validation errors."""

import json

import pytest

from nanobanana.sandbox import FakeTelegram

USER = 10001


def keyboard(*data: str) -> dict:
    return {"inline_keyboard": [[{"text": item, "callback_data": item} for item in data]]}


async def test_get_me_describes_the_bot(client, api, fake):
    response = await client.get(f"{api}/getMe")
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True
    assert body["result"]["id"] == fake.bot.id
    assert body["result"]["is_bot"] is True
    assert body["result"]["username"] == fake.bot.username


async def test_wrong_token_is_unauthorized(client):
    response = await client.post("/bot123:wrong/getMe")
    assert response.status_code == 401
    assert response.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}


async def test_unknown_method_is_not_found(client, api):
    response = await client.post(f"{api}/sendTelepathy")
    assert response.status_code == 404
    assert response.json() == {"ok": False, "error_code": 404, "description": "Not Found: method not found"}


async def test_method_names_are_case_insensitive(client, api):
    response = await client.get(f"{api}/getme")
    assert response.json()["ok"] is True


@pytest.mark.parametrize("encoding", ["query", "json", "form", "multipart"])
async def test_send_message_accepts_every_request_encoding(client, api, fake, encoding):
    params = {"chat_id": str(USER), "text": "hello", "reply_markup": json.dumps(keyboard("a"))}
    if encoding == "query":
        response = await client.get(f"{api}/sendMessage", params=params)
    elif encoding == "json":
        response = await client.post(
            f"{api}/sendMessage", json={"chat_id": USER, "text": "hello", "reply_markup": keyboard("a")}
        )
    elif encoding == "form":
        response = await client.post(f"{api}/sendMessage", data=params)
    else:
        response = await client.post(f"{api}/sendMessage", data=params, files={"unused": ("x.bin", b"x")})
    body = response.json()
    assert body["ok"] is True, body
    result = body["result"]
    assert result["text"] == "hello"
    assert result["chat"] == {"id": USER, "type": "private", "first_name": "Alice"}
    assert result["from"]["is_bot"] is True
    assert result["reply_markup"] == keyboard("a")
    assert isinstance(result["date"], int)
    assert fake.last_message(USER).text == "hello"


async def test_message_ids_increase_per_chat(fake):
    first = await fake.call_api("sendMessage", {"chat_id": USER, "text": "1"})
    second = await fake.call_api("sendMessage", {"chat_id": USER, "text": "2"})
    assert second.result["message_id"] == first.result["message_id"] + 1


async def test_html_parse_mode_becomes_entities(fake):
    reply = await fake.call_api(
        "sendMessage",
        {"chat_id": USER, "text": 'Hi <b>bold</b> &amp; <a href="https://x.org">link</a>', "parse_mode": "HTML"},
    )
    result = reply.result
    assert result["text"] == "Hi bold & link"
    assert result["entities"] == [
        {"type": "bold", "offset": 3, "length": 4},
        {"type": "text_link", "offset": 10, "length": 4, "url": "https://x.org"},
    ]


async def test_entity_offsets_count_utf16_units(fake):
    reply = await fake.call_api("sendMessage", {"chat_id": USER, "text": "🍌 <i>x</i>", "parse_mode": "HTML"})
    assert reply.result["entities"] == [{"type": "italic", "offset": 3, "length": 1}]


async def test_commands_links_and_mentions_get_entities_like_telegram_adds(fake):
    reply = await fake.call_api(
        "sendMessage",
        {
            "chat_id": USER,
            "text": "Try /help, see https://x.org/a. Ask @support_team; <code>/raw</code>",
            "parse_mode": "HTML",
        },
    )
    assert reply.result["entities"] == [
        {"type": "bot_command", "offset": 4, "length": 5},
        {"type": "url", "offset": 15, "length": 15},
        {"type": "mention", "offset": 36, "length": 13},
        {"type": "code", "offset": 51, "length": 4},
    ]


async def test_unsupported_html_tag_is_refused(fake):
    reply = await fake.call_api("sendMessage", {"chat_id": USER, "text": "<div>x</div>", "parse_mode": "HTML"})
    assert reply.status == 400
    assert reply.json["description"].startswith("Bad Request: can't parse entities: Unsupported start tag")


@pytest.mark.parametrize(
    ("text", "description"),
    [("", "Bad Request: message text is empty"), ("x" * 4097, "Bad Request: message is too long")],
)
async def test_send_message_text_length_is_checked(fake, text, description):
    reply = await fake.call_api("sendMessage", {"chat_id": USER, "text": text})
    assert reply.status == 400
    assert reply.json == {"ok": False, "error_code": 400, "description": description}


async def test_send_message_of_4096_chars_is_accepted(fake):
    reply = await fake.call_api("sendMessage", {"chat_id": USER, "text": "x" * 4096})
    assert reply.ok


async def test_unknown_chat_is_not_found(fake):
    reply = await fake.call_api("sendMessage", {"chat_id": 999, "text": "hi"})
    assert reply.json["description"] == "Bad Request: chat not found"


async def test_auto_create_chats_accepts_any_chat():
    telegram = FakeTelegram(auto_create_chats=True)
    reply = await telegram.call_api("sendMessage", {"chat_id": 999, "text": "hi"})
    assert reply.ok


@pytest.mark.parametrize(
    ("button", "description"),
    [
        ({"text": "x", "callback_data": "y" * 65}, "Bad Request: BUTTON_DATA_INVALID"),
        ({"text": "x", "callback_data": ""}, "Bad Request: BUTTON_DATA_INVALID"),
        ({"text": "x", "url": "ftp://x"}, "Bad Request: BUTTON_URL_INVALID"),
    ],
)
async def test_bad_inline_buttons_are_refused(fake, button, description):
    markup = json.dumps({"inline_keyboard": [[button]]})
    reply = await fake.call_api("sendMessage", {"chat_id": USER, "text": "hi", "reply_markup": markup})
    assert reply.json["description"] == description


async def test_callback_data_of_64_bytes_is_accepted(fake):
    reply = await fake.call_api("sendMessage", {"chat_id": USER, "text": "hi", "reply_markup": keyboard("é" * 32)})
    assert reply.ok


async def test_edit_message_text_changes_the_message_in_place(fake):
    sent = (await fake.call_api("sendMessage", {"chat_id": USER, "text": "v1", "reply_markup": keyboard("a")})).result
    reply = await fake.call_api("editMessageText", {"chat_id": USER, "message_id": sent["message_id"], "text": "v2"})
    assert reply.ok
    assert reply.result["text"] == "v2"
    assert "edit_date" in reply.result
    assert "reply_markup" not in reply.result  # an edit without markup removes the keyboard, as in Telegram
    stored = fake.last_message(USER)
    assert stored.text == "v2"
    assert [old["text"] for old in stored.history] == ["v1"]


async def test_edit_that_changes_nothing_is_not_modified(fake):
    sent = (await fake.call_api("sendMessage", {"chat_id": USER, "text": "same"})).result
    reply = await fake.call_api("editMessageText", {"chat_id": USER, "message_id": sent["message_id"], "text": "same"})
    assert reply.status == 400
    assert reply.json["description"].startswith("Bad Request: message is not modified")


async def test_edit_of_missing_message_is_not_found(fake):
    reply = await fake.call_api("editMessageText", {"chat_id": USER, "message_id": 404, "text": "x"})
    assert reply.json["description"] == "Bad Request: message to edit not found"


async def test_user_messages_cannot_be_edited_by_the_bot(fake):
    update = await fake.send_text(USER, "mine")
    reply = await fake.call_api(
        "editMessageText", {"chat_id": USER, "message_id": update["message"]["message_id"], "text": "x"}
    )
    assert reply.json["description"] == "Bad Request: message can't be edited"


async def test_edit_reply_markup_replaces_the_keyboard(fake):
    sent = (await fake.call_api("sendMessage", {"chat_id": USER, "text": "t", "reply_markup": keyboard("a")})).result
    params = {"chat_id": USER, "message_id": sent["message_id"], "reply_markup": keyboard("b")}
    assert (await fake.call_api("editMessageReplyMarkup", params)).ok
    assert fake.last_message(USER).callback_data == ["b"]
    again = await fake.call_api("editMessageReplyMarkup", params)
    assert again.json["description"].startswith("Bad Request: message is not modified")


async def test_edit_caption_of_text_message_is_refused(fake):
    sent = (await fake.call_api("sendMessage", {"chat_id": USER, "text": "t"})).result
    reply = await fake.call_api(
        "editMessageCaption", {"chat_id": USER, "message_id": sent["message_id"], "caption": "c"}
    )
    assert reply.json["description"] == "Bad Request: there is no caption in the message to edit"


async def test_delete_message_hides_it_and_second_delete_fails(fake):
    sent = (await fake.call_api("sendMessage", {"chat_id": USER, "text": "bye"})).result
    params = {"chat_id": USER, "message_id": sent["message_id"]}
    assert (await fake.call_api("deleteMessage", params)).result is True
    assert fake.messages_to(USER) == []
    again = await fake.call_api("deleteMessage", params)
    assert again.json["description"] == "Bad Request: message to delete not found"


async def test_answer_callback_query_records_the_answer_once(fake):
    sent = (await fake.call_api("sendMessage", {"chat_id": USER, "text": "t", "reply_markup": keyboard("go")})).result
    update = await fake.press_button(USER, sent["message_id"], "go")
    query_id = update["callback_query"]["id"]
    too_long = await fake.call_api("answerCallbackQuery", {"callback_query_id": query_id, "text": "x" * 201})
    assert too_long.json["description"] == "Bad Request: MESSAGE_TOO_LONG"
    reply = await fake.call_api("answerCallbackQuery", {"callback_query_id": query_id, "text": "Done"})
    assert reply.result is True
    assert fake.callback_answer(query_id) == {"text": "Done", "show_alert": False, "url": None}
    twice = await fake.call_api("answerCallbackQuery", {"callback_query_id": query_id})
    assert twice.json["description"].startswith("Bad Request: query is too old")


async def test_set_my_commands_stores_and_validates(fake):
    commands = [{"command": "start", "description": "Start"}, {"command": "help", "description": "Help"}]
    assert (await fake.call_api("setMyCommands", {"commands": json.dumps(commands)})).ok
    assert (await fake.call_api("getMyCommands")).result == commands
    bad = await fake.call_api("setMyCommands", {"commands": [{"command": "Bad-Command", "description": "x"}]})
    assert bad.json["description"] == "Bad Request: BOT_COMMAND_INVALID"


async def test_send_chat_action_is_shown_for_a_while(fake):
    assert (await fake.call_api("sendChatAction", {"chat_id": USER, "action": "typing"})).result is True
    assert fake.chat_action(USER) == "typing"
    bad = await fake.call_api("sendChatAction", {"chat_id": USER, "action": "dancing"})
    assert bad.status == 400


async def test_call_log_records_method_params_and_errors(fake):
    await fake.call_api("sendMessage", {"chat_id": USER, "text": "logged"})
    await fake.call_api("sendMessage", {"chat_id": USER, "text": ""})
    calls = fake.calls("sendMessage")
    assert [call.ok for call in calls] == [True, False]
    assert calls[0].params["text"] == "logged"
    assert calls[0].result["text"] == "logged"
    assert calls[1].status == 400
    assert calls[1].error == "Bad Request: message text is empty"
