"""Daily bonus with a streak, and referrals rewarded on the first purchase."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from nanobanana.billing.bonuses import (
    ReferralOutcome,
    bonus_day,
    daily_bonus_amount,
    daily_bonus_claim,
    referral_attach,
    referral_code_get_or_create,
    referral_reward_on_purchase,
)
from nanobanana.billing.models import DailyBonusClaim, EntryKind, LedgerEntry, Referral
from nanobanana.billing.selectors import wallet_balance
from nanobanana.billing.services import wallet_credit

pytestmark = pytest.mark.django_db

# 20:59 UTC is 23:59 in Moscow (UTC+3, no daylight saving); 21:00 UTC is the next Moscow day.
LATE_EVENING = datetime(2026, 3, 10, 20, 59, tzinfo=UTC)
MOSCOW_MIDNIGHT = datetime(2026, 3, 10, 21, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _bonus_rules(settings):
    settings.DAILY_BONUS_BASE_TOKENS = 3
    settings.DAILY_BONUS_STREAK_STEP = 2
    settings.DAILY_BONUS_MAX_TOKENS = 8
    settings.BOT_TIME_ZONE = "Europe/Moscow"
    settings.REFERRAL_REFERRER_TOKENS = 50
    settings.REFERRAL_REFERRED_TOKENS = 25


def purchase(user, key: str, amount: int = 100):
    entry, _ = wallet_credit(user=user, amount=amount, kind=EntryKind.PURCHASE, idempotency_key=key)
    return entry


class TestDailyBonus:
    def test_the_day_turns_at_midnight_moscow_time(self):
        assert bonus_day(now=LATE_EVENING).isoformat() == "2026-03-10"
        assert bonus_day(now=MOSCOW_MIDNIGHT).isoformat() == "2026-03-11"

    def test_one_claim_per_day(self, user):
        first = daily_bonus_claim(user=user, now=LATE_EVENING)
        again = daily_bonus_claim(user=user, now=LATE_EVENING - timedelta(hours=20))
        assert (first.claimed, first.tokens, first.streak) == (True, 3, 1)
        assert (again.claimed, again.tokens, again.streak) == (False, 3, 1)
        assert wallet_balance(user=user).available == 3
        assert DailyBonusClaim.objects.count() == 1

    def test_a_claim_just_after_moscow_midnight_is_a_new_day_and_continues_the_streak(self, user):
        daily_bonus_claim(user=user, now=LATE_EVENING)
        second = daily_bonus_claim(user=user, now=MOSCOW_MIDNIGHT)
        assert (second.claimed, second.streak, second.tokens) == (True, 2, 5)

    def test_the_streak_grows_to_the_cap_and_a_missed_day_restarts_it(self, user):
        amounts = [daily_bonus_claim(user=user, now=LATE_EVENING + timedelta(days=day)).tokens for day in range(4)]
        assert amounts == [3, 5, 7, 8]
        restarted = daily_bonus_claim(user=user, now=LATE_EVENING + timedelta(days=5))
        assert (restarted.streak, restarted.tokens) == (1, 3)
        assert wallet_balance(user=user).available == 3 + 5 + 7 + 8 + 3

    def test_each_claim_has_its_own_ledger_key(self, user):
        daily_bonus_claim(user=user, now=LATE_EVENING)
        keys = list(LedgerEntry.objects.values_list("idempotency_key", flat=True))
        assert keys == [f"daily:{user.telegram_id}:2026-03-10"]

    def test_zero_configured_grants_nothing(self, user, settings):
        settings.DAILY_BONUS_BASE_TOKENS = 0
        settings.DAILY_BONUS_MAX_TOKENS = 0
        result = daily_bonus_claim(user=user)
        assert (result.claimed, result.tokens) == (False, 0)
        assert not DailyBonusClaim.objects.exists()

    def test_amount_is_never_negative(self, settings):
        settings.DAILY_BONUS_BASE_TOKENS = -5
        assert daily_bonus_amount(streak=1) == 0


class TestReferrals:
    def test_code_is_stable_and_opaque(self, user):
        code = referral_code_get_or_create(user=user)
        assert code == referral_code_get_or_create(user=user)
        assert str(user.telegram_id) not in code
        assert len(code) == 10

    def test_attach_then_first_purchase_rewards_both_sides_once(self, user_factory):
        referrer, friend = user_factory(), user_factory()
        assert referral_attach(referred=friend, code=referral_code_get_or_create(user=referrer)) == "attached"
        purchase(friend, "p1")
        assert referral_reward_on_purchase(user=friend) is True
        assert referral_reward_on_purchase(user=friend) is False
        purchase(friend, "p2")
        assert referral_reward_on_purchase(user=friend) is False
        assert wallet_balance(user=referrer).available == 50
        assert wallet_balance(user=friend).available == 200 + 25
        assert Referral.objects.get().rewarded_at is not None

    def test_no_reward_without_a_purchase_or_without_a_referral(self, user_factory):
        referrer, friend, loner = user_factory(), user_factory(), user_factory()
        referral_attach(referred=friend, code=referral_code_get_or_create(user=referrer))
        assert referral_reward_on_purchase(user=friend) is False  # no purchase yet
        purchase(loner, "p-loner")
        assert referral_reward_on_purchase(user=loner) is False

    def test_self_referral_is_refused(self, user):
        assert referral_attach(referred=user, code=referral_code_get_or_create(user=user)) == "self"
        assert not Referral.objects.exists()

    def test_unknown_code_is_refused(self, user):
        assert referral_attach(referred=user, code="nosuchcode") == ReferralOutcome.UNKNOWN_CODE

    def test_a_user_is_referred_at_most_once(self, user_factory):
        first, second, friend = user_factory(), user_factory(), user_factory()
        assert referral_attach(referred=friend, code=referral_code_get_or_create(user=first)) == "attached"
        assert referral_attach(referred=friend, code=referral_code_get_or_create(user=second)) == "already_referred"
        assert Referral.objects.get().referrer == first

    def test_an_existing_customer_cannot_be_referred(self, user_factory):
        referrer, customer = user_factory(), user_factory()
        purchase(customer, "earlier")
        code = referral_code_get_or_create(user=referrer)
        assert referral_attach(referred=customer, code=code) == ReferralOutcome.ALREADY_CUSTOMER

    def test_a_direct_loop_is_refused(self, user_factory):
        alice, bob = user_factory(), user_factory()
        referral_attach(referred=bob, code=referral_code_get_or_create(user=alice))
        assert referral_attach(referred=alice, code=referral_code_get_or_create(user=bob)) == "loop"

    def test_a_longer_loop_is_refused(self, user_factory):
        alice, bob, carol = user_factory(), user_factory(), user_factory()
        referral_attach(referred=bob, code=referral_code_get_or_create(user=alice))
        referral_attach(referred=carol, code=referral_code_get_or_create(user=bob))
        assert referral_attach(referred=alice, code=referral_code_get_or_create(user=carol)) == "loop"
        assert Referral.objects.count() == 2

    def test_zero_rewards_credit_nothing_but_mark_the_referral(self, user_factory, settings):
        settings.REFERRAL_REFERRER_TOKENS = 0
        referrer, friend = user_factory(), user_factory()
        referral_attach(referred=friend, code=referral_code_get_or_create(user=referrer))
        purchase(friend, "p1")
        assert referral_reward_on_purchase(user=friend) is True
        assert wallet_balance(user=referrer).available == 0
        assert wallet_balance(user=friend).available == 125
