"""Message text checks: HTML parse mode to text + entities, and reply markup validation.

https://core.telegram.org/bots/api#html-style
https://core.telegram.org/bots/api#inlinekeyboardmarkup
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

from nanobanana.sandbox.errors import bad_request

ENTITY_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "code": "code",
    "pre": "pre",
    "a": "text_link",
    "tg-spoiler": "spoiler",
    "span": "spoiler",  # only as <span class="tg-spoiler">
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class _EntityParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.length = 0  # in UTF-16 code units, as Telegram counts offsets
        self.open: list[tuple[str, int, dict[str, str]]] = []
        self.entities: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ENTITY_TAGS or (tag == "span" and dict(attrs).get("class") != "tg-spoiler"):
            raise bad_request(f'can\'t parse entities: Unsupported start tag "{tag}" at byte offset {self.length}')
        if tag == "a" and not dict(attrs).get("href"):
            raise bad_request("can't parse entities: Can't find end tag corresponding to start tag \"a\"")
        self.open.append((tag, self.length, {key: value or "" for key, value in attrs}))

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1][0] != tag:
            raise bad_request(
                f'can\'t parse entities: Unmatched end tag at byte offset {self.length}, expected "{tag}"'
            )
        name, start, attrs = self.open.pop()
        if self.length == start:
            return  # Telegram drops empty entities
        entity: dict[str, Any] = {"type": ENTITY_TAGS[name], "offset": start, "length": self.length - start}
        if name == "a":
            entity["url"] = attrs.get("href", "")
        if name == "pre" and self.entities and self.entities[-1]["type"] == "code":
            inner = self.entities[-1]
            if inner["offset"] == start and inner.get("language") is None:
                language = _language(inner.pop("_class", ""))
                self.entities.pop()
                if language:
                    entity["language"] = language
        if name == "code":
            entity["_class"] = attrs.get("class", "")
        self.entities.append(entity)

    def handle_data(self, data: str) -> None:
        self.parts.append(data)
        self.length += utf16_len(data)


def _language(css_class: str) -> str | None:
    return css_class.removeprefix("language-") if css_class.startswith("language-") else None


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    """Text without tags and its entities, or Telegram's "can't parse entities" error."""
    parser = _EntityParser()
    parser.feed(source)
    parser.close()
    if parser.open:
        tag = parser.open[-1][0]
        raise bad_request(f"can't parse entities: Can't find end tag corresponding to start tag \"{tag}\"")
    for entity in parser.entities:
        entity.pop("_class", None)
    entities = sorted(parser.entities, key=lambda entity: (entity["offset"], -entity["length"]))
    return "".join(parser.parts), entities


# Telegram finds these in any text by itself and adds them to the entities.
AUTO_ENTITIES = re.compile(
    r"(?P<url>https?://[^\s<>\"]+[^\s<>\".,;:!?)\]'])|(?<![\w/])(?P<bot_command>/[A-Za-z0-9_]{1,32}(?:@\w+)?)(?![\w/])"
    r"|(?<![\w@])(?P<mention>@[A-Za-z]\w{3,31})\b"
)


def format_text(text: str, parse_mode: str | None, entities: Any) -> tuple[str, list[dict[str, Any]]]:
    """Apply parse_mode (HTML parsed; Markdown kept as plain text) or explicit entities, then
    add the url, bot_command and mention entities Telegram detects on its own."""
    if parse_mode and parse_mode.upper() == "HTML":
        text, found = parse_html(text)
    elif isinstance(entities, list):
        found = [entity for entity in entities if isinstance(entity, dict)]
    else:
        found = []
    return text, _with_auto_entities(text, found)


def _with_auto_entities(text: str, entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    blocking = {"code", "pre", "text_link", "url", "bot_command", "mention", "text_mention"}
    taken = [(e["offset"], e["offset"] + e["length"]) for e in entities if e.get("type") in blocking]
    added = []
    for match in AUTO_ENTITIES.finditer(text):
        kind = match.lastgroup or "url"
        start = utf16_len(text[: match.start()])
        length = utf16_len(match.group())
        if any(start < end and begin < start + length for begin, end in taken):
            continue
        added.append({"type": kind, "offset": start, "length": length})
    if not added:
        return entities
    return sorted([*entities, *added], key=lambda entity: (entity["offset"], -entity["length"]))


def check_text(text: str | None, entities: list[dict[str, Any]]) -> str:
    if text is None or not text.strip():
        raise bad_request("message text is empty")
    if len(text) > 4096:
        raise bad_request("message is too long")
    return text


def check_caption(caption: str | None) -> None:
    if caption is not None and len(caption) > 1024:
        raise bad_request("message caption is too long")


def check_reply_markup(markup: Any) -> dict[str, Any] | None:
    """Validate an inline or reply keyboard the way Telegram refuses bad ones."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise bad_request('can\'t parse inline keyboard button: field "inline_keyboard" must be an Array')
        for row in rows:
            for button in row:
                _check_inline_button(button)
        if not any(rows):
            return None  # an empty keyboard removes the markup
    elif "keyboard" in markup:
        if not isinstance(markup["keyboard"], list):
            raise bad_request('can\'t parse reply keyboard markup: field "keyboard" must be an Array')
    elif not markup.get("remove_keyboard") and not markup.get("force_reply"):
        raise bad_request("can't parse reply keyboard markup JSON object")
    return markup


def _check_inline_button(button: Any) -> None:
    if not isinstance(button, dict) or not isinstance(button.get("text"), str) or not button["text"]:
        raise bad_request("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
    if "callback_data" in button:
        data = button["callback_data"]
        if not isinstance(data, str) or not 1 <= len(data.encode()) <= 64:
            raise bad_request("BUTTON_DATA_INVALID")
    elif "url" in button:
        url = button["url"]
        if not isinstance(url, str) or not url.startswith(("http://", "https://", "tg://")):
            raise bad_request("BUTTON_URL_INVALID")
    elif not any(
        key in button
        for key in ("web_app", "login_url", "switch_inline_query", "switch_inline_query_current_chat", "pay")
    ):
        raise bad_request("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
