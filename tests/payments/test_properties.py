"""The ledger property test, extended with what payments and bonuses do to a
wallet: Stars purchases (and their replays), operator refunds that hold the
tokens and then take them back or give them back, and promo codes. Payments
add no entry kind of their own (a refund is a hold captured), so the base
machine's rules and invariants still describe every entry; this one
interleaves them with the payment flows."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from hypothesis import Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, precondition, rule, run_state_machine_as_test

from nanobanana.billing.models import Hold, HoldStatus
from nanobanana.billing.promo import PromoRejected, promo_redeem
from nanobanana.core.errors import Conflict, InsufficientFunds
from nanobanana.payments import stars
from nanobanana.payments.models import Payment, PaymentStatus, TokenPackage
from tests.billing.test_properties import LedgerMachine

_slugs = itertools.count(1)


class PaymentsMachine(LedgerMachine):
    def __init__(self) -> None:
        super().__init__()
        self.package = TokenPackage.objects.create(
            slug=f"prop-{next(_slugs)}", tokens=40, price_stars=20, price_rub=Decimal("49.00")
        )
        self.payments: dict[int, str] = {}  # payment id -> status
        self.refund_holds: dict[int, int] = {}  # payment id -> hold id while refunding
        self.promo_uses: dict[str, tuple[int, int, int, int]] = {}  # code -> (tokens, max, per user, used)

    def _payload(self) -> str:
        return stars.stars_invoice_payload(package=self.package, telegram_id=self.user.telegram_id)

    @rule()
    def stars_purchase(self) -> None:
        charge = f"stx{self.user.pk}-{next(self.serial)}"
        outcome = stars.stars_payment_record(
            user=self.user, payload=self._payload(), currency="XTR", total_amount=20, charge_id=charge
        )
        assert outcome.credited
        assert outcome.payment is not None
        self.payments[outcome.payment.pk] = PaymentStatus.PAID
        self.balance += self.package.tokens

    @precondition(lambda self: self.payments)
    @rule(data=st.data())
    def stars_replay(self, data: st.DataObject) -> None:
        payment = Payment.objects.get(pk=data.draw(st.sampled_from(sorted(self.payments))))
        outcome = stars.stars_payment_record(
            user=self.user, payload=self._payload(), currency="XTR", total_amount=20, charge_id=payment.external_id
        )
        assert not outcome.credited

    @precondition(lambda self: self.payments)
    @rule(data=st.data())
    def refund_request(self, data: st.DataObject) -> None:
        payment_id = data.draw(st.sampled_from(sorted(self.payments)))
        status = self.payments[payment_id]
        if status != PaymentStatus.PAID:
            with pytest.raises(Conflict):
                stars.stars_refund_request(payment_id=payment_id, operator=None, reason="property")
            return
        if self.available < self.package.tokens:
            with pytest.raises(InsufficientFunds):
                stars.stars_refund_request(payment_id=payment_id, operator=None, reason="property")
            return
        payment = stars.stars_refund_request(payment_id=payment_id, operator=None, reason="property")
        assert payment.refund_hold_id is not None
        self.payments[payment_id] = PaymentStatus.REFUNDING
        self.refund_holds[payment_id] = payment.refund_hold_id
        self.held += self.package.tokens

    @precondition(lambda self: self.refund_holds)
    @rule(data=st.data(), refunded=st.booleans())
    def refund_finish(self, data: st.DataObject, refunded: bool) -> None:
        payment_id = data.draw(st.sampled_from(sorted(self.refund_holds)))
        stars.stars_refund_finish(payment_id=payment_id, refunded=refunded, error="" if refunded else "no")
        del self.refund_holds[payment_id]
        self.held -= self.package.tokens
        if refunded:
            self.balance -= self.package.tokens
            self.payments[payment_id] = PaymentStatus.REFUNDED
        else:
            self.payments[payment_id] = PaymentStatus.PAID

    @rule(tokens=st.integers(1, 60), max_uses=st.integers(1, 3), per_user=st.integers(1, 2))
    def promo_create(self, tokens: int, max_uses: int, per_user: int) -> None:
        from nanobanana.billing.models import PromoCode

        code = f"P{self.user.pk}X{next(self.serial)}"
        PromoCode.objects.create(code=code, tokens=tokens, max_uses=max_uses, per_user_limit=per_user)
        self.promo_uses[code] = (tokens, max_uses, per_user, 0)

    @precondition(lambda self: self.promo_uses)
    @rule(data=st.data())
    def promo_use(self, data: st.DataObject) -> None:
        code = data.draw(st.sampled_from(sorted(self.promo_uses)))
        tokens, max_uses, per_user, used = self.promo_uses[code]
        if used >= min(max_uses, per_user):
            with pytest.raises(PromoRejected):
                promo_redeem(user=self.user, code=code)
            return
        promo_redeem(user=self.user, code=code)
        self.promo_uses[code] = (tokens, max_uses, per_user, used + 1)
        self.balance += tokens

    @invariant()
    def database_agrees_with_the_model_and_itself(self) -> None:
        # The base check compares every hold of the wallet with the model's;
        # refund holds are the payments' and are checked here instead.
        refund_ids = set(self.refund_holds.values())
        stored = set(Hold.objects.filter(wallet__user=self.user, status=HoldStatus.HELD).values_list("pk", flat=True))
        assert refund_ids <= stored
        for hold_id in refund_ids:
            self.holds.pop(hold_id, None)
        saved = dict(self.holds)
        try:
            extra = {
                hold.pk: hold for hold in Hold.objects.filter(wallet__user=self.user, reference__startswith="refund:")
            }
            for pk, hold in extra.items():
                self.holds[pk] = _as_model(hold)
            super().database_agrees_with_the_model_and_itself()
        finally:
            self.holds = saved
        statuses = dict(Payment.objects.filter(user=self.user).values_list("pk", "status"))
        assert statuses == self.payments


def _as_model(hold: Hold):  # the stored state, as the base machine's model expects it
    from tests.billing.test_properties import ModelHold

    return ModelHold(reference=hold.reference, amount=hold.amount, status=hold.status, captured=hold.captured_amount)


@pytest.mark.slow
@pytest.mark.django_db
def test_payments_interleaved_with_ledger_operations_keep_every_balance_whole():
    run_state_machine_as_test(
        PaymentsMachine,
        settings=settings(
            max_examples=40,
            stateful_step_count=25,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.reuse, Phase.generate],
        ),
    )
