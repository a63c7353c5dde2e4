"""User-facing texts from the locale files (ru default, en)."""

from __future__ import annotations

import string
from functools import cache
from pathlib import Path
from typing import Any

import yaml

LOCALES_DIR = Path(__file__).resolve().parent / "locales"
LANGUAGES = ("ru", "en")
DEFAULT_LANGUAGE = "ru"


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = str(value)
    return flat


@cache
def catalog(language: str) -> dict[str, str]:
    path = LOCALES_DIR / f"{language}.yaml"
    return _flatten(yaml.safe_load(path.read_text(encoding="utf-8")))


def plural_form(language: str, number: int) -> int:
    """Index of the plural form (CLDR cardinal rules for integers).

    ru: 0 one (1, 21, 101), 1 few (2-4, 22-24), 2 many (0, 5-20, 25);
    en: 0 one (1), 1 other."""
    n = abs(number)
    if language == "ru":
        if n % 10 == 1 and n % 100 != 11:
            return 0
        if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
            return 1
        return 2
    return 0 if n == 1 else 1


class _Formatter(string.Formatter):
    """`{price:tokens}` renders "2 токена": the spec names a `plural.*` key
    whose forms are separated by `|`. Any other spec is Python's own."""

    def __init__(self, language: str) -> None:
        self.language = language

    def format_field(self, value: Any, format_spec: str) -> str:
        forms = catalog(self.language).get(f"plural.{format_spec}") if format_spec else None
        if forms is None or not isinstance(value, int):
            return super().format_field(value, format_spec)
        choices = forms.split("|")
        return f"{value} {choices[min(plural_form(self.language, value), len(choices) - 1)]}"


class Texts:
    """`texts("menu.title")` in the user's language, formatted with kwargs."""

    def __init__(self, language: str) -> None:
        self.language = language if language in LANGUAGES else DEFAULT_LANGUAGE
        self._formatter = _Formatter(self.language)

    def __call__(self, key: str, **values: Any) -> str:
        template = catalog(self.language).get(key) or catalog(DEFAULT_LANGUAGE)[key]
        return self._formatter.format(template, **values) if values else template

    def tokens(self, amount: int) -> str:
        """ "2 токена", "1 token": an amount with the right plural form."""
        return self._formatter.format_field(amount, "tokens")
