"""Delivering outcomes to the chat: results as a preview plus the full-quality
document, failures with their reason, status message edits.

Delivery only ever re-sends what is stored; it never regenerates. One
delivery at a time holds the request's delivery claim, so a re-driven
delivery never sends alongside one still running. Results already sent are
skipped on a retry. A worker killed between Telegram's answer and the
commit that records it leaves that result unrecorded: it is sent again (a
duplicate is better than a paid result lost). A file Telegram will not take
goes as a signed link. Telegram refusing even that (a 400 that no retry will change)
ends the delivery as failed, so the sweep stops re-driving it; transient
errors are retried by the task."""

from __future__ import annotations

import asyncio
import io
import logging
from collections import Counter

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramEntityTooLarge
from aiogram.types import BufferedInputFile, InlineKeyboardMarkup, InputMediaDocument, InputMediaPhoto
from asgiref.sync import sync_to_async
from django.conf import settings
from PIL import Image

from nanobanana.billing.selectors import wallet_balance
from nanobanana.bot import keyboards
from nanobanana.bot.presenters import elapsed_label, failure_reason, summary
from nanobanana.bot.sender import RecipientBlocked, chat_turns, inline_wait_at_most
from nanobanana.bot.texts import Texts
from nanobanana.core import clock
from nanobanana.core.errors import TransientError
from nanobanana.core.tasks import enqueue
from nanobanana.generation.models import DeliveryStatus, GenerationRequest, GenerationResult, RequestStatus
from nanobanana.generation.selectors import request_get
from nanobanana.generation.services import (
    TASK_DELIVER,
    delivery_claim,
    delivery_release,
    request_mark_delivered,
    result_mark_sent,
)
from nanobanana.media.storage import media_link, media_read

logger = logging.getLogger(__name__)
PREVIEW_MAX_SIDE = 1280
# A result at most this big, and no wider or taller than PREVIEW_MAX_SIDE, is
# its own preview when it is a JPEG, or a PNG without transparency (Telegram
# shows transparent pixels of a photo as black): nothing is re-encoded.
PREVIEW_REUSE_MAX_BYTES = 1024 * 1024
MEDIA_GROUP_MAX = 10
# A progress edit never waits in a worker slot for Telegram's limits: it is
# retried by its task when its slot is near, and dropped when it is further
# away than this (the next progress edit, or the result, supersedes it).
STATUS_INLINE_WAIT_SECONDS = 0.25
STATUS_RETRY_WITHIN_SECONDS = 5.0
# Deliveries of one `deliver_many` in flight at once, and when one that
# failed transiently (without a retry-after) is tried again on its own.
DELIVER_CONCURRENCY = 8
DELIVER_RETRY_SECONDS = 5.0


def preview_image(data: bytes) -> tuple[bytes, str] | None:
    """A compressed preview Telegram shows inline, with its file extension;
    None if `data` is not an image. A small enough JPEG or opaque PNG is
    returned as it is (reading its header costs nothing; decoding, resizing
    and encoding a 1024 px image costs about 16 ms of CPU)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            extension = {"JPEG": "jpg", "PNG": "png"}.get(image.format or "")
            small = len(data) <= PREVIEW_REUSE_MAX_BYTES and max(image.size) <= PREVIEW_MAX_SIDE
            opaque = image.mode in ("RGB", "L") and "transparency" not in image.info
            if extension and small and opaque:
                return data, extension
            image.thumbnail((PREVIEW_MAX_SIDE, PREVIEW_MAX_SIDE))
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, format="JPEG", quality=85)
            return buffer.getvalue(), "jpg"
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


async def status_edit(bot: Bot, request: GenerationRequest, text: str, markup: InlineKeyboardMarkup | None) -> None:
    """Edit the request's status message; send a new one if it is gone."""
    if request.status_message_id:
        try:
            await bot.edit_message_text(
                text=text, chat_id=request.chat_id, message_id=request.status_message_id, reply_markup=markup
            )
            return
        except TelegramBadRequest as error:
            if "not modified" in error.message:
                return
    await bot.send_message(request.chat_id, text, reply_markup=markup)


async def status_processing(bot: Bot, request_id: int) -> None:
    request = await sync_to_async(request_get)(request_id=request_id)
    if request.status != RequestStatus.PROCESSING:
        return
    texts = Texts(request.user.language)
    if request.model.kind == "video" and request.started_at is not None:
        elapsed = elapsed_label((clock.now() - request.started_at).total_seconds())
        text = texts("status.processing_video", summary=summary(texts, request), elapsed=elapsed)
    else:
        text = texts("status.processing", summary=summary(texts, request))
    try:
        # The cancel button stays while the job waits: the vendor is asked to stop it.
        markup = keyboards.queued(texts, request_id=request.pk)
        # One edit a run: a busy chat gives the slot back with a promised turn.
        with inline_wait_at_most(STATUS_INLINE_WAIT_SECONDS), chat_turns():
            await status_edit(bot, request, text, markup)
    except RecipientBlocked:
        return
    except TransientError as error:
        if error.retry_after is not None and error.retry_after > STATUS_RETRY_WITHIN_SECONDS:
            logger.info("progress edit skipped: no send slot soon", extra={"request_id": request.pk})
            return
        raise  # the task retries when the slot is near


