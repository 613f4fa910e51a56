"""Per-template scene parameters: one row per template instead of one drawing function each."""

from __future__ import annotations

from dataclasses import dataclass

from airflow_provider_magicvideo.emulator.catalogue import IMAGE_TO_VIDEO, TEMPLATES, VIDEO_TO_VIDEO

RGB = tuple[int, int, int]
Quad = tuple[tuple[float, float], tuple[float, float], tuple[float, float], tuple[float, float]]


@dataclass(frozen=True)
class Scene:
    sky: tuple[RGB, RGB]  # gradient top, bottom
    ground: RGB
    accent: RGB  # lit windows, frame rims, neon
    landmark: str  # skyline | shop | gallery | bokeh | desk | pyramid | balloons | metro | tower
    surround: str  # billboard | phone | frame | monitor | round | card
    quad: Quad  # where the input lands, canvas-normalised TL, TR, BR, BL
    camera: tuple[float, float, float, float, float]  # zoom start, zoom end, pan x, pan y, roll degrees
    motion: str = "static"  # static | bob | spin | drop: how the quad itself moves
    root: int = 0  # soundtrack root, semitones above A2
    minor: bool = False
    pulse: float = 2.0  # soundtrack beats per second


def _q(x0: float, y0: float, x1: float, y1: float, skew_l: float = 0.0, skew_r: float = 0.0) -> Quad:
    """A rectangle whose left/right edges are shortened by ``skew`` (perspective seen from the side)."""
    return ((x0, y0 + skew_l), (x1, y0 + skew_r), (x1, y1 - skew_r), (x0, y1 - skew_l))


