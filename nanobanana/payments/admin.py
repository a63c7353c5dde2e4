"""Operators edit token packages, see payments and the quarantine, and refund
Stars payments (through `stars_refund_request`, never by editing a row)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from nanobanana.core.errors import AppError, InsufficientFunds
from nanobanana.payments.models import Payment, PaymentIncident, PaymentStatus, Provider, TokenPackage
from nanobanana.payments.stars import stars_refund_request

REFUND_PERMISSION = "payments.change_payment"


@admin.register(TokenPackage)
class TokenPackageAdmin(admin.ModelAdmin[TokenPackage]):
    list_display = ("slug", "tokens", "price_stars", "price_rub", "lava_offer_id", "is_active", "sort_order")
    list_editable = ("price_stars", "price_rub", "is_active", "sort_order")
    search_fields = ("slug", "lava_offer_id")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # payments point at packages: switch one off instead


class RefundForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="Required; kept on the payment.")


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin[Payment]):
    list_display = ("id", "created_at", "provider", "user", "package", "tokens", "amount", "currency", "status")
    list_filter = ("provider", "status")
    search_fields = ("external_id", "=user__telegram_id", "user__username")
    list_select_related = ("user", "package")
    date_hierarchy = "created_at"
    readonly_fields = (
        "provider",
        "external_id",
        "user",
        "package",
        "tokens",
        "amount",
        "currency",
        "status",
        "payment_url",
        "error",
        "created_at",
        "paid_at",
        "refunded_at",
        "refund_reason",
        "refunded_by",
        "refund_hold",
        "refund_link",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="refund")
    def refund_link(self, payment: Payment) -> str:
        if payment.provider != Provider.STARS or payment.status != PaymentStatus.PAID:
            return "-"
        url = reverse("admin:payments_payment_refund", args=[payment.pk])
        return format_html('<a class="button" href="{}">Refund Stars</a>', url)

    def get_urls(self) -> list[URLPattern]:
        refund = path(
            "<path:object_id>/refund/", self.admin_site.admin_view(self.refund_view), name="payments_payment_refund"
        )
        return [refund, *super().get_urls()]

    def refund_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Form (reason) -> `stars_refund_request` with the signed-in operator."""
        if not request.user.has_perm(REFUND_PERMISSION) or not isinstance(request.user, User):
            raise PermissionDenied
        payment = self.get_object(request, object_id)
        if payment is None:
            raise Http404("no such payment")
        form = RefundForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                stars_refund_request(payment_id=payment.pk, operator=request.user, reason=form.cleaned_data["reason"])
            except InsufficientFunds as error:
                form.add_error(
                    None,
                    f"Refused: the user has {error.available} tokens available but the payment credited "
                    f"{payment.tokens}. A Stars refund is all or nothing, so it would leave tokens they did not "
                    "pay for (see docs/decisions/403-stars-payments-and-refunds.md).",
                )
            except AppError as error:
                form.add_error(None, str(error))
            else:
                self.message_user(
                    request,
                    f"Refund of {payment.external_id} requested; {payment.tokens} tokens held until Telegram answers.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:payments_payment_change", args=[payment.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Refund Stars payment {payment.external_id}",
            "opts": self.opts,
            "payment": payment,
            "object": payment,
            "form": form,
            "original": payment,
        }
        return TemplateResponse(request, "admin/payments/payment/refund.html", context)


@admin.register(PaymentIncident)
class PaymentIncidentAdmin(admin.ModelAdmin[PaymentIncident]):
    list_display = ("id", "created_at", "provider", "external_id", "kind", "resolved_at")
    list_filter = ("provider", "kind", ("resolved_at", admin.EmptyFieldListFilter))
    search_fields = ("external_id",)
    readonly_fields = ("provider", "external_id", "kind", "payment", "payload", "detail", "created_at")
    fields = (*readonly_fields, "resolved_at", "resolution")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
