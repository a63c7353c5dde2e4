"""Promo codes, the daily bonus and invite links through the bot."""

from __future__ import annotations

import re

import pytest
from django.conf import settings

from nanobanana.accounts.models import TelegramUser
from nanobanana.billing.models import EntryKind, LedgerEntry, PromoCode, Referral
from nanobanana.billing.selectors import wallet_balance
from nanobanana.payments.models import TokenPackage

pytestmark = pytest.mark.django_db(transaction=True)


def user_of(chat, telegram_id: int | None = None) -> TelegramUser:
    return TelegramUser.objects.get(telegram_id=telegram_id or chat.user_id)


def test_promo_command_with_the_code_redeems_it(chat):
    PromoCode.objects.create(code="HELLO", tokens=15, max_uses=5)
    chat.send("/start")
    chat.send("/promo hello")
    assert "Промокод принят: +15" in chat.last_text()
    chat.send("/promo hello")
    assert "уже использовали" in chat.last_text()
    assert wallet_balance(user=user_of(chat)).available == settings.WELCOME_BONUS_TOKENS + 15


def test_promo_button_asks_for_the_code_and_takes_the_next_message(chat):
    PromoCode.objects.create(code="BUTTON", tokens=7, max_uses=5)
    chat.send("/start")
    chat.tap("Баланс")
    chat.tap("Промокод")
    assert "Отправьте промокод" in chat.last_text()
    chat.send("button")
    assert "+7" in chat.last_text()


def test_promo_prompt_then_unknown_code_says_so_and_leaves_the_prompt(chat):
    chat.send("/start")
    chat.send("/promo")
    chat.send("NOPE")
    assert "Такого промокода нет" in chat.last_text()
    chat.send("hello again")
    assert "Не понял" in chat.last_text()  # the prompt ended: plain text is no longer a code


def test_daily_bonus_button_grants_once_a_day(chat):
    chat.send("/start")
    chat.tap("Баланс")
    chat.tap("Ежедневный бонус")
    assert "Ежедневный бонус: +" in chat.last_text()
    chat.send("/bonus")
    assert "уже получен" in chat.last_text()
    assert "после полуночи (00:00 MSK)" in chat.last_text()  # the bot's zone, named
    assert LedgerEntry.objects.filter(kind=EntryKind.BONUS, idempotency_key__startswith="daily:").count() == 1


def test_invite_link_then_the_friend_buys_and_both_are_rewarded_once(chat):
    chat.send("/start")
    chat.send("/invite")
    link = re.search(r"https://t\.me/(\w+)\?start=(ref_\w+)", chat.last_text())
    assert link, chat.last_text()
    friend_id = 777
    chat.fake.user(friend_id, first_name="Друг", language_code="ru")
    update = chat.fake.sync.send_text(friend_id, f"/start {link.group(2)}")
    assert chat.post(update) == 200
    assert "по приглашению друга" in chat.fake.history(friend_id)[-1].text
    friend = user_of(chat, friend_id)
    assert Referral.objects.get().referred == friend

    package = TokenPackage.objects.get(slug="tokens-100")
    for charge in ("stxFRIEND1", "stxFRIEND2"):
        paid = chat.fake.sync.send_successful_payment(
            friend_id, payload=f"pkg:{package.pk}:u:{friend_id}", total_amount=50, charge_id=charge
        )
        assert chat.post(paid) == 200
    welcome = settings.WELCOME_BONUS_TOKENS
    assert wallet_balance(user=friend).balance == welcome + 200 + settings.REFERRAL_REFERRED_TOKENS
    assert wallet_balance(user=user_of(chat)).balance == welcome + settings.REFERRAL_REFERRER_TOKENS


def test_own_invite_link_is_refused_silently(chat):
    chat.send("/start")
    chat.send("/invite")
    found = re.search(r"start=(ref_\w+)", chat.last_text())
    assert found
    code = found.group(1)
    chat.send(f"/start {code}")
    assert "по приглашению" not in chat.last_text()
    assert not Referral.objects.exists()


def test_invite_button_in_english(chat):
    chat.fake.user(chat.user_id, language_code="en")
    chat.language = "en"
    chat.send("/start")
    chat.tap("Balance")
    chat.tap("Invite friends")
    assert "Invite friends" in chat.last_text()
    assert "start=ref_" in chat.last_text()
