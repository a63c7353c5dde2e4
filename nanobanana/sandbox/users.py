"""Simulated users: what they send becomes real-shaped updates for the bot.

https://core.telegram.org/bots/api#update
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from nanobanana.sandbox.media import photo_sizes
from nanobanana.sandbox.params import Upload
from nanobanana.sandbox.state import CallbackQuery, PreCheckoutQuery, SimUser
from nanobanana.sandbox.updates import UpdateQueue

UserRef = SimUser | int
_STICKER = b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00/\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00"
_VOICE = b"OggS\x00\x02" + bytes(58)


class UserSimulation(UpdateQueue):
    """Everything a user can do; each call stores the message in the chat and queues the update."""

    def _user(self, user: UserRef) -> SimUser:
        return self.user(user) if isinstance(user, int) else self.user(user.id)

    def _chat(self, user: SimUser, chat_id: int | None) -> dict[str, Any]:
        if chat_id is None or chat_id == user.id:
            return user.private_chat()
        return dict(self.group(chat_id))

    async def _send(self, user: UserRef, fields: dict[str, Any], chat_id: int | None = None) -> dict[str, Any]:
        sim = self._user(user)
        chat = self._chat(sim, chat_id)
        data = {"from": sim.user_dict(), "chat": chat, "date": int(self.wall_clock()), **fields}
        message = self.store_message(chat["id"], data, outgoing=False)
        update = await self.enqueue_update({"message": message.snapshot()})
        return update or {"message": message.snapshot()}

    async def send_text(
        self, user: UserRef, text: str, *, chat_id: int | None = None, reply_to: int | None = None
    ) -> dict[str, Any]:
        """The user sends `text`; a leading /command gets its bot_command entity, as Telegram adds."""
        fields: dict[str, Any] = {"text": text}
        if text.startswith("/") and len(text) > 1:
            command = text.split(maxsplit=1)[0]
            fields["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command.encode("utf-16-le")) // 2}]
        if reply_to is not None:
            original = self.find_message(chat_id or self._user(user).id, reply_to)
            if original is not None:
                fields["reply_to_message"] = original.snapshot()
        return await self._send(user, fields, chat_id)

    async def send_command(
        self, user: UserRef, command: str, args: str = "", *, chat_id: int | None = None
    ) -> dict[str, Any]:
        """`/command args` (the slash is optional in `command`)."""
        text = "/" + command.removeprefix("/")
        return await self.send_text(user, f"{text} {args}".strip(), chat_id=chat_id)

    def _photo_fields(self, content: bytes, filename: str) -> list[dict[str, Any]]:
        stored = self.store_file(content, folder="photos", extension=".jpg", mime_type="image/jpeg")
        stored.file_name = filename
        return photo_sizes(self, stored)

    async def send_photo(
        self, user: UserRef, content: bytes, caption: str | None = None, *, filename: str = "photo.jpg"
    ) -> dict[str, Any]:
        fields: dict[str, Any] = {"photo": self._photo_fields(content, filename)}
        if caption:
            fields["caption"] = caption
        return await self._send(user, fields)

    async def send_album(
        self, user: UserRef, photos: Sequence[bytes], caption: str | None = None
    ) -> list[dict[str, Any]]:
        """Several photos sent at once: one update per photo, sharing media_group_id; caption on the first."""
        group_id = self.new_id("1400")
        updates = []
        for index, content in enumerate(photos):
            fields: dict[str, Any] = {"media_group_id": group_id, "photo": self._photo_fields(content, "photo.jpg")}
            if caption and index == 0:
                fields["caption"] = caption
            updates.append(await self._send(user, fields))
        return updates

    async def send_document(self, user: UserRef, upload: Upload, caption: str | None = None) -> dict[str, Any]:
        stored = self.store_file(
            upload.content, folder="documents", extension="", mime_type=upload.content_type, file_name=upload.filename
        )
        document = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_name": upload.filename,
            "mime_type": upload.content_type or "application/octet-stream",
            "file_size": stored.size,
        }
        fields: dict[str, Any] = {"document": document}
        if caption:
            fields["caption"] = caption
        return await self._send(user, fields)

    async def send_sticker(self, user: UserRef, emoji: str = "🙂") -> dict[str, Any]:
        stored = self.store_file(_STICKER, folder="stickers", extension=".webp", mime_type="image/webp")
        sticker = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
            "file_size": stored.size,
        }
        return await self._send(user, {"sticker": sticker})

    async def send_voice(self, user: UserRef, duration: int = 3) -> dict[str, Any]:
        stored = self.store_file(_VOICE, folder="voice", extension=".oga", mime_type="audio/ogg")
        voice = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "duration": duration,
            "mime_type": "audio/ogg",
            "file_size": stored.size,
        }
        return await self._send(user, {"voice": voice})

    async def press_button(self, user: UserRef, message_id: int, callback_data: str) -> dict[str, Any]:
        """The user taps an inline button; refuses data that no button of the message carries."""
        return await self._on_loop(self._press(self._user(user), message_id, callback_data))

    async def _press(self, sim: SimUser, message_id: int, callback_data: str) -> dict[str, Any]:
        message = self.find_message(sim.id, message_id)
        if message is None:
            raise LookupError(f"no message {message_id} in chat {sim.id}")
        if callback_data not in message.callback_data:
            raise LookupError(f"message {message_id} has no button with callback_data {callback_data!r}")
        query = CallbackQuery(
            id=self.new_id("4200"),
            user_id=sim.id,
            chat_id=sim.id,
            message_id=message_id,
            data=callback_data,
            created=self.clock(),
        )
        with self.lock:
            self.callback_queries[query.id] = query
        body = {
            "id": query.id,
            "from": sim.user_dict(),
            "message": message.snapshot(),
            "chat_instance": str(sim.id * 7919),
            "data": callback_data,
        }
        return await self.enqueue_update({"callback_query": body}) or {"callback_query": body}

    async def send_pre_checkout(
        self,
        user: UserRef,
        *,
        invoice_message_id: int | None = None,
        payload: str | None = None,
        total_amount: int | None = None,
        currency: str = "XTR",
        complete_on_ok: bool = False,
    ) -> dict[str, Any]:
        """The user confirms payment: a pre_checkout_query for an invoice the bot sent (or given values).

        With `complete_on_ok`, an ok answer is followed by the successful_payment message, as in Telegram.
        """
        sim = self._user(user)
        invoice = self.invoices.get((sim.id, invoice_message_id)) if invoice_message_id else None
        if invoice_message_id and invoice is None:
            raise LookupError(f"no invoice message {invoice_message_id} in chat {sim.id}")
        query = PreCheckoutQuery(
            id=self.new_id("5100"),
            user_id=sim.id,
            chat_id=sim.id,
            currency=invoice["currency"] if invoice else currency,
            total_amount=total_amount if total_amount is not None else (invoice or {}).get("total_amount", 1),
            invoice_payload=payload if payload is not None else (invoice or {}).get("payload", ""),
            created=self.clock(),
            complete_on_ok=complete_on_ok,
        )
        with self.lock:
            self.pre_checkout_queries[query.id] = query
        body = {
            "id": query.id,
            "from": sim.user_dict(),
            "currency": query.currency,
            "total_amount": query.total_amount,
            "invoice_payload": query.invoice_payload,
        }
        return await self.enqueue_update({"pre_checkout_query": body}) or {"pre_checkout_query": body}

    async def pay_invoice(self, user: UserRef, invoice_message_id: int) -> dict[str, Any]:
        """The whole Stars flow: pre_checkout_query now, successful_payment once the bot answers ok."""
        return await self.send_pre_checkout(user, invoice_message_id=invoice_message_id, complete_on_ok=True)

    async def send_successful_payment(
        self,
        user: UserRef,
        *,
        payload: str,
        total_amount: int,
        currency: str = "XTR",
        charge_id: str | None = None,
    ) -> dict[str, Any]:
        charge = charge_id or f"stxSANDBOX{next(_charges):08d}"
        payment = {
            "currency": currency,
            "total_amount": total_amount,
            "invoice_payload": payload,
            "telegram_payment_charge_id": charge,
            "provider_payment_charge_id": "",
        }
        if currency == "XTR":
            with self.lock:
                self.star_charges.setdefault(
                    charge,
                    {"user_id": self._user(user).id, "amount": total_amount, "refunded": False},
                )
        return await self._send(user, {"successful_payment": payment})

    async def complete_payment(self, query: PreCheckoutQuery) -> None:
        await self.send_successful_payment(
            query.user_id,
            payload=query.invoice_payload,
            total_amount=query.total_amount,
            currency=query.currency,
        )


_charges = itertools.count(1)
