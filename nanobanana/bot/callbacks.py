"""Callback data for inline buttons; each packs into Telegram's 64 bytes."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData


class MenuCb(CallbackData, prefix="m"):
    action: str  # create, balance, history, settings, help, topup, promo, daily, invite, home


class ModelCb(CallbackData, prefix="md"):
    slug: str


class ParamCb(CallbackData, prefix="pa"):
    name: str
    choice: int  # index into the parameter's choices (values may contain ':')


class StepCb(CallbackData, prefix="st"):
    action: str  # next, back, cancel


class ConfirmCb(CallbackData, prefix="ok"):
    nonce: str


class CancelRequestCb(CallbackData, prefix="cx"):
    request_id: int


class RepeatCb(CallbackData, prefix="rp"):
    request_id: int


class LanguageCb(CallbackData, prefix="lg"):
    language: str


class BuyCb(CallbackData, prefix="buy"):
    method: str  # stars, card
    package_id: int
