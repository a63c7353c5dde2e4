"""Operators see wallets, entries and holds; they change a balance only by an
adjustment entry with a reason (`wallet_adjust`), never by editing a number."""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from nanobanana.billing.models import DailyBonusClaim, Hold, LedgerEntry, PromoCode, PromoRedemption, Referral, Wallet
from nanobanana.billing.selectors import ledger_entries
from nanobanana.billing.services import wallet_adjust
from nanobanana.core.errors import AppError

RECENT_ENTRIES = 20
ADJUST_PERMISSION = "billing.adjust_balance"


class AdjustBalanceForm(forms.Form):
    amount = forms.IntegerField(help_text="Signed: positive adds tokens, negative takes them away.")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="Required; kept in the ledger.")
    # One key per rendered form: a double-submitted form adjusts once.
    request_key = forms.UUIDField(widget=forms.HiddenInput)

    def clean_amount(self) -> int:
        amount: int = self.cleaned_data["amount"]
        if amount == 0:
            raise forms.ValidationError("Enter a non-zero amount.")
        return amount


class RecentLedgerEntryInline(admin.TabularInline):
    """The wallet's latest entries (the queryset is narrowed by WalletAdmin)."""

    model = LedgerEntry
    fk_name = "wallet"
    verbose_name_plural = f"latest {RECENT_ENTRIES} ledger entries"
    fields = ("created_at", "kind", "amount", "balance_after", "reason", "operator", "idempotency_key")
    readonly_fields = fields
    ordering = ("-id",)
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class _ReadOnlyAdmin(admin.ModelAdmin):
    """Rows only services write (ledger entries, holds, redemptions, ...):
    operators read them; nothing is added, edited or deleted by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Wallet)
class WalletAdmin(_ReadOnlyAdmin):
    """Wallets are created by the billing services; balances change only
    through the ledger (`adjust_balance_view` for operators)."""

    list_display = ("user", "balance", "held", "available", "updated_at")
    search_fields = ("=user__telegram_id", "user__username")
    list_select_related = ("user",)
    fields = ("user", "balance", "held", "available", "updated_at", "adjust_link")
    readonly_fields = fields
    inlines = (RecentLedgerEntryInline,)
    actions = ("adjust_balance",)

    def has_adjust_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(ADJUST_PERMISSION)

    @admin.display(description="available")
    def available(self, wallet: Wallet) -> int:
        return wallet.available

    @admin.display(description="adjust")
    def adjust_link(self, wallet: Wallet) -> str:
        url = reverse("admin:billing_wallet_adjust", args=[wallet.pk])
        return format_html('<a class="button" href="{}">Adjust balance</a>', url)

    def get_formset_kwargs(self, request: HttpRequest, obj: Any, inline: Any, prefix: str) -> dict[str, Any]:
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        if isinstance(inline, RecentLedgerEntryInline) and obj is not None and obj.pk is not None:
            recent = [entry.pk for entry in ledger_entries(user=obj.user, limit=RECENT_ENTRIES)]
            kwargs["queryset"] = kwargs["queryset"].filter(pk__in=recent)
        return kwargs

    def get_urls(self) -> list[URLPattern]:
        adjust = path(
            "<path:object_id>/adjust/",
            self.admin_site.admin_view(self.adjust_balance_view),
            name="billing_wallet_adjust",
        )
        return [adjust, *super().get_urls()]

    @admin.action(description="Adjust balance (one wallet)", permissions=["adjust"])
    def adjust_balance(self, request: HttpRequest, queryset: QuerySet[Wallet]) -> HttpResponse | None:
        wallets = list(queryset[:2])
        if len(wallets) != 1:
            self.message_user(request, "Select exactly one wallet to adjust.", messages.ERROR)
            return None
        return HttpResponseRedirect(reverse("admin:billing_wallet_adjust", args=[wallets[0].pk]))

    def adjust_balance_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Form (amount, reason) -> `wallet_adjust` with the signed-in operator."""
        if not self.has_adjust_permission(request) or not isinstance(request.user, User):
            raise PermissionDenied
        wallet = self.get_object(request, object_id)
        if wallet is None:
            raise Http404("no such wallet")

        if request.method == "POST":
            form = AdjustBalanceForm(request.POST)
            if form.is_valid():
                try:
                    entry = wallet_adjust(
                        user=wallet.user,
                        amount=form.cleaned_data["amount"],
                        reason=form.cleaned_data["reason"],
                        operator=request.user,
                        idempotency_key=f"admin-adjustment:{form.cleaned_data['request_key']}",
                    )
                except AppError as error:
                    form.add_error(None, str(error))
                else:
                    self.message_user(
                        request,
                        f"Adjusted {wallet.user} by {entry.amount:+d} tokens; balance is now {entry.balance_after}.",
                        messages.SUCCESS,
                    )
                    return HttpResponseRedirect(reverse("admin:billing_wallet_change", args=[wallet.pk]))
        else:
            form = AdjustBalanceForm(initial={"request_key": uuid.uuid4()})

        context = {
            **self.admin_site.each_context(request),
            "title": f"Adjust balance: {wallet.user}",
            "opts": self.opts,
            "wallet": wallet,
            "object": wallet,
            "form": form,
            "has_view_permission": self.has_view_permission(request, wallet),
            "original": wallet,
        }
        return TemplateResponse(request, "admin/billing/wallet/adjust_balance.html", context)


