"""The locale files: complete in both languages, and plural forms right."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from nanobanana.bot.texts import LANGUAGES, Texts, catalog, plural_form

SOURCE = Path(__file__).resolve().parents[2] / "nanobanana"


def placeholders(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field}


def test_every_key_exists_in_both_languages_with_the_same_placeholders():
    ru, en = catalog("ru"), catalog("en")
    assert set(ru) == set(en)
    mismatched = [key for key in ru if placeholders(ru[key]) != placeholders(en[key])]
    assert mismatched == []


def test_every_key_the_code_asks_for_exists():
    used = set()
    for path in SOURCE.rglob("*.py"):
        used |= set(re.findall(r'texts\(\s*"([a-z_]+\.[a-z_.]+)"', path.read_text(encoding="utf-8")))
    assert used, "the scan found no texts() calls at all"
    assert sorted(used - set(catalog("ru"))) == []


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        (1, "1 токен"),
        (2, "2 токена"),
        (4, "4 токена"),
        (5, "5 токенов"),
        (11, "11 токенов"),
        (12, "12 токенов"),
        (21, "21 токен"),
        (22, "22 токена"),
        (0, "0 токенов"),
        (111, "111 токенов"),
        (1001, "1001 токен"),
    ],
)
def test_russian_token_amounts_agree_with_the_number(number, expected):
    assert Texts("ru").tokens(number) == expected


@pytest.mark.parametrize(("number", "expected"), [(1, "1 token"), (0, "0 tokens"), (2, "2 tokens"), (21, "21 tokens")])
def test_english_token_amounts(number, expected):
    assert Texts("en").tokens(number) == expected


def test_a_template_uses_the_plural_spec_and_leaves_other_specs_alone():
    assert "Стоимость: <b>2 токена</b>" in Texts("ru")(
        "create.confirm", model="M", params="p", prompt="x", price=2, available=30
    )
    assert Texts("en")("create.confirm", model="M", params="p", prompt="x", price=1, available=1).count("1 token") == 2
    assert plural_form("ru", -3) == 1


def test_unknown_language_falls_back_to_russian():
    assert Texts("de").language == "ru"
    assert set(LANGUAGES) == {"ru", "en"}
