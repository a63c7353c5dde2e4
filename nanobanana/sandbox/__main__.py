"""Serve the sandbox alone: `python -m nanobanana.sandbox [--port 8765] [--demo] [--webhook URL]`.

`--demo` fills the chat page with a scripted conversation (to look at the page
without running the bot).
"""

from __future__ import annotations

import argparse
import asyncio
import io

import uvicorn
from PIL import Image, ImageColor, ImageDraw

from nanobanana.sandbox.app import create_app
from nanobanana.sandbox.fake import FakeTelegram
from nanobanana.sandbox.limits import RateLimits
from nanobanana.sandbox.params import Params, Upload
from nanobanana.sandbox.ui.routes import UI_USER


def _picture(width: int, height: int, top: str, bottom: str) -> bytes:
    """A gradient sky with a sun: something pleasant to show as a generated image."""
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    upper, lower = ImageColor.getrgb(top), ImageColor.getrgb(bottom)
    for y in range(height):
        share = y / height
        draw.line(
            [(0, y), (width, y)], fill=tuple(int(a + (b - a) * share) for a, b in zip(upper, lower, strict=False))
        )
    draw.ellipse([width * 0.35, height * 0.3, width * 0.65, height * 0.3 + width * 0.3], fill="#ffd84d")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


async def play_demo(fake: FakeTelegram) -> None:
    """A short conversation covering what the page can draw."""
    user = UI_USER.id
    fake.user(user, language_code="en")
    send = fake.call_api
    await fake.send_command(user, "start")
    menu = {
        "inline_keyboard": [
            [{"text": "🎨 Create image", "callback_data": "menu:create"}],
            [
                {"text": "💰 Balance", "callback_data": "menu:balance"},
                {"text": "❓ Help", "callback_data": "menu:help"},
            ],
            [{"text": "Docs", "url": "https://core.telegram.org/bots/api"}],
        ]
    }
    welcome = (
        "<b>Welcome to NanoBanana!</b> 🍌\n\nTurn ideas into images and videos. "
        "You have <b>50</b> tokens.\nUse /help to see what I can do, or pick below."
    )
    sent = await send("sendMessage", {"chat_id": user, "text": welcome, "parse_mode": "HTML", "reply_markup": menu})
    await fake.press_button(user, sent.result["message_id"], "menu:create")
    await send("sendMessage", {"chat_id": user, "text": "Describe the picture you want, or send a photo to edit."})
    await fake.send_text(user, "A banana astronaut floating over a sunset sea")
    status = await send("sendMessage", {"chat_id": user, "text": "⏳ Generating… this takes about 20 seconds."})
    await send(
        "editMessageText",
        {
            "chat_id": user,
            "message_id": status.result["message_id"],
            "text": "✅ Done in 18 s · <i>−10 tokens</i>",
            "parse_mode": "HTML",
        },
    )
    again = {
        "inline_keyboard": [
            [{"text": "🔁 Again", "callback_data": "again"}, {"text": "⬆️ Upscale", "callback_data": "up"}]
        ]
    }
    picture = Upload("banana.jpg", _picture(768, 512, "#ff9a62", "#3b4a8c"))
    await send(
        "sendPhoto", Params({"chat_id": user, "caption": "banana astronaut", "reply_markup": again}, {"photo": picture})
    )
    document = Upload("banana_full.png", _picture(1024, 1024, "#7bd0ff", "#114477"))
    await send("sendDocument", Params({"chat_id": user, "caption": "Full resolution"}, {"document": document}))
    prices = [{"label": "100 tokens", "amount": 50}]
    await send(
        "sendInvoice",
        {
            "chat_id": user,
            "title": "100 tokens",
            "description": "Top up your balance for about 10 images.",
            "payload": "pack:100",
            "currency": "XTR",
            "prices": prices,
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--demo", action="store_true", help="fill the chat with a scripted conversation")
    parser.add_argument("--webhook", help="deliver updates to this URL (else they wait for getUpdates)")
    parser.add_argument("--secret", help="webhook secret token")
    args = parser.parse_args()
    fake = FakeTelegram(limits=RateLimits.off(), webhook_url=args.webhook, webhook_secret=args.secret)
    app = create_app(fake)
    if args.demo:
        asyncio.run(play_demo(fake))
        fake.pending.clear()
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
