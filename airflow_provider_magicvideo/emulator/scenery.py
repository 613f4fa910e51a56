"""Scenery for the renders: perspective geometry, the camera move and the procedural background per template.

Split from ``render.py``; pure Pillow/NumPy, no encoding.
"""

from __future__ import annotations

import math
import random
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from airflow_provider_magicvideo.emulator.scenes import DRONE_SHOW, SCENES, Quad, Scene

WIDTH, HEIGHT = 608, 1080
MARGIN = 1.25  # the scene canvas is larger than the frame so the camera can move
CANVAS = (int(WIDTH * MARGIN), int(HEIGHT * MARGIN))


# --------------------------------------------------------------------------- geometry
def perspective_coeffs(dst: list[tuple[float, float]], src: list[tuple[float, float]]) -> tuple[float, ...]:
    """Pillow PERSPECTIVE data mapping output points ``dst`` back to input points ``src``."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(dst, src, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs.extend([u, v])
    return tuple(np.linalg.solve(np.asarray(rows, float), np.asarray(rhs, float)).tolist())


def quad_pixels(quad: Quad) -> list[tuple[float, float]]:
    return [(x * CANVAS[0], y * CANVAS[1]) for x, y in quad]


def moving_quad(scene: Scene, t: float) -> list[tuple[float, float]]:
    """The quad at clip fraction ``t`` in canvas pixels, after the template's own motion."""
    pts = quad_pixels(scene.quad)
    cx = sum(p[0] for p in pts) / 4
    cy = sum(p[1] for p in pts) / 4
    if scene.motion == "bob":
        dy = math.sin(t * 2 * math.pi * 1.5) * 25
        tilt = math.sin(t * 2 * math.pi) * 0.04
        return [(x + (y - cy) * tilt, y + dy + (x - cx) * tilt) for x, y in pts]
    if scene.motion == "spin":
        angle = t * 2 * math.pi
        scale, depth = math.cos(angle), math.sin(angle) * 0.18
        # Narrow horizontally with the cosine and grow the near edge: a card turning on its axis.
        out = []
        for x, y in pts:
            side = (x - cx) / max(1.0, abs(pts[1][0] - cx))
            grow = 1 + depth * side
            out.append((cx + (x - cx) * max(abs(scale), 0.04), cy + (y - cy) * grow))
        return out
    if scene.motion == "drop":
        p = min(1.0, t / 0.4)
        fall = (1 - p) ** 2 * -CANVAS[1] * 0.55 + math.sin(p * math.pi * 3) * (1 - p) * 40
        return [(x, y + fall) for x, y in pts]
    return pts


