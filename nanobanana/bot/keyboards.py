"""Inline keyboards. Texts come from the locale files via `Texts`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from nanobanana.bot.callbacks import (
    BuyCb,
    CancelRequestCb,
    ConfirmCb,
    LanguageCb,
    MenuCb,
    ModelCb,
    ParamCb,
    RepeatCb,
    StepCb,
)
from nanobanana.bot.texts import Texts
from nanobanana.catalog.models import AIModel
from nanobanana.payments.models import TokenPackage


def main_menu(texts: Texts) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=texts("menu.create_image"), callback_data=MenuCb(action="create"))
    builder.button(text=texts("menu.create_video"), callback_data=MenuCb(action="create_video"))
    builder.button(text=texts("menu.balance"), callback_data=MenuCb(action="balance"))
    builder.button(text=texts("menu.history"), callback_data=MenuCb(action="history"))
    builder.button(text=texts("menu.settings"), callback_data=MenuCb(action="settings"))
    builder.button(text=texts("menu.help"), callback_data=MenuCb(action="help"))
    builder.adjust(2, 2, 2)
    return builder.as_markup()


def back_to_menu(texts: Texts) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=texts("common.menu"), callback_data=MenuCb(action="home"))
    return builder.as_markup()


def balance(texts: Texts) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=texts("balance.topup"), callback_data=MenuCb(action="topup"))
    builder.button(text=texts("balance.daily"), callback_data=MenuCb(action="daily"))
    builder.button(text=texts("balance.promo"), callback_data=MenuCb(action="promo"))
    builder.button(text=texts("balance.invite"), callback_data=MenuCb(action="invite"))
    builder.button(text=texts("common.menu"), callback_data=MenuCb(action="home"))
    builder.adjust(1, 2, 1, 1)
    return builder.as_markup()


def topup(texts: Texts, packages: Sequence[TokenPackage], *, card: bool) -> InlineKeyboardMarkup:
    """One row per package: Stars, and card when lava.top is configured and
    the package has a card price."""
    builder = InlineKeyboardBuilder()
    widths: list[int] = []
    for package in packages:
        builder.button(
            text=texts("topup.stars_button", tokens=package.tokens, stars=package.price_stars),
            callback_data=BuyCb(method="stars", package_id=package.pk),
        )
        width = 1
        if card and package.sold_by_card:
            builder.button(
                text=texts("topup.card_button", tokens=package.tokens, rub=rub(package.price_rub)),
                callback_data=BuyCb(method="card", package_id=package.pk),
            )
            width = 2
        widths.append(width)
    builder.button(text=texts("balance.promo"), callback_data=MenuCb(action="promo"))
    builder.button(text=texts("common.back"), callback_data=MenuCb(action="balance"))
    builder.adjust(*widths, 1, 1)
    return builder.as_markup()


def rub(amount: object) -> str:
    """99.00 -> "99", 99.50 -> "99.50"."""
    text = f"{amount}"
    return text[:-3] if text.endswith(".00") else text


def pay_link(texts: Texts, *, url: str, amount: str) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=texts("payment.card_pay_button", rub=amount), url=url)
    builder.button(text=texts("common.back"), callback_data=MenuCb(action="topup"))
    builder.adjust(1)
    return builder.as_markup()


def cancel_input(texts: Texts) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=texts("create.cancel_button"), callback_data=MenuCb(action="balance"))
    return builder.as_markup()


def models(texts: Texts, offered: Sequence[AIModel]) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for model in offered:
        label = f"{model.title} · {model.price_per_unit} {texts(f'unit_short.{model.unit}')}"
        builder.button(text=label, callback_data=ModelCb(slug=model.slug))
    builder.button(text=texts("common.menu"), callback_data=MenuCb(action="home"))
    builder.adjust(1)
    return builder.as_markup()


def parameters(texts: Texts, model: AIModel, chosen: dict[str, Any]) -> InlineKeyboardMarkup:
    """One row of choices per parameter in the model's schema; the current
    choice is marked. Built from the catalog, never written per model."""
    builder = InlineKeyboardBuilder()
    widths: list[int] = []
    for spec in model.parameters:
        choices = spec["choices"]
        for index, value in enumerate(choices):
            mark = "• " if chosen.get(spec["name"]) == value else ""
            builder.button(text=f"{mark}{value}", callback_data=ParamCb(name=spec["name"], choice=index))
        widths.append(len(choices))
    builder.button(text=texts("common.back"), callback_data=StepCb(action="back"))
    builder.button(text=texts("create.next"), callback_data=StepCb(action="next"))
    builder.adjust(*widths, 2)
    return builder.as_markup()


def prompt_step(texts: Texts) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=texts("common.back"), callback_data=StepCb(action="params"))
    builder.button(text=texts("create.cancel_button"), callback_data=StepCb(action="cancel"))
    return builder.as_markup()


def confirm(texts: Texts, *, nonce: str, price: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=texts("create.confirm_button", price=price), callback_data=ConfirmCb(nonce=nonce))
    builder.button(text=texts("create.cancel_button"), callback_data=StepCb(action="cancel"))
    builder.adjust(1)
    return builder.as_markup()


def insufficient(texts: Texts) -> InlineKeyboardMarkup:
    return balance(texts)


def queued(texts: Texts, *, request_id: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=texts("status.cancel_button"), callback_data=CancelRequestCb(request_id=request_id))
    return builder.as_markup()


def finished(texts: Texts, *, request_id: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=texts("status.repeat_button"), callback_data=RepeatCb(request_id=request_id))
    builder.button(text=texts("common.menu"), callback_data=MenuCb(action="home"))
    return builder.as_markup()


def history(texts: Texts, request_ids: Sequence[int]) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for request_id in request_ids:
        builder.button(text=texts("history.repeat", id=request_id), callback_data=RepeatCb(request_id=request_id))
    builder.button(text=texts("common.menu"), callback_data=MenuCb(action="home"))
    builder.adjust(*([3] * (len(request_ids) // 3)), len(request_ids) % 3 or 1, 1)
    return builder.as_markup()


def settings(texts: Texts) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    other = "en" if texts.language == "ru" else "ru"
    builder.button(text=texts("settings.switch"), callback_data=LanguageCb(language=other))
    builder.button(text=texts("common.menu"), callback_data=MenuCb(action="home"))
    builder.adjust(1)
    return builder.as_markup()