async def deliver(bot: Bot, request_id: int) -> str:
    """Tell the user how their request ended, once. Returns the delivery
    status ("busy" when another delivery holds the claim)."""
    claim = await sync_to_async(delivery_claim)(request_id=request_id)
    if claim is None:
        request = await sync_to_async(request_get)(request_id=request_id)
        ended = request.status in (RequestStatus.SUCCEEDED, RequestStatus.FAILED)
        return "busy" if ended and request.delivery_status == DeliveryStatus.PENDING else str(request.delivery_status)
    try:
        return await _deliver_claimed(bot, request_id)
    except Exception:
        # A retry follows (a transient error): it takes the claim again.
        await sync_to_async(delivery_release)(request_id=request_id, claim=claim)
        raise


async def deliver_many(bot: Bot, request_ids: list[int]) -> dict[str, int]:
    """Deliver several outcomes with their sends overlapped (at most
    `DELIVER_CONCURRENCY` at once; the sender still spaces them by
    Telegram's limits). Each is `deliver`, with its claim; one that fails
    transiently is retried by its own `delivery.deliver`, and any other
    error is logged and left to the sweep. Returns how many ended how."""
    gate = asyncio.Semaphore(DELIVER_CONCURRENCY)

    async def one(request_id: int) -> str:
        async with gate:
            try:
                return await deliver(bot, request_id)
            except TransientError as error:
                countdown = error.retry_after or DELIVER_RETRY_SECONDS
                await sync_to_async(enqueue)(TASK_DELIVER, request_id, countdown=countdown)
                return "retrying"
            except Exception:
                logger.exception("delivery failed", extra={"request_id": request_id})
                return "error"

    return dict(Counter(await asyncio.gather(*(one(request_id) for request_id in request_ids))))


async def _deliver_claimed(bot: Bot, request_id: int) -> str:
    request = await sync_to_async(request_get)(request_id=request_id)
    texts = Texts(request.user.language)
    try:
        if request.status == RequestStatus.SUCCEEDED:
            outcome = await _send_results(bot, request, texts)
            wallet = await sync_to_async(wallet_balance)(user=request.user)
            captured = request.hold.captured_amount
            text = texts("status.done", summary=summary(texts, request), charged=captured, available=wallet.available)
        else:  # failed: the claim is only given for an ended request
            outcome = DeliveryStatus.DELIVERED
            reason = failure_reason(texts, request.error_code)
            text = texts("status.failed", summary=summary(texts, request), reason=reason, price=request.price)
        await status_edit(bot, request, text, keyboards.finished(texts, request_id=request.pk))
    except RecipientBlocked:
        outcome = DeliveryStatus.BLOCKED
    except TelegramBadRequest as error:
        logger.exception("delivery refused by telegram", extra={"request_id": request.pk, "error": error.message})
        outcome = DeliveryStatus.FAILED
    await sync_to_async(request_mark_delivered)(request_id=request.pk, delivery_status=outcome)
    return str(outcome)


def _results_of(request: GenerationRequest) -> list[GenerationResult]:
    return list(request.results.order_by("index"))


async def _send_results(bot: Bot, request: GenerationRequest, texts: Texts) -> str:
    results = await sync_to_async(_results_of)(request)
    total = len(results)
    pending = [result for result in results if result.sent_at is None]
    fits = [result for result in pending if result.size <= settings.TELEGRAM_UPLOAD_LIMIT_BYTES]
    linked = [result for result in pending if result not in fits]
    for start in range(0, len(fits), MEDIA_GROUP_MAX):
        group = fits[start : start + MEDIA_GROUP_MAX]
        try:
            await _send_files(bot, request, texts, group, total)
        except TelegramEntityTooLarge:
            linked += group
            continue
        except TelegramBadRequest as error:
            # Too big, or any other refusal of the file itself: the link
            # still gets the result to the user.
            logger.warning("file refused, sending a link", extra={"request_id": request.pk, "error": error.message})
            linked += group
            continue
        for result in group:
            await sync_to_async(result_mark_sent)(result_id=result.pk)
    for result in sorted(linked, key=lambda item: item.index):
        url = media_link(path=result.path)
        await bot.send_message(request.chat_id, texts("result.link", index=result.index + 1, total=total, url=url))
        await sync_to_async(result_mark_sent)(result_id=result.pk)
    return DeliveryStatus.LINKED if linked else DeliveryStatus.DELIVERED


async def _send_files(
    bot: Bot, request: GenerationRequest, texts: Texts, group: list[GenerationResult], total: int
) -> None:
    """A preview (photo) and the full-quality document for each result; an
    album of each when there are several."""
    files = []
    for result in group:
        data = await sync_to_async(media_read)(path=result.path)
        name = f"nanobanana-{request.pk}-{result.index + 1}.{result.path.rsplit('.', 1)[-1]}"
        caption = texts("result.caption", model=request.model.title, index=result.index + 1, total=total)
        files.append((data, name, caption, preview_image(data) if result.content_type.startswith("image/") else None))
    previews = [(preview, caption) for _, _, caption, preview in files if preview is not None]
    if len(previews) == 1:
        (preview, extension), caption = previews[0]
        await bot.send_photo(request.chat_id, BufferedInputFile(preview, f"preview.{extension}"), caption=caption)
    elif previews:
        await bot.send_media_group(
            request.chat_id,
            [
                InputMediaPhoto(media=BufferedInputFile(preview, f"preview-{index}.{extension}"), caption=caption)
                for index, ((preview, extension), caption) in enumerate(previews)
            ],
        )
    if len(files) == 1:
        data, name, caption, _ = files[0]
        await bot.send_document(request.chat_id, BufferedInputFile(data, name), caption=caption)
    else:
        await bot.send_media_group(
            request.chat_id,
            [
                InputMediaDocument(media=BufferedInputFile(data, name), caption=caption)
                for data, name, caption, _ in files
            ],
        )
