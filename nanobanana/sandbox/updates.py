"""Updates: the queue, getUpdates long polling, the webhook and its delivery with retries.

https://core.telegram.org/bots/api#getting-updates
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from typing import Any

import httpx

from nanobanana.sandbox.core import TelegramCore
from nanobanana.sandbox.errors import ApiError, bad_request
from nanobanana.sandbox.params import Params
from nanobanana.sandbox.registry import api_method

# Sent only when asked for by name in allowed_updates.
OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
)


class UpdateQueue(TelegramCore):
    """Keeps updates until the bot takes them, by getUpdates or by webhook."""

    async def enqueue_update(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """Queue one update (`body` without update_id); None when allowed_updates filters it out."""
        return await self._on_loop(self._enqueue(body))

    async def _enqueue(self, body: dict[str, Any]) -> dict[str, Any] | None:
        kind = next(key for key in body if key != "update_id")
        allowed = self.webhook.allowed_updates
        if (allowed and kind not in allowed) or (not allowed and kind in OPT_IN_UPDATES):
            return None
        with self.lock:
            update = {"update_id": next(self._update_ids), **body}
            self.pending.append(update)
        self.changed()
        self._kick_delivery()
        return update

    @property
    def pending_update_count(self) -> int:
        return len(self.pending)

    def _kick_delivery(self) -> None:
        if not self.webhook.url or not self.pending:
            return
        if self._delivery_task is None or self._delivery_task.done():
            self._delivery_task = asyncio.get_running_loop().create_task(self._deliver_pending())

    async def _deliver_pending(self) -> None:
        failures = 0
        client = self._webhook_http()
        while True:
            with self.lock:
                url, secret = self.webhook.url, self.webhook.secret_token
                update = self.pending[0] if url and self.pending else None
            if update is None:
                return
            error = await self._post_update(client, url, secret, update)
            with self.lock:
                if error is None:
                    failures = 0
                    with contextlib.suppress(ValueError):
                        self.pending.remove(update)
                else:
                    failures += 1
                    self.webhook.last_error_date = int(self.wall_clock())
                    self.webhook.last_error_message = error
            self.changed()
            if error is not None:
                delays = self.webhook_retry_delays
                await asyncio.sleep(delays[min(failures, len(delays)) - 1])

    def _webhook_http(self) -> httpx.AsyncClient:
        """The delivery client of the running loop (the sandbox binds to a new
        loop when its old one is closed; a client cannot move with it)."""
        loop = asyncio.get_running_loop()
        if self._webhook_client is None or self._webhook_client[0] is not loop:
            self._webhook_client = (loop, httpx.AsyncClient(timeout=self.webhook_timeout))
        return self._webhook_client[1]

    async def _post_update(
        self, client: httpx.AsyncClient, url: str, secret: str | None, update: dict[str, Any]
    ) -> str | None:
        """POST one update; the error text Telegram would record, or None on a 2xx answer."""
        headers = {"Content-Type": "application/json"}
        if secret:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        try:
            response = await client.post(url, content=json.dumps(update).encode(), headers=headers)
        except httpx.TimeoutException:
            return "Connection timed out"
        except httpx.ConnectError:
            return "Connection refused"
        except httpx.HTTPError as error:
            return f"Failed to connect: {type(error).__name__}"
        if not 200 <= response.status_code < 300:
            return f"Wrong response from the webhook: {response.status_code} {response.reason_phrase}"
        await self._answer_in_reply(response)
        return None

    async def _answer_in_reply(self, response: httpx.Response) -> None:
        # A webhook may answer with a method call in its body; Telegram performs it.
        if not response.content or "json" not in response.headers.get("content-type", ""):
            return
        try:
            body = response.json()
        except ValueError:
            return
        if isinstance(body, dict) and isinstance(body.get("method"), str):
            values = {key: value for key, value in body.items() if key != "method"}
            await self._call(body["method"], Params(values), None)

    async def aclose(self) -> None:
        """Stop webhook delivery (pending updates stay queued)."""
        task, self._delivery_task = self._delivery_task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        made, self._webhook_client = self._webhook_client, None
        if made is not None and made[0] is asyncio.get_running_loop():
            await made[1].aclose()

    def webhook_info(self) -> dict[str, Any]:
        """getWebhookInfo's result."""
        hook = self.webhook
        info: dict[str, Any] = {
            "url": hook.url,
            "has_custom_certificate": False,
            "pending_update_count": len(self.pending),
        }
        if hook.url:
            info["max_connections"] = hook.max_connections
            if hook.ip_address:
                info["ip_address"] = hook.ip_address
        if hook.last_error_date is not None:
            info["last_error_date"] = hook.last_error_date
            info["last_error_message"] = hook.last_error_message
        if hook.url and hook.allowed_updates:
            info["allowed_updates"] = list(hook.allowed_updates)
        return info

    def set_allowed_updates(self, allowed: Any) -> None:
        if allowed is None:
            return  # omitted: the previous setting stays
        if not isinstance(allowed, list) or not all(isinstance(item, str) for item in allowed):
            raise bad_request("can't parse allowed updates")
        self.webhook.allowed_updates = list(allowed)


