"""Create an image or a video: model -> parameters -> (photos) -> prompt ->
price -> confirm.

The draft lives in FSM data: the kind, the model, its parameters, the
prompt, and the media paths of photos the user sent (an edit's references,
or a video's start and end frames), saved to media storage on arrival. The confirm button carries a nonce that, with
the user's id, is the request's idempotency key: repeated or concurrent taps
make one request and one hold."""

from __future__ import annotations

import contextlib
import secrets
from typing import Any

from aiogram import F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer
from django.conf import settings

from nanobanana.accounts.models import TelegramUser
from nanobanana.billing.selectors import wallet_balance
from nanobanana.bot import keyboards
from nanobanana.bot.callbacks import CancelRequestCb, ConfirmCb, MenuCb, ModelCb, ParamCb, RepeatCb, StepCb
from nanobanana.bot.handlers.common import run_sync, show, toast
from nanobanana.bot.presenters import escape, params_label, shorten, summary
from nanobanana.bot.texts import Texts
from nanobanana.catalog.models import AIModel
from nanobanana.catalog.selectors import model_offered, models_offered
from nanobanana.core.errors import Conflict, InsufficientFunds, NotFound, ProviderError, ValidationError
from nanobanana.generation.selectors import request_by_key, request_for_user, requests_ahead
from nanobanana.generation.services import prompt_validate, request_cancel, request_quote, request_submit
from nanobanana.media.download import content_type_of
from nanobanana.media.storage import media_save

router = Router(name=__name__)
INPUT_TYPES = ("image/jpeg", "image/png", "image/webp")


class CreateImage(StatesGroup):
    params = State()
    prompt = State()
    confirm = State()


def _defaults(model: AIModel) -> dict[str, Any]:
    return {spec["name"]: spec.get("default", spec["choices"][0]) for spec in model.parameters}


async def _show_models(callback: CallbackQuery, state: FSMContext, texts: Texts, kind: str) -> None:
    await state.clear()
    await state.set_data({"kind": kind})
    offered = await run_sync(models_offered, kind=kind)
    if not offered:
        await show(callback, texts("create.no_models"), keyboards.back_to_menu(texts))
        return
    heading = texts("create.choose_video_model" if kind == "video" else "create.choose_model")
    await show(callback, heading, keyboards.models(texts, offered))


async def _show_params(callback: CallbackQuery, state: FSMContext, texts: Texts, model: AIModel) -> None:
    data = await state.get_data()
    await state.set_state(CreateImage.params)
    text = texts("create.params", model=escape(model.title), description=escape(model.description(texts.language)))
    await show(callback, text, keyboards.parameters(texts, model, data.get("params", {})))


async def _model_or_alert(answer: CallbackAnswer, texts: Texts, slug: str | None) -> AIModel | None:
    model = await run_sync(model_offered, slug=slug or "")
    if model is None:
        toast(answer, texts("create.model_unavailable"), alert=True)
    return model


@router.callback_query(MenuCb.filter(F.action == "create"))
async def create_start(callback: CallbackQuery, state: FSMContext, texts: Texts) -> None:
    await _show_models(callback, state, texts, "image")


@router.callback_query(MenuCb.filter(F.action == "create_video"))
async def create_video_start(callback: CallbackQuery, state: FSMContext, texts: Texts) -> None:
    await _show_models(callback, state, texts, "video")


@router.callback_query(ModelCb.filter())
async def model_chosen(
    callback: CallbackQuery, callback_answer: CallbackAnswer, callback_data: ModelCb, state: FSMContext, texts: Texts
) -> None:
    model = await _model_or_alert(callback_answer, texts, callback_data.slug)
    if model is None:
        return
    await state.set_data({"kind": model.kind, "model": model.slug, "params": _defaults(model), "inputs": []})
    await _show_params(callback, state, texts, model)


@router.callback_query(StateFilter(CreateImage.params), ParamCb.filter())
async def param_chosen(
    callback: CallbackQuery, callback_answer: CallbackAnswer, callback_data: ParamCb, state: FSMContext, texts: Texts
) -> None:
    data = await state.get_data()
    model = await _model_or_alert(callback_answer, texts, data.get("model"))
    if model is None:
        return
    spec = next((spec for spec in model.parameters if spec["name"] == callback_data.name), None)
    if spec is None or not 0 <= callback_data.choice < len(spec["choices"]):
        return
    params = {**data.get("params", {}), callback_data.name: spec["choices"][callback_data.choice]}
    await state.update_data(params=params)
    if isinstance(callback.message, Message) and data.get("params") != params:
        await callback.message.edit_reply_markup(reply_markup=keyboards.parameters(texts, model, params))


@router.callback_query(StateFilter(CreateImage.params), StepCb.filter(F.action == "back"))
async def params_back(callback: CallbackQuery, state: FSMContext, texts: Texts) -> None:
    data = await state.get_data()
    await _show_models(callback, state, texts, str(data.get("kind", "image")))


