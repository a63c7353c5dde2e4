import re

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

import nanobanana.billing.admin  # noqa: F401 - registers the billing admin when autodiscovery is off
from nanobanana.billing.models import EntryKind, LedgerEntry, Wallet
from nanobanana.billing.services import hold_place

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _plain_static_files(settings):
    # The test settings run with DEBUG off, whose manifest storage needs collectstatic
    # before any admin page can render.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def admin_client(client, operator):
    client.force_login(operator)
    return client


def adjust_url(wallet):
    return reverse("admin:billing_wallet_adjust", args=[wallet.pk])


def request_key_from(response):
    match = re.search(r'name="request_key" value="([0-9a-f-]+)"', response.content.decode())
    assert match, "the adjust form carries a one-time request key"
    return match.group(1)


def test_adjust_writes_an_entry_with_reason_and_operator(admin_client, funded_user, operator):
    wallet = Wallet.objects.get(user=funded_user)
    form = admin_client.get(adjust_url(wallet))
    assert form.status_code == 200

    response = admin_client.post(
        adjust_url(wallet), {"amount": "-15", "reason": "refund by hand", "request_key": request_key_from(form)}
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:billing_wallet_change", args=[wallet.pk])
    entry = LedgerEntry.objects.get(kind=EntryKind.ADJUSTMENT)
    assert (entry.amount, entry.reason, entry.operator) == (-15, "refund by hand", operator)
    assert Wallet.objects.get(pk=wallet.pk).balance == 85
    followed = admin_client.get(response["Location"])
    assert "balance is now 85" in followed.content.decode()


def test_adjust_refuses_a_missing_reason(admin_client, funded_user):
    wallet = Wallet.objects.get(user=funded_user)
    key = request_key_from(admin_client.get(adjust_url(wallet)))

    response = admin_client.post(adjust_url(wallet), {"amount": "10", "reason": "  ", "request_key": key})

    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert not LedgerEntry.objects.filter(kind=EntryKind.ADJUSTMENT).exists()
    assert Wallet.objects.get(pk=wallet.pk).balance == 100


def test_adjust_shows_insufficient_funds_and_writes_nothing(admin_client, funded_user):
    hold_place(user=funded_user, amount=90, reference="generation:1")
    wallet = Wallet.objects.get(user=funded_user)
    key = request_key_from(admin_client.get(adjust_url(wallet)))

    response = admin_client.post(adjust_url(wallet), {"amount": "-11", "reason": "chargeback", "request_key": key})

    assert response.status_code == 200
    assert "need 11 tokens, have 10" in response.content.decode()
    assert not LedgerEntry.objects.filter(kind=EntryKind.ADJUSTMENT).exists()


def test_adjust_refuses_zero(admin_client, funded_user):
    wallet = Wallet.objects.get(user=funded_user)
    key = request_key_from(admin_client.get(adjust_url(wallet)))
    response = admin_client.post(adjust_url(wallet), {"amount": "0", "reason": "nothing", "request_key": key})
    assert response.status_code == 200
    assert not LedgerEntry.objects.filter(kind=EntryKind.ADJUSTMENT).exists()


def test_a_double_submitted_adjust_form_adjusts_once(admin_client, funded_user):
    wallet = Wallet.objects.get(user=funded_user)
    data = {"amount": "5", "reason": "goodwill", "request_key": request_key_from(admin_client.get(adjust_url(wallet)))}
    admin_client.post(adjust_url(wallet), data)
    admin_client.post(adjust_url(wallet), data)
    assert LedgerEntry.objects.filter(kind=EntryKind.ADJUSTMENT).count() == 1
    assert Wallet.objects.get(pk=wallet.pk).balance == 105


def test_staff_without_the_adjust_permission_is_refused(client, funded_user):
    staff = User.objects.create_user(username="viewer", password="pw", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_wallet"))
    client.force_login(staff)
    wallet = Wallet.objects.get(user=funded_user)
    response = client.post(adjust_url(wallet), {"amount": "5", "reason": "x", "request_key": "0" * 32})
    assert response.status_code == 403
    assert not LedgerEntry.objects.filter(kind=EntryKind.ADJUSTMENT).exists()


def test_adjust_action_on_one_wallet_opens_the_adjust_form(admin_client, funded_user):
    wallet = Wallet.objects.get(user=funded_user)
    response = admin_client.post(
        reverse("admin:billing_wallet_changelist"),
        {"action": "adjust_balance", "_selected_action": [str(wallet.pk)]},
    )
    assert response.status_code == 302
    assert response["Location"] == adjust_url(wallet)


def test_adjust_action_on_two_wallets_is_refused(admin_client, funded_user_factory):
    wallets = [Wallet.objects.get(user=funded_user_factory(5)) for _ in range(2)]
    response = admin_client.post(
        reverse("admin:billing_wallet_changelist"),
        {"action": "adjust_balance", "_selected_action": [str(w.pk) for w in wallets]},
        follow=True,
    )
    assert "Select exactly one wallet" in response.content.decode()


def test_wallet_page_is_read_only_and_lists_recent_entries(admin_client, funded_user):
    wallet = Wallet.objects.get(user=funded_user)
    response = admin_client.get(reverse("admin:billing_wallet_change", args=[wallet.pk]))
    page = response.content.decode()
    assert response.status_code == 200
    assert 'name="balance"' not in page  # shown, not editable
    assert "test-purchase:" in page  # the funding entry's key, from the inline
    assert adjust_url(wallet) in page


def test_wallet_post_cannot_change_the_balance(admin_client, funded_user):
    wallet = Wallet.objects.get(user=funded_user)
    admin_client.post(reverse("admin:billing_wallet_change", args=[wallet.pk]), {"balance": "1000000"})
    assert Wallet.objects.get(pk=wallet.pk).balance == 100


@pytest.mark.parametrize("query", ["telegram_id", "username"])
def test_wallets_are_searchable_by_telegram_id_and_username(admin_client, funded_user, funded_user_factory, query):
    funded_user_factory(5)
    term = str(funded_user.telegram_id) if query == "telegram_id" else funded_user.username
    response = admin_client.get(reverse("admin:billing_wallet_changelist"), {"q": term})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [Wallet.objects.get(user=funded_user)]


def test_ledger_entries_cannot_be_added_changed_or_deleted_in_admin(admin_client, funded_user):
    entry = LedgerEntry.objects.get(wallet__user=funded_user)
    assert admin_client.get(reverse("admin:billing_ledgerentry_add")).status_code == 403
    assert admin_client.get(reverse("admin:billing_ledgerentry_delete", args=[entry.pk])).status_code == 403
    admin_client.post(reverse("admin:billing_ledgerentry_change", args=[entry.pk]), {"amount": "5"})
    entry.refresh_from_db()
    assert entry.amount == 100


def test_ledger_entries_filter_by_kind(admin_client, funded_user, operator):
    from nanobanana.billing.services import wallet_adjust

    wallet_adjust(user=funded_user, amount=3, reason="goodwill", operator=operator)
    response = admin_client.get(reverse("admin:billing_ledgerentry_changelist"), {"kind__exact": "adjustment"})
    assert [entry.kind for entry in response.context["cl"].result_list] == [EntryKind.ADJUSTMENT]


def test_holds_are_listed_read_only(admin_client, funded_user):
    hold = hold_place(user=funded_user, amount=10, reference="generation:2")
    assert admin_client.get(reverse("admin:billing_hold_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:billing_hold_add")).status_code == 403
    page = admin_client.get(reverse("admin:billing_hold_change", args=[hold.pk])).content.decode()
    assert 'name="status"' not in page