def paste_warped(
    canvas: Image.Image, content: Image.Image, dst: list[tuple[float, float]], mask: Image.Image | None = None
) -> None:
    """Warp ``content`` onto the quad ``dst`` of ``canvas``, touching only the quad's bounding box."""
    x0 = max(0, int(min(p[0] for p in dst)))
    y0 = max(0, int(min(p[1] for p in dst)))
    x1 = min(canvas.width, math.ceil(max(p[0] for p in dst)) + 1)
    y1 = min(canvas.height, math.ceil(max(p[1] for p in dst)) + 1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    w, h = content.size
    coeffs = perspective_coeffs([(x - x0, y - y0) for x, y in dst], [(0, 0), (w, 0), (w, h), (0, h)])
    size = (x1 - x0, y1 - y0)
    warped = content.transform(size, Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BILINEAR)
    alpha = (mask or Image.new("L", content.size, 255)).resize(content.size)
    warped_mask = alpha.transform(size, Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BILINEAR)
    canvas.paste(warped, (x0, y0), warped_mask)


def camera(frame_source: Image.Image, scene: Scene, t: float) -> Image.Image:
    """Crop the moving camera window out of the scene canvas."""
    z0, z1, pan_x, pan_y, roll = scene.camera
    ease = 0.5 - 0.5 * math.cos(math.pi * t)
    zoom = z0 + (z1 - z0) * ease
    cw, ch = CANVAS
    cx = cw / 2 + pan_x * (cw - WIDTH) / 2 * ease
    cy = ch / 2 + pan_y * (ch - HEIGHT) / 2 * ease
    theta = math.radians(roll * math.sin(math.pi * t))
    s = 1 / zoom
    a, b = s * math.cos(theta), -s * math.sin(theta)
    d, e = s * math.sin(theta), s * math.cos(theta)
    data = (a, b, cx - a * WIDTH / 2 - b * HEIGHT / 2, d, e, cy - d * WIDTH / 2 - e * HEIGHT / 2)
    return frame_source.transform((WIDTH, HEIGHT), Image.Transform.AFFINE, data, Image.Resampling.BILINEAR)


# --------------------------------------------------------------------------- scenery
def _gradient(top: tuple[int, int, int], bottom: tuple[int, int, int], size: tuple[int, int]) -> Image.Image:
    ramp = np.linspace(0.0, 1.0, size[1])[:, None]
    rows = np.asarray(top, float) * (1 - ramp) + np.asarray(bottom, float) * ramp
    return Image.fromarray(np.repeat(rows[:, None, :], size[0], axis=1).astype(np.uint8))


def shade(color: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    r, g, b = (max(0, min(255, int(c * factor))) for c in color)
    return (r, g, b)


def _draw_landmark(draw: ImageDraw.ImageDraw, scene: Scene, rng: random.Random) -> None:
    cw, ch = CANVAS
    horizon = int(ch * 0.72)
    draw.rectangle((0, horizon, cw, ch), fill=scene.ground)
    kind = scene.landmark
    if kind in ("skyline", "shop"):
        x = -20
        while x < cw:
            bw = rng.randint(60, 150)
            top = rng.randint(int(ch * (0.08 if kind == "skyline" else 0.35)), int(ch * 0.5))
            body = shade(scene.sky[0], rng.uniform(0.35, 0.7))
            draw.rectangle((x, top, x + bw, horizon), fill=body)
            for wy in range(top + 12, horizon - 10, 22):
                for wx in range(x + 8, x + bw - 10, 18):
                    if rng.random() < 0.45:
                        draw.rectangle(
                            (wx, wy, wx + 8, wy + 10), fill=shade(scene.accent, rng.uniform(0.5, 1))
                        )
            x += bw + rng.randint(0, 14)
        if kind == "shop":
            for i in range(6):  # awnings along the street
                ax = i * cw // 6
                draw.polygon(
                    [
                        (ax, horizon - 90),
                        (ax + cw // 6, horizon - 90),
                        (ax + cw // 6 + 20, horizon - 50),
                        (ax - 20, horizon - 50),
                    ],
                    fill=scene.accent if i % 2 else shade(scene.accent, 0.6),
                )
    elif kind == "gallery":
        draw.rectangle((0, horizon, cw, ch), fill=scene.ground)
        for i in range(0, cw, 90):
            draw.line((i, horizon, cw / 2 + (i - cw / 2) * 2.5, ch), fill=shade(scene.ground, 0.8), width=3)
        for sx in (0.2, 0.5, 0.8):  # ceiling spotlights
            draw.polygon(
                [(cw * sx - 10, 0), (cw * sx + 10, 0), (cw * sx + 120, horizon), (cw * sx - 120, horizon)],
                fill=shade(scene.sky[1], 1.06),
            )
    elif kind == "bokeh":
        for _ in range(40):
            r = rng.randint(15, 70)
            x, y = rng.randint(0, cw), rng.randint(0, ch)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=shade(scene.accent, rng.uniform(0.3, 0.7)))
    elif kind == "desk":
        draw.polygon([(0, horizon), (cw, horizon), (cw, ch), (0, ch)], fill=scene.ground)
        draw.rectangle((0, horizon - 8, cw, horizon), fill=shade(scene.ground, 1.3))
        draw.ellipse((cw * 0.72, horizon - 120, cw * 0.86, horizon - 10), fill=(40, 120, 60))  # a plant
    elif kind == "pyramid":
        draw.polygon([(cw * 0.5, ch * 0.2), (cw * 0.95, horizon), (cw * 0.05, horizon)], fill=(205, 160, 95))
        draw.polygon([(cw * 0.5, ch * 0.2), (cw * 0.95, horizon), (cw * 0.6, horizon)], fill=(175, 130, 75))
        draw.polygon([(cw * 0.85, ch * 0.5), (cw * 1.1, horizon), (cw * 0.7, horizon)], fill=(190, 145, 85))
    elif kind == "balloons":
        draw.polygon(
            [(0, horizon), (cw * 0.3, ch * 0.6), (cw * 0.6, horizon)], fill=shade(scene.ground, 0.9)
        )
        for _ in range(9):
            r = rng.randint(25, 60)
            x, y = rng.randint(0, cw), rng.randint(int(ch * 0.05), int(ch * 0.65))
            color = rng.choice([scene.accent, (230, 60, 80), (250, 210, 60), (70, 140, 220)])
            draw.ellipse((x - r, y - r * 1.2, x + r, y + r), fill=color)
            draw.rectangle((x - r * 0.25, y + r * 1.2, x + r * 0.25, y + r * 1.5), fill=(110, 70, 40))
    elif kind == "metro":
        vx, vy = cw * 0.62, ch * 0.45  # vanishing point
        draw.polygon(
            [(0, 0), (vx - 40, vy - 60), (vx - 40, vy + 60), (0, ch)], fill=shade(scene.sky[1], 0.8)
        )
        draw.polygon(
            [(cw, 0), (vx + 40, vy - 60), (vx + 40, vy + 60), (cw, ch)], fill=shade(scene.sky[1], 0.6)
        )
        for i in range(8):  # ceiling lamps receding
            f = 1 - i / 9
            draw.line(
                (vx + (0 - vx) * f, vy + (0 - vy) * f, vx + (cw - vx) * f, vy + (0 - vy) * f),
                fill=scene.accent,
                width=max(1, int(6 * f)),
            )
        for rail in (-0.3, 0.3):
            draw.line((vx, vy + 60, cw / 2 + rail * cw, ch), fill=(180, 180, 190), width=6)
    elif kind == "tower":
        t_base, t_top = float(horizon), ch * 0.08
        draw.polygon(
            [(cw * 0.25, t_top), (cw * 0.29, t_top), (cw * 0.42, t_base), (cw * 0.12, t_base)], fill=(80, 70, 60)
        )
        draw.polygon([(cw * 0.22, t_base), (cw * 0.32, t_base), (cw * 0.27, t_base - 120)], fill=scene.sky[1])
        for k in range(1, 9):
            t_y = t_top + (t_base - t_top) * k / 9
            half = 0.02 + 0.15 * k / 9
            draw.line((cw * (0.27 - half), t_y, cw * (0.27 + half), t_y), fill=(60, 50, 45), width=4)


def _draw_surround(draw: ImageDraw.ImageDraw, scene: Scene) -> None:
    pts = quad_pixels(scene.quad)
    cx = sum(p[0] for p in pts) / 4
    cy = sum(p[1] for p in pts) / 4

    def grow(k: float, extra_y: float = 0.0) -> list[tuple[float, float]]:
        return [(cx + (x - cx) * k, cy + (y - cy) * (k + extra_y)) for x, y in pts]

    kind = scene.surround
    if kind == "billboard":
        draw.polygon(grow(1.08), fill=(25, 25, 30))
        draw.polygon(grow(1.04), fill=scene.accent)
        bottom = max(p[1] for p in pts)
        draw.rectangle((cx - 12, bottom, cx + 12, bottom + CANVAS[1] * 0.2), fill=(50, 50, 55))
    elif kind == "frame":
        draw.polygon(grow(1.16), fill=shade(scene.accent, 0.6))
        draw.polygon(grow(1.1), fill=scene.accent)
    elif kind == "monitor":
        draw.polygon(grow(1.06), fill=(20, 20, 24))
        bottom = max(p[1] for p in pts)
        draw.rectangle((cx - 20, bottom + 20, cx + 20, bottom + 90), fill=(50, 50, 55))
        draw.rectangle((cx - 90, bottom + 88, cx + 90, bottom + 100), fill=(50, 50, 55))
    elif kind == "round":
        box = grow(1.1)
        draw.ellipse(
            (min(p[0] for p in box), min(p[1] for p in box), max(p[0] for p in box), max(p[1] for p in box)),
            fill=scene.accent,
        )
    elif kind == "phone":
        box = grow(1.12, 0.04)
        draw.rounded_rectangle(
            (min(p[0] for p in box), min(p[1] for p in box), max(p[0] for p in box), max(p[1] for p in box)),
            radius=40,
            fill=(15, 15, 18),
        )
    elif kind == "card":
        draw.polygon([(x + 18, y + 22) for x, y in grow(1.05)], fill=shade(scene.sky[1], 0.5))  # shadow


@lru_cache(maxsize=32)
def background(template: str, with_surround: bool) -> Image.Image:
    """The static scene without the input; cached per template so repeated renders skip the drawing."""
    scene = SCENES.get(template, DRONE_SHOW)
    canvas = _gradient(scene.sky[0], scene.sky[1], CANVAS)
    draw = ImageDraw.Draw(canvas)
    rng = random.Random(template)
    _draw_landmark(draw, scene, rng)
    if with_surround:
        _draw_surround(draw, scene)
    return canvas


def content_mask(scene: Scene, size: tuple[int, int]) -> Image.Image | None:
    if scene.surround != "round":
        return None
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).ellipse((0, 0, size[0] - 1, size[1] - 1), fill=255)
    return mask