@admin.register(LedgerEntry)
class LedgerEntryAdmin(_ReadOnlyAdmin):
    list_display = ("id", "created_at", "wallet", "kind", "amount", "balance_after", "reason", "operator")
    list_filter = ("kind",)
    search_fields = ("=wallet__user__telegram_id", "wallet__user__username", "idempotency_key", "=hold__reference")
    list_select_related = ("wallet__user", "operator")
    readonly_fields = (
        "wallet",
        "kind",
        "amount",
        "balance_after",
        "idempotency_key",
        "reason",
        "hold",
        "operator",
        "created_at",
    )
    date_hierarchy = "created_at"


@admin.register(Hold)
class HoldAdmin(_ReadOnlyAdmin):  # holds move only through hold_capture / hold_release
    list_display = ("id", "reference", "wallet", "amount", "status", "captured_amount", "created_at", "resolved_at")
    list_filter = ("status",)
    search_fields = ("reference", "=wallet__user__telegram_id", "wallet__user__username")
    list_select_related = ("wallet__user",)
    readonly_fields = (
        "wallet",
        "reference",
        "amount",
        "status",
        "captured_amount",
        "created_at",
        "resolved_at",
    )


@admin.register(PromoCode)
class PromoCodeAdmin(admin.ModelAdmin[PromoCode]):
    """Codes are created here by operators; none ship in migrations or fixtures."""

    list_display = ("code", "tokens", "uses", "max_uses", "per_user_limit", "valid_from", "valid_until", "is_active")
    list_filter = ("is_active",)
    search_fields = ("code",)
    readonly_fields = ("uses", "created_at")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # redemptions point at codes: switch one off instead


@admin.register(PromoRedemption)
class PromoRedemptionAdmin(_ReadOnlyAdmin):
    list_display = ("id", "created_at", "promo", "user", "number", "entry")
    search_fields = ("promo__code", "=user__telegram_id")
    list_select_related = ("promo", "user", "entry")


@admin.register(DailyBonusClaim)
class DailyBonusClaimAdmin(_ReadOnlyAdmin):
    list_display = ("id", "day", "user", "streak", "tokens")
    search_fields = ("=user__telegram_id",)
    list_select_related = ("user",)


@admin.register(Referral)
class ReferralAdmin(_ReadOnlyAdmin):
    list_display = ("id", "created_at", "referrer", "referred", "rewarded_at")
    search_fields = ("=referrer__telegram_id", "=referred__telegram_id")
    list_select_related = ("referrer", "referred")
