"""Video from text, video from a photo, and an image edit from an album, in
chat, against the local fakes of the vendors' APIs."""

from __future__ import annotations

import base64

import pytest

from nanobanana.accounts.models import TelegramUser
from nanobanana.billing.models import EntryKind
from nanobanana.billing.selectors import wallet_balance
from nanobanana.billing.services import wallet_credit
from nanobanana.bot.texts import Texts
from nanobanana.generation.models import DeliveryStatus, GenerationRequest, RequestStatus
from nanobanana.media import download as media_download
from nanobanana.providers import registry
from nanobanana.providers.gemini import GeminiProvider
from nanobanana.providers.kling import KlingProvider
from nanobanana.providers.runway import RunwayProvider
from tests.providers.fakes import kling as kling_fake
from tests.providers.fakes.base import PUBLIC_ADDRESS, httpx_client, sample_png
from tests.providers.fakes.gemini import FakeGemini
from tests.providers.fakes.kling import FakeKling
from tests.providers.fakes.runway import FakeRunway

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def vendors(monkeypatch):
    monkeypatch.setenv("KLING_ACCESS_KEY", kling_fake.ACCESS_KEY)
    monkeypatch.setenv("KLING_SECRET_KEY", kling_fake.SECRET_KEY)
    monkeypatch.setenv("GEMINI_API_KEY", "test-gemini-key")  # pragma: allowlist secret
    monkeypatch.setenv("RUNWAYML_API_SECRET", "key_test")  # pragma: allowlist secret
    monkeypatch.setattr(media_download, "resolver", lambda host: [PUBLIC_ADDRESS])
    fakes = {"kling": FakeKling(), "gemini": FakeGemini(), "runway": FakeRunway()}
    monkeypatch.setattr(
        registry,
        "PROVIDERS",
        {
            **registry.PROVIDERS,
            "kling": lambda: KlingProvider(http_client=httpx_client(fakes["kling"])),
            "gemini": lambda: GeminiProvider(http_client=httpx_client(fakes["gemini"])),
            "runway": lambda: RunwayProvider(http_client=httpx_client(fakes["runway"])),
        },
    )
    return fakes


def fund(chat, tokens: int = 1000) -> TelegramUser:
    chat.send("/start")
    user = TelegramUser.objects.get(telegram_id=chat.user_id)
    wallet_credit(user=user, amount=tokens, kind=EntryKind.BONUS, idempotency_key=f"test-fund-{chat.user_id}")
    return user


def unbase64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_video_from_text_shows_the_price_per_second_and_the_time_waited(chat, vendors):
    user = fund(chat)
    chat.tap("Создать видео")
    assert "ток./сек" in chat.bot_messages()[-1].buttons[0]["text"]
    chat.tap("Kling 2.1 ·")
    chat.tap("Далее")
    chat.send("кит плывёт над городом")
    confirm = chat.last_text()
    model_price = 10  # ceil(0.05 USD * 100 tokens/USD * 2 markup) per second
    assert f"Стоимость: {5 * model_price} токенов" in confirm
    assert f"Цена: {model_price} ток. за секунду" in confirm
    assert "5 сек" in confirm

    chat.tap(f"Создать за {5 * model_price}", run=False)
    chat.tasks.run_all(include_delayed=False)
    chat.tasks.run_all(only="delivery.status")  # the "processing" edit, a second after the start
    request = GenerationRequest.objects.get()
    assert request.status == RequestStatus.PROCESSING
    status = next(m for m in chat.bot_messages() if m.message_id == request.status_message_id)
    assert "Снимаю видео" in status.text
    assert "⏱" in status.text
    assert any("Отменить" in button.get("text", "") for button in status.buttons)

    chat.tasks.run_all()
    request.refresh_from_db()
    assert (request.status, request.delivery_status) == (RequestStatus.SUCCEEDED, DeliveryStatus.DELIVERED)
    document = chat.bot_messages()[-1].data["document"]
    assert document["file_name"].endswith(".mp4")
    assert chat.fake.file_bytes(document["file_id"]) == vendors["kling"].video
    assert wallet_balance(user=user).available == 1000 + 30 - 5 * model_price
    assert vendors["kling"].calls[0].json()["duration"] == "5"


def test_video_from_a_photo_with_a_caption_goes_straight_to_the_price(chat, vendors):
    fund(chat)
    chat.tap("Создать видео")
    chat.tap("Runway")
    chat.tap("Далее")
    photo = sample_png((30, 160, 60))
    assert chat.post(chat.fake.sync.send_photo(chat.user_id, photo, caption="волны накатывают")) == 200
    assert "Фото: 1" in chat.last_text()
    chat.tap("Создать за")
    chat.tasks.run_all()  # the scheduled checks of the vendor's job
    request = GenerationRequest.objects.get()
    assert request.status == RequestStatus.SUCCEEDED
    created = vendors["runway"].calls[0].json()
    assert created["promptText"] == "волны накатывают"
    assert created["promptImage"].startswith("data:image/")


def test_image_edit_from_an_album_sends_every_photo(chat, vendors):
    fund(chat)
    chat.tap("Создать изображение")
    chat.tap("Nano Banana ·")
    chat.tap("Далее")
    photos = [sample_png((200, 10, 10)), sample_png((10, 10, 200))]
    for update in chat.fake.sync.send_album(chat.user_id, photos):
        assert chat.post(update) == 200
    assert "Фото получено" in chat.last_text()
    chat.send("сделай ночь")
    assert "Фото: 2" in chat.last_text()
    chat.tap("Создать за")
    request = GenerationRequest.objects.get()
    assert request.status == RequestStatus.SUCCEEDED
    assert len(request.input_paths or []) == 2
    parts = vendors["gemini"].calls[0].json()["contents"][0]["parts"]
    assert len([part for part in parts if "inlineData" in part]) == 2


def test_more_photos_than_the_model_takes_are_refused_in_chat(chat, vendors):
    fund(chat)
    chat.tap("Создать видео")
    chat.tap("Runway")
    chat.tap("Далее")
    for color in ((1, 2, 3), (4, 5, 6)):
        assert chat.post(chat.fake.sync.send_photo(chat.user_id, sample_png(color))) == 200
    assert "не больше 1" in chat.last_text()


def test_an_album_for_a_text_only_model_is_refused_once(chat):
    chat.send("/start")
    chat.tap("Создать изображение")
    chat.tap("Local · Studio")
    chat.tap("Далее")
    before = len(chat.bot_messages())
    photos = [sample_png((200, 10, 10)), sample_png((10, 200, 10)), sample_png((10, 10, 200))]
    for update in chat.fake.sync.send_album(chat.user_id, photos):
        assert chat.post(update) == 200
    replies = chat.bot_messages()[before:]
    assert [reply.data.get("text", "") for reply in replies] == [Texts("ru")("create.photos_not_taken")]
