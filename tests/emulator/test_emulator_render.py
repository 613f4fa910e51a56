"""Render checks with PyAV: container, streams, duration, and that the input is really composited."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from airflow_provider_magicvideo.emulator import render
from airflow_provider_magicvideo.emulator.catalogue import IMAGE_TO_VIDEO, TEMPLATES, TEXT_TO_VIDEO, VIDEO_TO_VIDEO
from airflow_provider_magicvideo.emulator.testing import png_bytes

MAGENTA = (255, 0, 255)


def probe(path: Path) -> dict:
    with av.open(str(path)) as container:
        video = [s for s in container.streams if s.type == "video"]
        audio = [s for s in container.streams if s.type == "audio"]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        return {
            "format": container.format.name,
            "video": [(s.codec_context.name, s.codec_context.width, s.codec_context.height) for s in video],
            "pix_fmt": video[0].codec_context.pix_fmt if video else None,
            "audio": [s.codec_context.name for s in audio],
            "duration": container.duration / 1_000_000,
            "frames": frames,
        }


def near(frame: np.ndarray, color: tuple[int, int, int], tolerance: int = 60) -> float:
    """Share of pixels within ``tolerance`` of ``color`` on every channel."""
    return float(np.all(np.abs(frame.astype(int) - color) <= tolerance, axis=2).mean())


def render_i2v(
    tmp_path: Path, template: str, color: tuple[int, int, int], fps: int = 12, duration: float = 1.0
) -> dict:
    out = tmp_path / f"{template}-{color}.mp4"
    spec = render.RenderSpec(
        IMAGE_TO_VIDEO, template, str(out), media=png_bytes(color), fps=fps, duration=duration
    )
    render.render(spec)
    return probe(out)


def assert_valid_clip(info: dict, duration: float, fps: int, sound: bool = True) -> None:
    assert "mp4" in info["format"]
    assert info["video"] == [("h264", 608, 1080)]
    assert info["pix_fmt"] == "yuv420p"
    assert info["audio"] == (["aac"] if sound else [])  # text-to-video is "608x1080, without sound"
    assert abs(info["duration"] - duration) <= 0.05 * duration
    assert len(info["frames"]) == round(duration * fps)


def test_default_full_render_5s_24fps(tmp_path):
    out = tmp_path / "default.mp4"
    render.render(
        render.RenderSpec(IMAGE_TO_VIDEO, "Thailand Street", str(out), media=png_bytes())
    )
    info = probe(out)
    assert_valid_clip(info, 5.0, 24)
    middle = info["frames"][60]
    assert near(middle, MAGENTA) > 0.08


def test_input_colour_is_composited_and_templates_differ(tmp_path):
    magenta = render_i2v(tmp_path, "Times Square Billboard", MAGENTA)
    green = render_i2v(tmp_path, "Times Square Billboard", (0, 255, 0))
    other = render_i2v(tmp_path, "Art Gallery", MAGENTA)
    assert_valid_clip(magenta, 1.0, 12)
    mid = len(magenta["frames"]) // 2
    assert near(magenta["frames"][mid], MAGENTA) > 0.08
    assert near(green["frames"][mid], MAGENTA) < 0.01  # magenta comes from the input, not the scene
    assert near(green["frames"][mid], (0, 255, 0)) > 0.08
    diff = np.abs(magenta["frames"][mid].astype(int) - other["frames"][mid].astype(int)).mean()
    assert diff > 10


def test_every_template_has_its_own_scene():
    content = render.decode_image(png_bytes((0, 200, 255)))

    def still(_: int):
        return content

    mids = {}
    for template in TEMPLATES[IMAGE_TO_VIDEO]:
        frames = list(render.composited_frames(template, still, 5))
        mids[template] = np.asarray(frames[2].resize((76, 135)), dtype=int)
        assert near(np.asarray(frames[2]), (0, 200, 255), 40) > 0.02, template
    names = list(mids)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert np.abs(mids[a] - mids[b]).mean() > 5, (a, b)


def test_video_to_video_composites_input_frames(tmp_path):
    source = tmp_path / "source.mp4"
    render.render(
        render.RenderSpec(
            IMAGE_TO_VIDEO,
            "Phone App",
            str(source),
            media=png_bytes((0, 255, 0)),
            fps=12,
            duration=0.5,
        )
    )
    out = tmp_path / "v2v.mp4"
    render.render(
        render.RenderSpec(
            VIDEO_TO_VIDEO,
            "New York Times Square (67)",
            str(out),
            media=source.read_bytes(),
            fps=12,
            duration=1.0,
        )
    )
    info = probe(out)
    assert_valid_clip(info, 1.0, 12)
    assert near(info["frames"][6], (0, 255, 0)) > 0.01  # the source's green billboard shows through


def test_text_to_video_draws_lights(tmp_path):
    out = tmp_path / "t2v.mp4"
    render.render(
        render.RenderSpec(
            TEXT_TO_VIDEO,
            "Shanghai Drone Show",
            str(out),
            prompt="Hello drones",
            fps=12,
            duration=1.0,
        )
    )
    info = probe(out)
    assert_valid_clip(info, 1.0, 12, sound=False)
    last = info["frames"][-1]
    assert (last[: 1080 // 2].max(axis=2) > 200).mean() > 0.002  # lit dots up in the sky


@pytest.mark.parametrize("data", [b"", b"not an image", png_bytes()[:40]])
def test_undecodable_image_raises(data):
    with pytest.raises(render.InvalidMediaError):
        render.decode_image(data)


@pytest.mark.parametrize("data", [b"", b"garbage" * 100, png_bytes()])
def test_undecodable_video_raises(data):
    with pytest.raises(render.InvalidMediaError):
        render.decode_video(data, 5)


def test_fast_clip_is_valid(tmp_path):
    info = probe(render.fast_clip(tmp_path / "fast.mp4"))
    assert info["video"] == [("h264", 608, 1080)] and info["audio"] == ["aac"]
    silent = probe(render.fast_clip(tmp_path / "silent.mp4", sound=False))
    assert silent["video"] == [("h264", 608, 1080)] and silent["audio"] == []
