"""The offline provider: renders a real JPEG from the prompt with Pillow.

It is the default when no vendor key is set, and what development, tests and
benchmarks run against. It behaves like a vendor where it matters to the
lifecycle:

- latency (`settings.LOCAL_PROVIDER_LATENCY_SECONDS`): with 0, `submit`
  answers with the images at once; otherwise it answers `pending` with a job
  id that encodes the job's own ready time and seed, so any worker process
  can `check` it later without shared state. Nothing here ever sleeps.
- failures (`settings.LOCAL_PROVIDER_FAILURE_RATE`, 0..1): whether a job
  fails is decided from its seed, so re-checking the same job gives the same
  answer.
- magic prompts for demos and tests: `[fail:policy]` (refused at submit),
  `[fail:transient]` (submit raises a retryable error), `[fail:lost]`
  (`submit` answers pending and `check` reports the job lost).

Both settings are read at call time so tests can override them.
"""

from __future__ import annotations

import colorsys
import functools
import hashlib
import io
import json
import random
import re
import warnings
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps, UnidentifiedImageError

from nanobanana.core import clock
from nanobanana.core.errors import ProviderError, ProviderJobLost, ProviderPolicyError, ProviderTransientError
from nanobanana.providers.base import Capabilities, GenerationJob, MediaResult, Submission

SIZES: Mapping[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "16:9": (1344, 768),
    "9:16": (768, 1344),
    "4:3": (1152, 864),
    "3:4": (864, 1152),
}
DEFAULT_ASPECT_RATIO = "1:1"
MAX_COUNT = 4
MAX_INPUT_IMAGES = 4
MAX_PROMPT_LINES = 8
JPEG_QUALITY = 90

MAGIC_POLICY = "[fail:policy]"
MAGIC_TRANSIENT = "[fail:transient]"
MAGIC_LOST = "[fail:lost]"

# local-v1-<submitted ms>-<ready ms>-<seed>: everything `check` needs.
_JOB_ID = re.compile(r"^local-v1-(?P<submitted>\d{1,15})-(?P<ready>\d{1,15})-(?P<seed>[0-9a-f]{16})$")

# Fonts tried before Pillow's bundled default, which has no Cyrillic glyphs
# (Russian prompts would render as boxes). Found through the system font path.
_FONT_CANDIDATES = ("DejaVuSans.ttf",)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


class LocalProvider:
    """Renders images offline. See the module docstring for its behaviour."""

    name = "local"
    capabilities = Capabilities(kinds=frozenset({"image"}), supports_cancel=True, max_input_images=MAX_INPUT_IMAGES)

    def is_configured(self) -> bool:
        """When `LOCAL_PROVIDER_ENABLED` (default: in debug mode only). It
        needs no keys, but real users must never pay for its placeholders."""
        return bool(getattr(settings, "LOCAL_PROVIDER_ENABLED", False))

    def submit(self, job: GenerationJob) -> Submission:
        """Validate the job, then answer with the images (no latency) or a
        pending job id whose ready time is now + latency."""
        _validate(job)
        if MAGIC_POLICY in job.prompt:
            raise ProviderPolicyError("local provider: the prompt asks for a policy refusal")
        if MAGIC_TRANSIENT in job.prompt:
            raise ProviderTransientError("local provider: the prompt asks for a transient failure", retry_after=1)

        seed = job_seed(job)
        latency = _latency_seconds()
        now_ms = _now_ms()
        ready_ms = now_ms + round(latency * 1000)
        job_id = f"local-v1-{now_ms}-{ready_ms}-{seed}"
        if ready_ms <= now_ms and MAGIC_LOST not in job.prompt:
            return _finish(job, job_id=job_id, seed=seed)
        return Submission(state="pending", job_id=job_id, poll_after=max(latency, 0.0), progress=0.0)

    def check(self, job: GenerationJob, job_id: str) -> Submission:
        """Pending until the ready time encoded in `job_id`, then the images."""
        match = _JOB_ID.match(job_id)
        if match is None:
            raise ProviderJobLost(f"local provider: unknown job id {job_id!r}")
        seed = match["seed"]
        if seed != job_seed(job):
            raise ProviderJobLost("local provider: the job id belongs to a different job")
        if MAGIC_LOST in job.prompt:
            raise ProviderJobLost("local provider: the prompt asks for a lost job")

        submitted_ms, ready_ms, now_ms = int(match["submitted"]), int(match["ready"]), _now_ms()
        if now_ms < ready_ms:
            total = max(ready_ms - submitted_ms, 1)
            progress = min(max((now_ms - submitted_ms) / total, 0.0), 0.99)
            return Submission(state="pending", job_id=job_id, poll_after=(ready_ms - now_ms) / 1000, progress=progress)
        return _finish(job, job_id=job_id, seed=seed)

    def cancel(self, job_id: str) -> None:
        """Nothing runs in the background, so there is nothing to stop."""


