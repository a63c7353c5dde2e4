"""User-facing texts from the locale files (ru default, en)."""

from __future__ import annotations

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


class Texts:
    """`texts("menu.title")` in the user's language, formatted with kwargs."""

    def __init__(self, language: str) -> None:
        self.language = language if language in LANGUAGES else DEFAULT_LANGUAGE

    def __call__(self, key: str, **values: Any) -> str:
        template = catalog(self.language).get(key) or catalog(DEFAULT_LANGUAGE)[key]
        return template.format(**values) if values else template