@router.callback_query(StateFilter(CreateImage.params), StepCb.filter(F.action == "next"))
async def params_done(
    callback: CallbackQuery, callback_answer: CallbackAnswer, state: FSMContext, texts: Texts
) -> None:
    data = await state.get_data()
    model = await _model_or_alert(callback_answer, texts, data.get("model"))
    if model is None:
        return
    await state.set_state(CreateImage.prompt)
    text = texts(
        "create.ask_video_prompt" if model.kind == "video" else "create.ask_prompt",
        model=escape(model.title),
        params=params_label(texts, data.get("params", {})),
        limit=settings.PROMPT_MAX_LENGTH,
    )
    if model.max_input_images:
        text += "\n\n" + texts(
            "create.photos_hint_video" if model.kind == "video" else "create.photos_hint", limit=model.max_input_images
        )
    await show(callback, text, keyboards.prompt_step(texts))
    if isinstance(callback.message, Message):
        await state.update_data(prompt_message_id=callback.message.message_id)


async def _retire_prompt_buttons(message: Message, state: FSMContext) -> None:
    """Take "Back/Cancel" off the message that asked for the prompt once a
    prompt arrived, so old buttons do not linger above the new step."""
    message_id = (await state.get_data()).get("prompt_message_id")
    if not message_id or message.bot is None:
        return
    with contextlib.suppress(TelegramBadRequest):
        await message.bot.edit_message_reply_markup(chat_id=message.chat.id, message_id=message_id, reply_markup=None)
    await state.update_data(prompt_message_id=None)


@router.callback_query(StateFilter(CreateImage.prompt, CreateImage.confirm), StepCb.filter(F.action == "params"))
async def prompt_back(
    callback: CallbackQuery, callback_answer: CallbackAnswer, state: FSMContext, texts: Texts
) -> None:
    data = await state.get_data()
    model = await _model_or_alert(callback_answer, texts, data.get("model"))
    if model is not None:
        await _show_params(callback, state, texts, model)


@router.callback_query(StepCb.filter(F.action == "cancel"))
async def draft_cancel(callback: CallbackQuery, state: FSMContext, texts: Texts) -> None:
    await state.clear()
    await show(callback, texts("create.cancelled"), keyboards.main_menu(texts))


async def _ask_confirmation(message: Message, state: FSMContext, user: TelegramUser, texts: Texts) -> None:
    data = await state.get_data()
    try:
        quote = await run_sync(request_quote, model_slug=data.get("model", ""), raw_params=data.get("params", {}))
    except (NotFound, ValidationError):
        await state.clear()
        await message.answer(texts("create.model_unavailable"), reply_markup=keyboards.main_menu(texts))
        return
    nonce = secrets.token_hex(8)
    await state.update_data(nonce=nonce, params=quote.params)
    await state.set_state(CreateImage.confirm)
    wallet = await run_sync(wallet_balance, user=user)
    text = texts(
        "create.confirm",
        model=escape(quote.model.title),
        params=params_label(texts, quote.params),
        prompt=escape(shorten(data["prompt"])),
        price=quote.price,
        available=wallet.available,
    )
    text += "\n" + texts(
        "create.price_per_unit", price=quote.model.price_per_unit, unit=texts(f"unit.{quote.model.unit}")
    )
    if data.get("inputs"):
        text += "\n" + texts("create.photos_attached", count=len(data["inputs"]))
    await message.answer(text, reply_markup=keyboards.confirm(texts, nonce=nonce, price=quote.price))


@router.message(StateFilter(CreateImage.prompt, CreateImage.confirm), F.photo)
async def photo_received(message: Message, state: FSMContext, user: TelegramUser, texts: Texts) -> None:
    """A photo (or one photo of an album) for the draft: saved to media
    storage at once; its caption, if any, is the prompt."""
    data = await state.get_data()
    model = await run_sync(model_offered, slug=data.get("model", ""))
    if model is None:
        await message.answer(texts("create.model_unavailable"), reply_markup=keyboards.main_menu(texts))
        return
    inputs = list(data.get("inputs", []))
    if not model.max_input_images:
        if await _first_refusal_of_album(message, state, data):
            await message.answer(texts("create.photos_not_taken"), reply_markup=keyboards.prompt_step(texts))
        return
    if len(inputs) >= model.max_input_images:
        if await _first_refusal_of_album(message, state, data):
            text = texts("create.photos_too_many", limit=model.max_input_images)
            await message.answer(text, reply_markup=keyboards.prompt_step(texts))
        return
    photo = (message.photo or [])[-1]
    if photo.file_size and photo.file_size > settings.TELEGRAM_PHOTO_LIMIT_BYTES:
        await message.answer(texts("create.photo_too_large"), reply_markup=keyboards.prompt_step(texts))
        return
    if message.bot is None:
        return
    buffer = await message.bot.download(photo.file_id)
    data_bytes = buffer.read() if buffer is not None else b""
    try:
        content_type = content_type_of(data_bytes, wanted=INPUT_TYPES)
        stored = await run_sync(
            media_save, data=data_bytes, content_type=content_type, prefix="inputs", filename="photo"
        )
    except (ValidationError, ProviderError):
        await message.answer(texts("create.photo_unreadable"), reply_markup=keyboards.prompt_step(texts))
        return
    # Re-read: other photos of the same album may have been stored meanwhile.
    inputs = [*list((await state.get_data()).get("inputs", [])), stored.path][: model.max_input_images]
    await state.update_data(inputs=inputs)
    caption = (message.caption or "").strip()
    if caption:
        await _prompt_given(message, state, user, texts, caption)
        return
    if message.media_group_id and len(inputs) > 1:
        return  # one acknowledgement per album is enough
    text = texts("create.photo_received", count=len(inputs), limit=model.max_input_images)
    await message.answer(text, reply_markup=keyboards.prompt_step(texts))