@api_method("getUpdates")
async def get_updates(fake: UpdateQueue, params: Params) -> list[dict[str, Any]]:
    if fake.webhook.url:
        raise ApiError(409, WEBHOOK_CONFLICT)
    offset = params.integer("offset") or 0
    limit = min(max(params.integer("limit") or 100, 1), 100)
    timeout = max(params.integer("timeout") or 0, 0)
    fake.set_allowed_updates(params.obj("allowed_updates"))
    deadline = fake.clock() + timeout
    while True:
        with fake.lock:
            fake.last_poll_time = fake.wall_clock()
            if offset > 0:
                fake.pending[:] = [update for update in fake.pending if update["update_id"] >= offset]
                batch = fake.pending[:limit]
            elif offset < 0:
                batch = fake.pending[offset:][:limit]
            else:
                batch = fake.pending[:limit]
        left = deadline - fake.clock()
        if batch or left <= 0:
            return [dict(update) for update in batch]
        await fake.next_change(min(left, 1.0))


@api_method("setWebhook")
async def set_webhook(fake: UpdateQueue, params: Params) -> bool:
    url = params.text("url") or ""
    if url and not re.match(r"^https?://[^/\s]+", url):
        raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
    secret = params.text("secret_token")
    if secret is not None and not SECRET_TOKEN.fullmatch(secret):
        raise bad_request("secret token contains unallowed characters")
    max_connections = params.integer("max_connections")
    if max_connections is not None and not 1 <= max_connections <= 100:
        raise bad_request("bad webhook: max_connections must be between 1 and 100")
    with fake.lock:
        fake.set_allowed_updates(params.obj("allowed_updates"))
        if params.flag("drop_pending_updates"):
            fake.pending.clear()
        if url != fake.webhook.url:
            fake.webhook.last_error_date = fake.webhook.last_error_message = None
        fake.webhook.url = url
        fake.webhook.secret_token = secret
        fake.webhook.max_connections = max_connections or 40
        fake.webhook.ip_address = params.text("ip_address")
    fake._kick_delivery()
    return True


@api_method("deleteWebhook")
async def delete_webhook(fake: UpdateQueue, params: Params) -> bool:
    with fake.lock:
        fake.webhook.url = ""
        fake.webhook.secret_token = None
        fake.webhook.last_error_date = fake.webhook.last_error_message = None
        if params.flag("drop_pending_updates"):
            fake.pending.clear()
    return True


@api_method("getWebhookInfo")
async def get_webhook_info(fake: UpdateQueue, params: Params) -> dict[str, Any]:
    return fake.webhook_info()
