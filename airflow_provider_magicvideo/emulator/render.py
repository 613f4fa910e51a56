"""Real renders: inputs decoded, composited into the scenery (``scenery.py``), a soundtrack, H.264/AAC MP4.

Functions here run in worker processes, so they take and return plain picklable values.
"""

from __future__ import annotations

import io
import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from airflow_provider_magicvideo.emulator.catalogue import SOUND_MODELS
from airflow_provider_magicvideo.emulator.scenery import (
    HEIGHT,
    WIDTH,
    background,
    camera,
    content_mask,
    moving_quad,
    paste_warped,
    shade,
)
from airflow_provider_magicvideo.emulator.scenes import DRONE_SHOW, SCENES, Scene

__all__ = ["HEIGHT", "WIDTH", "InvalidMediaError", "RenderSpec", "background", "encode", "render", "soundtrack"]

SAMPLE_RATE = 44100
MAX_INPUT_SIDE = 720


class InvalidMediaError(Exception):
    """The input bytes are not a decodable image/video."""


@dataclass(frozen=True)
class RenderSpec:
    model: str  # the Model value
    template: str
    out_path: str
    media: bytes | None = None  # image or video bytes
    prompt: str | None = None
    fps: int = 24
    duration: float = 5.0
    fast: bool = False
    fast_clip: str | None = None  # pre-encoded clip copied in fast mode (with sound)
    fast_clip_silent: str | None = None  # the same without a sound track, for text-to-video


# --------------------------------------------------------------------------- inputs
def decode_image(data: bytes) -> Image.Image:
    try:
        image: Image.Image = Image.open(io.BytesIO(data))
        image.load()
    except Exception as exc:  # Pillow raises many types for garbage input
        raise InvalidMediaError(
            f"image_url does not contain a decodable image ({type(exc).__name__})"
        ) from exc
    if image.mode in ("RGBA", "LA", "P"):
        image = image.convert("RGBA")
        backdrop = Image.new("RGBA", image.size, (0, 0, 0, 255))
        image = Image.alpha_composite(backdrop, image)
    image = image.convert("RGB")
    image.thumbnail((MAX_INPUT_SIDE, MAX_INPUT_SIDE))
    return image


def decode_video(data: bytes, limit: int) -> list[Image.Image]:
    """Decode up to ``limit`` frames, scaled down; the render loops them if the clip is shorter."""
    frames: list[Image.Image] = []
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            # FFmpeg happily "decodes" a still image as a one-frame video; the API wants a video file.
            if (
                not container.streams.video
                or "pipe" in container.format.name
                or "image" in container.format.name
            ):
                raise InvalidMediaError("video_url does not contain a video")
            for frame in container.decode(video=0):
                image = frame.to_image()
                image.thumbnail((MAX_INPUT_SIDE, MAX_INPUT_SIDE))
                frames.append(image)
                if len(frames) >= limit:
                    break
    except InvalidMediaError:
        raise
    except Exception as exc:
        raise InvalidMediaError(
            f"video_url does not contain a decodable video ({type(exc).__name__})"
        ) from exc
    if not frames:
        raise InvalidMediaError("video_url contains no video frames")
    return frames


# --------------------------------------------------------------------------- frames per model
def composited_frames(
    template: str, content_at: Callable[[int], Image.Image], count: int
) -> Iterator[Image.Image]:
    """Image/video-to-video: the input warped into the template's quad, then the camera move."""
    scene = SCENES[template]
    base = background(template, scene.motion == "static")
    static_scene: Image.Image | None = None
    for i in range(count):
        t = i / max(1, count - 1)
        content = content_at(i)
        if static_scene is not None:
            canvas = static_scene
        else:
            canvas = base.copy()
            if scene.motion != "static":
                shadow = [(x + 18, y + 22) for x, y in moving_quad(scene, t)]
                ImageDraw.Draw(canvas).polygon(shadow, fill=shade(scene.sky[1], 0.5))
            paste_warped(canvas, content, moving_quad(scene, t), content_mask(scene, content.size))
            # A still input on a still quad composites once; only the camera moves.
            if scene.motion == "static" and getattr(content_at, "still", False):
                static_scene = canvas
        yield camera(canvas, scene, t)


