import pytest

from nanobanana.accounts.models import Language
from nanobanana.accounts.services import TelegramProfile, language_from_code, user_ensure, user_set_language

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("code", "expected"),
    [("ru", "ru"), ("", "ru"), ("uk", "ru"), ("en", "en"), ("en-US", "en"), ("de", "en")],
)
def test_language_defaults_to_russian_and_follows_telegram(code, expected):
    assert language_from_code(code) == expected


def test_user_ensure_creates_once_and_refreshes_profile():
    user, created = user_ensure(profile=TelegramProfile(telegram_id=42, username="a", language_code="en"))
    assert created
    assert user.language == Language.EN
    again, created_again = user_ensure(profile=TelegramProfile(telegram_id=42, username="b", language_code="en"))
    assert not created_again
    assert again.pk == user.pk
    assert again.username == "b"


def test_chosen_language_is_not_overridden_by_telegram():
    user, _ = user_ensure(profile=TelegramProfile(telegram_id=7, language_code="en"))
    user_set_language(user=user, language=Language.RU)
    refreshed, _ = user_ensure(profile=TelegramProfile(telegram_id=7, language_code="en"))
    assert refreshed.language == Language.RU
