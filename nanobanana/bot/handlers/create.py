"""Create an image: model -> parameters -> prompt -> price -> confirm.

The draft lives in FSM data. The confirm button carries a nonce that, with
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
from nanobanana.core.errors import Conflict, InsufficientFunds, NotFound, ValidationError
from nanobanana.generation.selectors import request_by_key, request_for_user
from nanobanana.generation.services import prompt_validate, request_cancel, request_quote, request_submit

router = Router(name=__name__)


class CreateImage(StatesGroup):
    params = State()
    prompt = State()
    confirm = State()


def _defaults(model: AIModel) -> dict[str, Any]:
    return {spec["name"]: spec.get("default", spec["choices"][0]) for spec in model.parameters}


async def _show_models(callback: CallbackQuery, state: FSMContext, texts: Texts) -> None:
    await state.clear()
    offered = await run_sync(models_offered, kind="image")
    if not offered:
        await show(callback, texts("create.no_models"), keyboards.back_to_menu(texts))
        return
    await show(callback, texts("create.choose_model"), keyboards.models(texts, offered))


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
    await _show_models(callback, state, texts)


@router.callback_query(ModelCb.filter())
async def model_chosen(
    callback: CallbackQuery, callback_answer: CallbackAnswer, callback_data: ModelCb, state: FSMContext, texts: Texts
) -> None:
    model = await _model_or_alert(callback_answer, texts, callback_data.slug)
    if model is None:
        return
    await state.set_data({"model": model.slug, "params": _defaults(model)})
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
    await _show_models(callback, state, texts)


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
        "create.ask_prompt",
        model=escape(model.title),
        params=params_label(texts, data.get("params", {})),
        limit=settings.PROMPT_MAX_LENGTH,
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
    await message.answer(text, reply_markup=keyboards.confirm(texts, nonce=nonce, price=quote.price))


@router.message(StateFilter(CreateImage.prompt, CreateImage.confirm), F.text)
async def prompt_received(message: Message, state: FSMContext, user: TelegramUser, texts: Texts) -> None:
    raw = message.text or ""
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
    await show(
        callback,
        texts("status.queued", summary=summary(texts, request)),
        keyboards.queued(texts, request_id=request.pk),
    )


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
    await state.set_data({"model": model.slug, "params": previous.params, "prompt": previous.prompt})
    await _ask_confirmation(callback.message, state, user, texts)
