"""A local fake of lava.top's public API at the HTTP layer (used through respx).

Built from lava.top's documentation (https://gate.lava.top/docs,
https://developers.lava.top/en): `POST /api/v2/invoice` authenticated by the
`X-Api-Key` header, a JSON body `{email, offerId, currency, buyerLanguage?}`,
answered `201 {id, status, amountTotal: {amount, currency}, paymentUrl}`;
the webhook payload `{eventType, product, buyer, contractId, amount, currency,
timestamp, status, errorMessage}`. Faults: 401 for a wrong key, 400 for a bad
body, 404 for an unknown offer, and injected 429 / 500 / timeout / malformed.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx


@dataclass
class FakeLava:
    api_key: str
    offers: dict[str, tuple[Decimal, str]] = field(default_factory=dict)  # offer id -> (amount, currency)
    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)  # "429", "500", "timeout", "malformed", "no_url"

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.faults:
            fault = self.faults.pop(0)
            if fault == "timeout":
                raise httpx.ReadTimeout("timed out", request=request)
            if fault == "malformed":
                return httpx.Response(201, content=b"<html>gateway</html>", headers={"content-type": "text/html"})
            if fault != "no_url":
                return httpx.Response(int(fault), json={"error": "try later"})
            self.faults.insert(0, fault)
        if request.headers.get("X-Api-Key") != self.api_key:
            return httpx.Response(401, json={"error": "Unauthorized"})
        if request.method != "POST" or request.url.path != "/api/v2/invoice":
            return httpx.Response(404, json={"error": "Not found"})
        try:
            body = json.loads(request.content)
        except ValueError:
            return httpx.Response(400, json={"error": "Malformed JSON"})
        missing = [name for name in ("email", "offerId", "currency") if not body.get(name)]
        if missing:
            return httpx.Response(400, json={"error": f"Missing {', '.join(missing)}"})
        if body["currency"] not in ("RUB", "USD", "EUR"):
            return httpx.Response(400, json={"error": "Unsupported currency"})
        offer = self.offers.get(body["offerId"])
        if offer is None:
            return httpx.Response(404, json={"error": "Offer not found"})
        amount, currency = offer
        invoice_id = str(uuid.uuid4())
        self.invoices[invoice_id] = {"offer": body["offerId"], "email": body["email"], "amount": amount}
        data: dict[str, Any] = {
            "id": invoice_id,
            "status": "in-progress",
            "amountTotal": {"currency": currency, "amount": float(amount)},
            "paymentUrl": f"https://app.lava.top/products/pay/{invoice_id}",
        }
        if self.faults and self.faults[0] == "no_url":
            self.faults.pop(0)
            del data["paymentUrl"]
        return httpx.Response(201, json=data)

    def event(
        self,
        invoice_id: str,
        *,
        event_type: str = "payment.success",
        amount: Any = None,
        currency: str = "RUB",
    ) -> dict[str, Any]:
        """The webhook body lava.top posts for `invoice_id`."""
        invoice = self.invoices.get(invoice_id, {"offer": "unknown", "email": "x@example.com", "amount": 1})
        failed = event_type == "payment.failed"
        return {
            "eventType": event_type,
            "product": {"id": invoice["offer"], "title": "Tokens"},
            "buyer": {"email": invoice["email"]},
            "contractId": invoice_id,
            "amount": float(invoice["amount"]) if amount is None else amount,
            "currency": currency,
            "timestamp": "2026-11-23T10:00:00.000Z",
            "status": "failed" if failed else "completed",
            "errorMessage": "Card declined" if failed else "",
        }