def job_seed(job: GenerationJob) -> str:
    """A stable 64-bit fingerprint of everything that defines the job."""
    canonical = json.dumps(
        {
            "request_id": job.request_id,
            "model": job.model,
            "kind": job.kind,
            "prompt": job.prompt,
            "params": dict(job.params),
            "inputs": [hashlib.sha256(data).hexdigest() for data in job.input_images],
        },
        sort_keys=True,
        default=str,
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def job_fails(seed: str, rate: float) -> bool:
    """Whether a job with this seed fails at this rate: the seed maps to a
    uniform number in [0, 1), so rate 0 never fails and rate 1 always does."""
    draw = int(hashlib.sha256(f"failure:{seed}".encode()).hexdigest()[:13], 16) / 16**13
    return draw < rate


def _finish(job: GenerationJob, *, job_id: str, seed: str) -> Submission:
    rate = float(getattr(settings, "LOCAL_PROVIDER_FAILURE_RATE", 0.0))
    if job_fails(seed, rate):
        raise ProviderError(f"local provider: injected failure (LOCAL_PROVIDER_FAILURE_RATE={rate:g})")
    width, height = SIZES[_aspect_ratio(job.params)]
    source = _open_input(job.input_images[0]) if job.input_images else None
    variant = job.params.get("seed", 0)
    results = tuple(
        _jpeg_result(
            render_image(prompt=job.prompt, width=width, height=height, key=f"{variant}:{index}", source=source),
            filename=f"nanobanana-{job.request_id}-{index + 1}.jpg",
        )
        for index in range(_count(job.params))
    )
    return Submission(state="succeeded", job_id=job_id, results=results, progress=1.0)


def _validate(job: GenerationJob) -> None:
    if job.kind not in LocalProvider.capabilities.kinds:
        raise ProviderError(f"local provider: cannot generate {job.kind!r}, only images")
    _aspect_ratio(job.params)
    _count(job.params)
    if len(job.input_images) > MAX_INPUT_IMAGES:
        raise ProviderError(f"local provider: at most {MAX_INPUT_IMAGES} input images, got {len(job.input_images)}")
    if job.input_images:
        _open_input(job.input_images[0])


def _aspect_ratio(params: Mapping[str, Any]) -> str:
    ratio = params.get("aspect_ratio", DEFAULT_ASPECT_RATIO)
    if ratio not in SIZES:
        raise ProviderError(f"local provider: unsupported aspect_ratio {ratio!r}; use one of {', '.join(SIZES)}")
    return str(ratio)


def _count(params: Mapping[str, Any]) -> int:
    count = params.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
        raise ProviderError(f"local provider: count must be a whole number from 1 to {MAX_COUNT}, got {count!r}")
    return count


def _open_input(data: bytes) -> Image.Image:
    """Decode a user's input image, refusing anything Pillow calls a bomb."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            image.draft("RGB", (1344, 1344))  # JPEG: decode at a reduced scale, much faster
            return image.convert("RGB")
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning, OSError) as error:
        raise ProviderError("local provider: the input image cannot be read") from error


def _latency_seconds() -> float:
    return max(float(getattr(settings, "LOCAL_PROVIDER_LATENCY_SECONDS", 0.0)), 0.0)


def _now_ms() -> int:
    return round(clock.now().timestamp() * 1000)


def _jpeg_result(image: Image.Image, *, filename: str) -> MediaResult:
    buffer = io.BytesIO()
    # JPEG, not PNG: 2-3 ms to encode 1024x1024 instead of about 35 ms (PNG at
    # compress_level=1), and about a third of the bytes. A result this small
    # is also its own chat preview (bot/delivery.py), so nothing decodes it again.
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return MediaResult(
        data=buffer.getvalue(), content_type="image/jpeg", filename=filename, width=image.width, height=image.height
    )


# --- Rendering ----------------------------------------------------------------


def render_image(*, prompt: str, width: int, height: int, key: str, source: Image.Image | None = None) -> Image.Image:
    """Draw the prompt on a background chosen by hashing (prompt, key).

    `source`, when given, is blended into the background (edit mode).
    """
    digest = hashlib.sha256(f"{prompt}\x00{key}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))  # noqa: S311 - picks colours, not secrets
    image = _background(rng, width, height)
    if source is not None:
        image = Image.blend(image, ImageOps.fit(source, (width, height)), 0.6)
    return _draw_text(image, prompt)


def _background(rng: random.Random, width: int, height: int) -> Image.Image:
    hue = rng.random()
    dark = _hsv(hue, rng.uniform(0.55, 0.8), rng.uniform(0.3, 0.5))
    light = _hsv((hue + rng.uniform(0.12, 0.4)) % 1.0, rng.uniform(0.4, 0.7), rng.uniform(0.8, 0.95))

    # A rotated linear gradient, built small and scaled up: 364 is just over
    # 256 * sqrt(2), so the rotated square's centre 256 pixels are all filled.
    gradient = Image.linear_gradient("L").resize((364, 364)).rotate(rng.uniform(0, 360), Image.Resampling.BILINEAR)
    gradient = gradient.crop((54, 54, 310, 310))

    # Everything smooth is drawn at a quarter size and scaled up once: the
    # gradient, and soft translucent discs blurred over it.
    small = (max(width // 4, 1), max(height // 4, 1))
    image = ImageOps.colorize(gradient, dark, light).resize(small, Image.Resampling.BILINEAR)
    layer = Image.new("RGBA", small, (*light, 0))  # not black: blurred edges would darken
    draw = ImageDraw.Draw(layer)
    for _ in range(rng.randint(8, 14)):
        radius = rng.uniform(0.05, 0.22) * min(small)
        x, y = rng.uniform(0, small[0]), rng.uniform(0, small[1])
        tint = light if rng.random() < 0.5 else (255, 255, 255)
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=(*tint, rng.randint(25, 70)))
    layer = layer.filter(ImageFilter.GaussianBlur(3))
    image.paste(layer, (0, 0), layer)  # blends by the layer's alpha, in place
    # Each pixel becomes a 4x4 block (NEAREST, the same pixels as BOX at the
    # sizes above, all multiples of 4): 1 ms instead of 9 ms for BILINEAR at
    # 1024x1024, and on a background this smooth the steps show only under a
    # magnifier.
    return image.resize((width, height), Image.Resampling.NEAREST)


def _hsv(hue: float, saturation: float, value: float) -> tuple[int, int, int]:
    red, green, blue = colorsys.hsv_to_rgb(hue, saturation, value)
    return round(red * 255), round(green * 255), round(blue * 255)


def _draw_text(image: Image.Image, prompt: str) -> Image.Image:
    width, height = image.size
    short_side = min(width, height)
    font = _font(max(round(short_side / 18), 16))
    margin, padding = round(short_side * 0.07), round(short_side * 0.035)
    lines = _wrap(prompt.strip() or "(empty prompt)", font, width - 2 * (margin + padding))
    line_height = round(font.size * 1.3) if isinstance(font, ImageFont.FreeTypeFont) else 14

    block = line_height * len(lines)
    top = (height - block) // 2
    # Only the panel is composited, not a full-size overlay: it is the slow part.
    panel_box = (margin, top - padding, width - margin, top + block + padding)
    panel = Image.new("RGBA", (panel_box[2] - panel_box[0], panel_box[3] - panel_box[1]), (0, 0, 0, 0))
    ImageDraw.Draw(panel).rounded_rectangle(
        (0, 0, panel.width - 1, panel.height - 1), radius=padding, fill=(0, 0, 0, 120)
    )
    image.paste(panel, panel_box[:2], panel)

    draw = ImageDraw.Draw(image)
    for number, line in enumerate(lines):
        draw.text((width / 2, top + number * line_height), line, font=font, fill=(255, 255, 255), anchor="ma")
    label_font = _font(max(round(short_side / 48), 12))
    draw.text(
        (width - padding, height - padding), "NanoBanana · local", font=label_font, fill=(235, 235, 235), anchor="rd"
    )
    return image


def _wrap(text: str, font: Font, max_width: int) -> list[str]:
    """Greedy word wrap to `max_width` pixels; overlong words are split, and
    more than MAX_PROMPT_LINES lines end with an ellipsis."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        current = ""
        for word in paragraph.split():
            candidate = f"{current} {word}" if current else word
            if font.getlength(candidate) <= max_width:
                current = candidate
                continue
            if current:
                lines.append(current)
            current = ""
            for char in word:
                if current and font.getlength(current + char) > max_width:
                    lines.append(current)
                    current = ""
                current += char
        lines.append(current)
    if len(lines) > MAX_PROMPT_LINES:
        lines = lines[:MAX_PROMPT_LINES]
        last = lines[-1]
        while last and font.getlength(last + "...") > max_width:
            last = last[:-1]
        lines[-1] = last.rstrip() + "..."
    return lines


@functools.lru_cache(maxsize=16)
def _font(size: int) -> Font:
    for name in _FONT_CANDIDATES:
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)