async def _first_refusal_of_album(message: Message, state: FSMContext, data: dict[str, Any]) -> bool:
    """Whether to answer this refused photo: yes, unless it is one more photo
    of an album already answered (an album of ten is one refusal, not ten;
    its photos reach the handler one after another, bot/updates.py)."""
    album = message.media_group_id
    if album is None:
        return True
    if data.get("refused_album") == album:
        return False
    await state.update_data(refused_album=album)
    return True


@router.message(StateFilter(CreateImage.prompt, CreateImage.confirm), F.text)
async def prompt_received(message: Message, state: FSMContext, user: TelegramUser, texts: Texts) -> None:
    await _prompt_given(message, state, user, texts, message.text or "")


async def _prompt_given(message: Message, state: FSMContext, user: TelegramUser, texts: Texts, raw: str) -> None:
    try:
        prompt = prompt_validate(prompt=raw)
    except ValidationError as error:
        if error.code == "prompt_too_long":
            text = texts("create.prompt_too_long", length=len(raw.strip()), limit=settings.PROMPT_MAX_LENGTH)
        else:
            text = texts("create.prompt_empty")
        await _retire_prompt_buttons(message, state)
        asked = await message.answer(text, reply_markup=keyboards.prompt_step(texts))
        await state.update_data(prompt_message_id=asked.message_id)
        return
    await _retire_prompt_buttons(message, state)
    await state.update_data(prompt=prompt)
    await _ask_confirmation(message, state, user, texts)


@router.callback_query(ConfirmCb.filter())
async def confirm(
    callback: CallbackQuery,
    callback_answer: CallbackAnswer,
    callback_data: ConfirmCb,
    state: FSMContext,
    user: TelegramUser,
    texts: Texts,
) -> None:
    key = f"{user.telegram_id}:{callback_data.nonce}"
    data = await state.get_data()
    if data.get("nonce") != callback_data.nonce:
        existing = await run_sync(request_by_key, idempotency_key=key)
        toast(callback_answer, texts("create.already_submitted" if existing else "create.draft_expired"))
        return
    message = callback.message
    try:
        request, created = await run_sync(
            request_submit,
            user=user,
            model_slug=data["model"],
            raw_params=data.get("params", {}),
            prompt=data["prompt"],
            chat_id=callback.from_user.id,
            idempotency_key=key,
            status_message_id=message.message_id if isinstance(message, Message) else None,
            input_paths=list(data.get("inputs", [])),
        )
    except InsufficientFunds as error:
        text = texts("create.insufficient", required=error.required, available=error.available)
        await show(callback, text, keyboards.insufficient(texts))
        return
    except (NotFound, ValidationError):
        await state.clear()
        await show(callback, texts("create.model_unavailable"), keyboards.main_menu(texts))
        return
    await state.clear()
    if not created:
        toast(callback_answer, texts("create.already_submitted"))
        return
    ahead = await run_sync(requests_ahead, request=request)
    text = (
        texts("status.queued_behind", summary=summary(texts, request), ahead=ahead)
        if ahead
        else texts("status.queued", summary=summary(texts, request))
    )
    await show(callback, text, keyboards.queued(texts, request_id=request.pk))


@router.callback_query(CancelRequestCb.filter())
async def cancel_request(
    callback: CallbackQuery,
    callback_answer: CallbackAnswer,
    callback_data: CancelRequestCb,
    user: TelegramUser,
    texts: Texts,
) -> None:
    try:
        request = await run_sync(request_cancel, request_id=callback_data.request_id, user=user)
    except (Conflict, NotFound):
        toast(callback_answer, texts("status.cannot_cancel"), alert=True)
        return
    await show(callback, texts("status.cancelled", price=request.price), keyboards.main_menu(texts))


@router.callback_query(RepeatCb.filter())
async def repeat(
    callback: CallbackQuery,
    callback_answer: CallbackAnswer,
    callback_data: RepeatCb,
    state: FSMContext,
    user: TelegramUser,
    texts: Texts,
) -> None:
    previous = await run_sync(request_for_user, request_id=callback_data.request_id, user=user)
    if previous is None:
        toast(callback_answer, texts("create.draft_expired"), alert=True)
        return
    model = await _model_or_alert(callback_answer, texts, previous.model.slug)
    if model is None or not isinstance(callback.message, Message):
        return
    await state.set_data(
        {
            "kind": model.kind,
            "model": model.slug,
            "params": previous.params,
            "prompt": previous.prompt,
            "inputs": list(previous.input_paths or []),
        }
    )
    await _ask_confirmation(callback.message, state, user, texts)
