"""Turn an ``image_url``/``video_url`` value (http(s) URL, data URI or bare base64) into bytes.

Offline fallbacks, in order, when an http(s) URL is involved:

1. ``url_fixtures``: an exact URL mapped to bytes or a file is used without any network access;
2. the URL is fetched with a short timeout;
3. if the fetch fails: a file named like the URL's basename in ``offline_media`` is used, else, for URLs
   under ``offline_prefixes`` (by default the API docs' ``raw.githubusercontent.com/aimlapi/`` samples),
   a procedurally generated stand-in image (or clip) is used. Any other unreachable URL is an error.
"""

from __future__ import annotations

import base64
import binascii
import io
import tempfile
import urllib.error
import urllib.request
from functools import lru_cache
from pathlib import Path, PurePosixPath
from urllib.parse import unquote_to_bytes, urlsplit

from PIL import Image, ImageDraw, ImageFont

from airflow_provider_magicvideo.emulator.config import EmulatorConfig

MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024


class MediaFetchError(Exception):
    """The media URL could not be downloaded."""


class MediaDecodeError(Exception):
    """A data URI or base64 string is malformed."""


def decode_inline(value: str) -> bytes:
    """Bytes of a ``data:`` URI or bare base64 string."""
    try:
        if value.startswith("data:"):
            header, _, payload = value.partition(",")
            if header.endswith(";base64"):
                return base64.b64decode(payload, validate=True)
            return unquote_to_bytes(payload)
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MediaDecodeError("media is neither a URL nor valid base64 data") from exc


def is_remote(value: str) -> bool:
    return value.startswith(("http://", "https://"))


@lru_cache(maxsize=1)
def sample_logo() -> bytes:
    """A stand-in for the docs' ``aimlapi.jpg``: drawn here, never downloaded."""
    size = 512
    image = Image.new("RGB", (size, size), (12, 14, 28))
    draw = ImageDraw.Draw(image)
    for r in range(200, 0, -8):  # concentric gradient disc
        shade = int(60 + (200 - r) * 0.9)
        draw.ellipse((256 - r, 220 - r, 256 + r, 220 + r), fill=(shade // 3, shade // 2, shade))
    font = ImageFont.load_default(size=64)
    draw.text((256, 440), "AI/ML API", fill=(240, 240, 255), font=font, anchor="mm")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


@lru_cache(maxsize=1)
def sample_clip() -> bytes:
    """A short stand-in clip for offline ``video_url`` samples: the logo, encoded as MP4."""
    from airflow_provider_magicvideo.emulator import render  # heavy import only when needed

    logo = Image.open(io.BytesIO(sample_logo())).convert("RGB").resize((render.WIDTH, render.HEIGHT))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "sample.mp4"
        render.encode(iter([logo] * 6), render.soundtrack(render.DRONE_SHOW, 0.5), out, 12)
        return out.read_bytes()


def _fetch(url: str, timeout: float) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "magicvideo-emulator/1"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data = response.read(MAX_DOWNLOAD_BYTES + 1)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise MediaFetchError(f"could not download {urlsplit(url).netloc or 'the URL'}: {exc}") from exc
    if len(data) > MAX_DOWNLOAD_BYTES:
        raise MediaFetchError("media file is too large")
    return data


def resolve_media(value: str, config: EmulatorConfig, video: bool) -> bytes:
    """Blocking: run it in a thread. Raises :class:`MediaFetchError` or :class:`MediaDecodeError`."""
    if not is_remote(value):
        return decode_inline(value)
    fixture = config.url_fixtures.get(value)
    if fixture is not None:
        return fixture if isinstance(fixture, bytes) else Path(fixture).read_bytes()
    try:
        return _fetch(value, config.fetch_timeout)
    except MediaFetchError:
        basename = PurePosixPath(urlsplit(value).path).name
        if config.offline_media is not None and basename:
            candidate = Path(config.offline_media) / basename
            if candidate.is_file():
                return candidate.read_bytes()
        if any(value.startswith(prefix) for prefix in config.offline_prefixes):
            return sample_clip() if video else sample_logo()
        raise