def _text_dots(prompt: str, rng: random.Random, limit: int = 900) -> np.ndarray:
    """Target positions (x, y) in frame pixels of lights spelling the prompt."""
    words, lines, line = prompt.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > 10:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines = ([*lines, line] if line else lines)[:4] or ["?"]
    font = ImageFont.load_default()
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    boxes = [probe.textbbox((0, 0), text, font=font) for text in lines]
    mw = int(max(b[2] - b[0] for b in boxes)) + 2
    lh = int(max(b[3] - b[1] for b in boxes)) + 3
    mask = Image.new("L", (mw, lh * len(lines)), 0)
    mdraw = ImageDraw.Draw(mask)
    for k, (text, box) in enumerate(zip(lines, boxes, strict=True)):
        mdraw.text(((mw - (box[2] - box[0])) // 2 - box[0], k * lh - box[1]), text, fill=255, font=font)
    ys, xs = np.nonzero(np.asarray(mask) > 96)
    if len(xs) > limit:
        keep = np.asarray(sorted(rng.sample(range(len(xs)), limit)))
        xs, ys = xs[keep], ys[keep]
    scale = min(WIDTH * 0.88 / mask.width, HEIGHT * 0.42 / mask.height)
    ox = (WIDTH - mask.width * scale) / 2
    oy = HEIGHT * 0.12 + (HEIGHT * 0.42 - mask.height * scale) / 2
    return np.stack([ox + (xs + 0.5) * scale, oy + (ys + 0.5) * scale], axis=1)


def drone_frames(prompt: str, count: int) -> Iterator[Image.Image]:
    """Text-to-video: drone lights fly up from the ground and form the prompt over a night skyline."""
    rng = random.Random(prompt)
    targets = _text_dots(prompt, rng)
    n = len(targets)
    starts = np.stack(
        [np.asarray([rng.uniform(0, WIDTH) for _ in range(n)]), np.full(n, HEIGHT * 0.95)], axis=1
    )
    delays = np.asarray([rng.uniform(0, 0.25) for _ in range(n)])
    hues = np.asarray([DRONE_SHOW.accent, (255, 120, 220), (255, 255, 255)], float)
    colors = hues[np.asarray([rng.randrange(3) for _ in range(n)])]
    sky = camera(background("Shanghai Drone Show", False), DRONE_SHOW, 0.0)
    base = np.asarray(sky, np.float32)
    for i in range(count):
        t = i / max(1, count - 1)
        p = np.clip((t - delays) / 0.45, 0, 1)
        p = (1 - (1 - p) ** 3)[:, None]
        pos = starts * (1 - p) + targets * p
        twinkle = 0.75 + 0.25 * np.sin(i * 0.7 + np.arange(n))[:, None]
        glow = np.zeros((HEIGHT // 2, WIDTH // 2, 3), np.float32)
        gx = np.clip((pos[:, 0] / 2).astype(int), 0, WIDTH // 2 - 1)
        gy = np.clip((pos[:, 1] / 2).astype(int), 0, HEIGHT // 2 - 1)
        np.add.at(glow, (gy, gx), colors * twinkle)
        halo = Image.fromarray(np.clip(glow, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(2.5))
        halo_arr = np.asarray(halo.resize((WIDTH, HEIGHT), Image.Resampling.BILINEAR), np.float32) * 6.0
        frame = base + halo_arr
        cx = np.clip(pos[:, 0].astype(int), 0, WIDTH - 2)
        cy = np.clip(pos[:, 1].astype(int), 0, HEIGHT - 2)
        for dx in (0, 1):
            for dy in (0, 1):
                frame[cy + dy, cx + dx] = 255.0  # sharp cores
        yield Image.fromarray(np.clip(frame, 0, 255).astype(np.uint8))


# --------------------------------------------------------------------------- sound and encoding
def soundtrack(scene: Scene, seconds: float) -> np.ndarray:
    """Stereo float32 chord pulses: root, third, fifth, octave, with a per-template tempo."""
    n = round(seconds * SAMPLE_RATE)
    t = np.arange(n, dtype=np.float64) / SAMPLE_RATE
    root = 110.0 * 2 ** (scene.root / 12)
    third = 3 if scene.minor else 4
    freqs = [root, root * 2 ** (third / 12), root * 2 ** (7 / 12), root * 2]
    beat = (t * scene.pulse) % 1.0
    envelope = np.exp(-beat * 4.0) * np.clip(np.minimum(t, seconds - t) / 0.05, 0, 1)
    left = sum(np.sin(2 * np.pi * f * t) for f in freqs[:3]) * envelope * 0.18
    right = sum(np.sin(2 * np.pi * f * t + 0.3) for f in freqs[1:]) * envelope * 0.18
    return np.stack([left, right]).astype(np.float32)


def encode(frames: Iterator[Image.Image], audio: np.ndarray | None, path: Path, fps: int) -> None:
    """Encode to ``path`` via a temporary name, so the file exists only once complete.

    ``audio`` None: a video-only file (text-to-video renders have no sound, per its doc page)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    samples_per_frame = SAMPLE_RATE / fps
    with av.open(str(tmp), mode="w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        video.options = {"preset": "ultrafast", "crf": "26"}
        sound = None
        if audio is not None:
            sound = container.add_stream("aac", rate=SAMPLE_RATE, layout="stereo")
            sound.time_base = Fraction(1, SAMPLE_RATE)
        sent = 0
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_image(image)
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            container.mux(video.encode(frame))
            if sound is None or audio is None:
                continue
            upto = min(audio.shape[1], round((index + 1) * samples_per_frame))
            if upto > sent:
                chunk = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(audio[:, sent:upto]), format="fltp", layout="stereo"
                )
                chunk.sample_rate, chunk.pts = SAMPLE_RATE, sent
                container.mux(sound.encode(chunk))
                sent = upto
        container.mux(video.encode(None))
        if sound is not None:
            container.mux(sound.encode(None))
    tmp.replace(path)


def fast_clip(path: Path, sound: bool = True) -> Path:
    """A tiny valid 608x1080 H.264 clip (3 frames, AAC sound unless ``sound`` is False) for ``--render fast``."""
    if not path.exists():
        frames = (Image.new("RGB", (WIDTH, HEIGHT), (40 * i, 90, 160)) for i in range(3))
        encode(frames, soundtrack(DRONE_SHOW, 0.25) if sound else None, path, 12)
    return path


def render(spec: RenderSpec) -> str:
    """Decode the input and write the MP4; raises :class:`InvalidMediaError` for unusable input."""
    out = Path(spec.out_path)
    count = max(1, round(spec.duration * spec.fps))
    if spec.fast:  # validate the input as a full render would, then copy the cached clip
        if spec.model == "magic/image-to-video":
            decode_image(spec.media or b"")
        elif spec.model == "magic/video-to-video":
            decode_video(spec.media or b"", 1)
        silent = spec.model not in SOUND_MODELS
        out.write_bytes(Path((spec.fast_clip_silent if silent else spec.fast_clip) or "").read_bytes())
        return str(out)
    if spec.model == "magic/text-to-video":
        encode(drone_frames(spec.prompt or "", count), None, out, spec.fps)  # no sound, as documented
        return str(out)
    if spec.model == "magic/video-to-video":
        clip = decode_video(spec.media or b"", count)

        def content_at(i: int) -> Image.Image:
            return clip[i % len(clip)]

        frames = composited_frames(spec.template, content_at, count)
        scene = SCENES[spec.template]
    else:
        still = decode_image(spec.media or b"")

        def still_at(i: int) -> Image.Image:
            return still

        still_at.still = True  # type: ignore[attr-defined]
        frames = composited_frames(spec.template, still_at, count)
        scene = SCENES[spec.template]
    encode(frames, soundtrack(scene, spec.duration), out, spec.fps)
    return str(out)
