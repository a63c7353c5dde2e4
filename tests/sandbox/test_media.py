"""Files: uploads, photo sizes, file_id re-use, downloads, media groups and size limits."""

import json

from nanobanana.sandbox import FakeTelegram, Upload
from nanobanana.sandbox.media import MB
from nanobanana.sandbox.params import Params

USER = 10001


async def test_photo_upload_gives_a_thumbnail_and_the_full_size(client, api, png):
    response = await client.post(
        f"{api}/sendPhoto", data={"chat_id": str(USER), "caption": "look"}, files={"photo": ("a.png", png)}
    )
    result = response.json()["result"]
    assert result["caption"] == "look"
    assert [(size["width"], size["height"]) for size in result["photo"]] == [(320, 240), (640, 480)]
    assert all(size["file_id"] and size["file_unique_id"] and size["file_size"] for size in result["photo"])


async def test_uploaded_document_downloads_byte_for_byte(client, api, fake):
    content = bytes(range(256)) * 10
    sent = await client.post(
        f"{api}/sendDocument", data={"chat_id": str(USER)}, files={"document": ("report.pdf", content)}
    )
    document = sent.json()["result"]["document"]
    assert document["file_name"] == "report.pdf"
    assert document["mime_type"] == "application/pdf"
    assert document["file_size"] == len(content)
    file_info = (await client.post(f"{api}/getFile", data={"file_id": document["file_id"]})).json()["result"]
    assert file_info["file_path"].endswith(".pdf")
    download = await client.get(f"/file/bot{fake.bot.token}/{file_info['file_path']}")
    assert download.status_code == 200
    assert download.content == content


async def test_file_download_needs_the_token(client, fake):
    stored = fake.store_file(b"x", folder="documents", extension=".txt")
    assert (await client.get(f"/file/botWRONG/{stored.file_path}")).status_code == 401
    assert (await client.get(f"/file/bot{fake.bot.token}/documents/none.txt")).status_code == 404


async def test_file_id_is_reused_without_upload(fake, png):
    first = await fake.call_api("sendPhoto", Params({"chat_id": USER}, {"photo": Upload("a.png", png)}))
    file_id = first.result["photo"][-1]["file_id"]
    second = await fake.call_api("sendPhoto", {"chat_id": USER, "photo": file_id})
    assert second.result["photo"] == first.result["photo"]


async def test_unknown_file_id_and_urls_are_refused(fake):
    unknown = await fake.call_api("sendDocument", {"chat_id": USER, "document": "nope"})
    assert unknown.json["description"] == "Bad Request: wrong file identifier/HTTP URL specified"
    url = await fake.call_api("sendDocument", {"chat_id": USER, "document": "https://example.com/a.pdf"})
    assert url.status == 400
    assert "no internet" in url.json["description"]


async def test_not_an_image_as_photo_is_refused(fake):
    reply = await fake.call_api("sendPhoto", Params({"chat_id": USER}, {"photo": Upload("a.jpg", b"not an image")}))
    assert reply.json["description"] == "Bad Request: IMAGE_PROCESS_FAILED"


async def test_get_file_of_unknown_id_is_invalid(fake):
    reply = await fake.call_api("getFile", {"file_id": "missing"})
    assert reply.json == {"ok": False, "error_code": 400, "description": "Bad Request: invalid file_id"}


async def test_cloud_limits_refuse_big_uploads_and_downloads(fake):
    big = Upload("big.bin", b"\0" * (50 * MB + 1))
    reply = await fake.call_api("sendDocument", Params({"chat_id": USER}, {"document": big}))
    assert reply.status == 413
    assert reply.json["description"] == "Request Entity Too Large"
    stored = fake.store_file(b"\0" * (20 * MB + 1), folder="documents", extension=".bin")
    too_big = await fake.call_api("getFile", {"file_id": stored.file_id})
    assert too_big.json["description"] == "Bad Request: file is too big"


async def test_photo_limit_is_10_mb(fake):
    big = Upload("big.jpg", b"\0" * (10 * MB + 1))
    reply = await fake.call_api("sendPhoto", Params({"chat_id": USER}, {"photo": big}))
    assert reply.status == 413


async def test_local_mode_allows_big_files():
    telegram = FakeTelegram(local_mode=True)
    telegram.user(USER)
    big = Upload("big.bin", b"\0" * (50 * MB + 1))
    reply = await telegram.call_api("sendDocument", Params({"chat_id": USER}, {"document": big}))
    assert reply.ok
    assert (await telegram.call_api("getFile", {"file_id": reply.result["document"]["file_id"]})).ok


async def test_media_group_sends_one_message_per_item_with_attach_parts(client, api, fake, png):
    media = [
        {"type": "photo", "media": "attach://one", "caption": "first"},
        {"type": "photo", "media": "attach://two"},
    ]
    response = await client.post(
        f"{api}/sendMediaGroup",
        data={"chat_id": str(USER), "media": json.dumps(media)},
        files={"one": ("1.png", png), "two": ("2.png", png)},
    )
    result = response.json()["result"]
    assert len(result) == 2
    assert result[0]["caption"] == "first"
    assert "caption" not in result[1]
    assert result[0]["media_group_id"] == result[1]["media_group_id"]
    assert result[1]["message_id"] == result[0]["message_id"] + 1
    assert len(fake.messages_to(USER)) == 2


async def test_media_group_needs_2_to_10_items(fake, png):
    one = [{"type": "photo", "media": "attach://one"}]
    reply = await fake.call_api("sendMediaGroup", Params({"chat_id": USER, "media": one}, {"one": Upload("1", png)}))
    assert reply.status == 400
    assert "2-10" in reply.json["description"]


async def test_media_group_refuses_a_missing_attachment(fake):
    media = [{"type": "photo", "media": "attach://a"}, {"type": "photo", "media": "attach://b"}]
    reply = await fake.call_api("sendMediaGroup", {"chat_id": USER, "media": media})
    assert reply.status == 400
    assert "attach://a" in reply.json["description"]


async def test_video_keeps_its_dimensions(fake):
    params = Params(
        {"chat_id": USER, "width": "1280", "height": "720", "duration": "5"}, {"video": Upload("v.mp4", b"v")}
    )
    video = (await fake.call_api("sendVideo", params)).result["video"]
    assert (video["width"], video["height"], video["duration"]) == (1280, 720, 5)
    assert video["mime_type"] == "video/mp4"


async def test_caption_over_1024_chars_is_refused(fake, png):
    params = Params({"chat_id": USER, "caption": "c" * 1025}, {"photo": Upload("a.png", png)})
    reply = await fake.call_api("sendPhoto", params)
    assert reply.json["description"] == "Bad Request: message caption is too long"