NIGHT = ((8, 10, 36), (70, 30, 90))
SCENES: dict[str, Scene] = {
    "Thailand Street": Scene(
        ((255, 150, 80), (255, 220, 160)),
        (90, 70, 60),
        (255, 90, 60),
        "shop",
        "billboard",
        _q(0.30, 0.30, 0.70, 0.56, 0.0, 0.03),
        (1.0, 1.12, 0.3, -0.2, 0.5),
        root=0,
        minor=True,
        pulse=2.0,
    ),
    "Times Square Billboard": Scene(
        NIGHT,
        (30, 30, 40),
        (255, 220, 0),
        "skyline",
        "billboard",
        _q(0.28, 0.22, 0.72, 0.60, 0.0, 0.04),
        (1.05, 1.2, -0.3, 0.2, -0.6),
        root=3,
        pulse=2.5,
    ),
    "New York Times Square (77)": Scene(
        ((20, 20, 60), (120, 40, 90)),
        (35, 30, 45),
        (0, 200, 255),
        "skyline",
        "billboard",
        _q(0.32, 0.18, 0.70, 0.50, 0.04, 0.0),
        (1.15, 1.0, 0.2, 0.3, 0.4),
        root=5,
        pulse=3.0,
    ),
    "Phone Social": Scene(
        ((230, 120, 180), (90, 60, 160)),
        (40, 30, 60),
        (255, 255, 255),
        "bokeh",
        "phone",
        _q(0.35, 0.28, 0.65, 0.70),
        (1.0, 1.08, 0.0, -0.3, 1.0),
        "bob",
        root=7,
        pulse=1.5,
    ),
    "Art Gallery": Scene(
        ((235, 230, 220), (210, 200, 185)),
        (120, 90, 60),
        (200, 160, 60),
        "gallery",
        "frame",
        _q(0.31, 0.30, 0.69, 0.58),
        (1.0, 1.15, 0.0, 0.1, 0.0),
        root=2,
        pulse=1.0,
    ),
    "New York Times Square (66)": Scene(
        ((40, 10, 70), (150, 50, 120)),
        (30, 25, 40),
        (255, 60, 160),
        "skyline",
        "billboard",
        _q(0.27, 0.32, 0.73, 0.66, 0.0, 0.05),
        (1.1, 1.0, -0.2, -0.3, -0.5),
        root=8,
        minor=True,
        pulse=2.5,
    ),
    "Dubai Museum": Scene(
        ((200, 225, 245), (250, 240, 225)),
        (220, 205, 180),
        (210, 170, 90),
        "gallery",
        "frame",
        _q(0.30, 0.26, 0.66, 0.54, 0.04, 0.0),
        (1.0, 1.1, 0.4, 0.0, 0.3),
        root=10,
        pulse=1.25,
    ),
    "Digital Float": Scene(
        ((10, 30, 70), (20, 120, 160)),
        (10, 20, 40),
        (80, 255, 230),
        "bokeh",
        "card",
        _q(0.30, 0.32, 0.70, 0.60),
        (1.0, 1.05, 0.0, 0.0, 1.5),
        "bob",
        root=1,
        minor=True,
        pulse=1.75,
    ),
    "Rotating Cards": Scene(
        ((60, 20, 90), (200, 80, 120)),
        (30, 10, 40),
        (255, 200, 240),
        "bokeh",
        "card",
        _q(0.30, 0.30, 0.70, 0.62),
        (1.0, 1.0, 0.0, 0.0, 0.0),
        "spin",
        root=4,
        pulse=3.5,
    ),
    "Desktop Reveal": Scene(
        ((180, 190, 200), (140, 150, 165)),
        (95, 70, 50),
        (60, 60, 70),
        "desk",
        "monitor",
        _q(0.26, 0.36, 0.74, 0.60),
        (1.25, 1.0, 0.0, 0.2, 0.0),
        root=6,
        pulse=1.0,
    ),
    "Egypt Pyramid": Scene(
        ((250, 190, 110), (255, 235, 190)),
        (215, 175, 110),
        (255, 210, 120),
        "pyramid",
        "billboard",
        ((0.40, 0.38), (0.60, 0.38), (0.70, 0.62), (0.30, 0.62)),
        (1.0, 1.14, -0.2, 0.3, 0.0),
        root=9,
        minor=True,
        pulse=1.5,
    ),
    "Frames Drop": Scene(
        ((245, 240, 235), (225, 220, 210)),
        (150, 120, 90),
        (40, 40, 40),
        "gallery",
        "frame",
        _q(0.30, 0.32, 0.70, 0.60),
        (1.0, 1.06, 0.0, 0.0, 0.0),
        "drop",
        root=11,
        pulse=4.0,
    ),
    "Cappadocia Balloons": Scene(
        ((120, 170, 230), (250, 200, 160)),
        (170, 120, 90),
        (255, 120, 60),
        "balloons",
        "card",
        _q(0.32, 0.34, 0.68, 0.58, 0.0, 0.02),
        (1.0, 1.1, 0.3, 0.4, 0.0),
        "bob",
        root=2,
        minor=True,
        pulse=0.75,
    ),
    "Times Square Round Screen": Scene(
        NIGHT,
        (25, 25, 35),
        (255, 160, 0),
        "skyline",
        "round",
        _q(0.30, 0.30, 0.70, 0.58),
        (1.0, 1.15, 0.0, -0.2, 0.0),
        root=5,
        minor=True,
        pulse=2.0,
    ),
    "Stockholm Metro": Scene(
        ((60, 70, 80), (110, 120, 125)),
        (70, 70, 75),
        (230, 230, 120),
        "metro",
        "billboard",
        _q(0.26, 0.30, 0.62, 0.60, 0.0, 0.05),
        (1.0, 1.12, 0.4, 0.0, 0.0),
        root=0,
        pulse=2.75,
    ),
    "Tokyo Billboard": Scene(
        ((15, 5, 40), (90, 20, 110)),
        (20, 15, 30),
        (255, 40, 200),
        "skyline",
        "billboard",
        _q(0.34, 0.20, 0.72, 0.52, 0.05, 0.0),
        (1.12, 1.0, 0.3, 0.3, 0.8),
        root=3,
        minor=True,
        pulse=3.0,
    ),
    "San Francisco Skyscrapers": Scene(
        ((150, 190, 225), (220, 225, 230)),
        (80, 90, 100),
        (250, 250, 255),
        "skyline",
        "billboard",
        _q(0.30, 0.24, 0.66, 0.54, 0.0, 0.03),
        (1.0, 1.18, -0.3, -0.3, 0.0),
        root=7,
        pulse=1.25,
    ),
    "Malaysia Shop": Scene(
        ((40, 140, 110), (200, 230, 190)),
        (70, 80, 60),
        (255, 220, 80),
        "shop",
        "billboard",
        _q(0.30, 0.30, 0.70, 0.54),
        (1.08, 1.0, -0.2, 0.2, -0.4),
        root=9,
        pulse=2.25,
    ),
    "Las Vegas LED": Scene(
        ((30, 0, 20), (140, 30, 30)),
        (40, 20, 20),
        (255, 200, 40),
        "skyline",
        "billboard",
        _q(0.28, 0.28, 0.72, 0.62, 0.03, 0.03),
        (1.0, 1.2, 0.0, 0.3, -1.0),
        root=10,
        minor=True,
        pulse=3.5,
    ),
    "Phone App": Scene(
        ((210, 215, 230), (170, 180, 210)),
        (100, 90, 80),
        (30, 30, 30),
        "desk",
        "phone",
        _q(0.36, 0.30, 0.64, 0.70),
        (1.15, 1.0, 0.0, 0.0, -1.0),
        root=1,
        pulse=1.5,
    ),
    "Paris Eiffel Tower": Scene(
        ((120, 150, 210), (240, 190, 170)),
        (90, 110, 80),
        (255, 230, 170),
        "tower",
        "billboard",
        _q(0.46, 0.34, 0.76, 0.58, 0.0, 0.03),
        (1.0, 1.12, 0.4, 0.3, 0.5),
        root=4,
        minor=True,
        pulse=1.0,
    ),
}
# video-to-video renames: same scenes.
SCENES["New York Times Square (78)"] = SCENES["New York Times Square (77)"]
SCENES["New York Times Square (67)"] = SCENES["New York Times Square (66)"]

assert set(TEMPLATES[IMAGE_TO_VIDEO]) | set(TEMPLATES[VIDEO_TO_VIDEO]) <= set(SCENES)

DRONE_SHOW = Scene(
    ((2, 4, 18), (20, 25, 60)),
    (10, 12, 30),
    (120, 200, 255),
    "skyline",
    "none",
    _q(0.2, 0.2, 0.8, 0.5),
    (1.0, 1.08, 0.0, -0.2, 0.0),
    root=2,
    pulse=1.0,
)
