"""Hostile media inputs (issue 16, items 5, 7, 8, 9): refused before any HTTP call, quickly, with bounded memory.

The cases that would hang or exhaust memory on unprotected code (a FIFO, /dev/zero, a sparse 1 GiB file) run
in a child process with a memory cap and a timeout, so a regression fails the test instead of the machine.
"""

from __future__ import annotations

import base64
import io
import os
import resource
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from airflow_provider_magicvideo.exceptions import InvalidMediaError, MediaError, MediaTooLargeError
from airflow_provider_magicvideo.media import DEFAULT_READ_TIMEOUT, prepare_media

REPO = Path(__file__).resolve().parents[2]
CHILD_MEMORY = 768 * 1024 * 1024  # far below what reading /dev/zero or a 1 GiB file whole would take
CHILD_TIMEOUT = 20.0


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY, CHILD_MEMORY))


def run_isolated(body: str) -> str:
    """Run ``body`` (which calls ``prepare_media`` as ``call(...)``) in a capped child; return its report line.

    The child prints ``MediaError: <message>`` / ``MediaTooLargeError: <message>`` or ``OK``; anything else
    (MemoryError, a hang, a raw exception) fails the calling test with the child's output.
    """
    script = textwrap.dedent("""
        import sys, time
        from airflow_provider_magicvideo.exceptions import MediaError
        from airflow_provider_magicvideo.media import prepare_media as call
        started = time.monotonic()
        try:
        {body}
            print("OK")
        except MediaError as exc:
            print(f"{{type(exc).__name__}}: {{exc}}")
        print(f"elapsed {{time.monotonic() - started:.3f}}", file=sys.stderr)
    """).format(body=textwrap.indent(textwrap.dedent(body).strip(), "    "))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    try:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                              timeout=CHILD_TIMEOUT, preexec_fn=_limit_memory, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"prepare_media did not return within {CHILD_TIMEOUT:.0f}s (it blocks)")
    assert done.returncode == 0, f"child failed (rc {done.returncode}):\n{done.stdout}\n{done.stderr[-3000:]}"
    return done.stdout.strip().splitlines()[-1]  # Airflow may log to stdout before


# --------------------------------------------------------------------------- item 5: not a regular file
@pytest.mark.parametrize("shape", ["str", "Path", "file-uri"])
def test_character_device_is_refused_without_reading(shape):
    value = {"str": "'/dev/zero'", "Path": "__import__('pathlib').Path('/dev/zero')",
             "file-uri": "'file:///dev/zero'"}[shape]
    report = run_isolated(f"call({value}, field='image_url')")
    assert report == ("MediaError: image_url: '/dev/zero' is a character device, not a regular file. "
                      "Pass a regular image file, a URL, base64 or bytes.")


def test_character_device_through_object_storage_path():
    report = run_isolated("""
        from airflow.providers.common.compat.sdk import ObjectStoragePath
        call(ObjectStoragePath("file:///dev/zero"), kind="video")
    """)
    assert report.startswith("MediaError: video: '/dev/zero' is a character device, not a regular file.")


def test_fifo_is_refused_without_opening_it(tmp_path):
    fifo = tmp_path / "frame.png"
    os.mkfifo(fifo)
    for value in (f"{str(fifo)!r}", f"{fifo.as_uri()!r}"):
        report = run_isolated(f"call({value})")
        assert report == (f"MediaError: image: {str(fifo)!r} is a FIFO (named pipe), not a regular file. "
                          "Pass a regular image file, a URL, base64 or bytes.")


def test_fifo_swapped_in_after_the_check_does_not_block(tmp_path, monkeypatch):
    # The stat says "regular file", then the path becomes a FIFO before it is opened: the open must not block.
    import airflow_provider_magicvideo.media as media

    fifo = tmp_path / "swap.png"
    os.mkfifo(fifo)
    regular = os.stat(__file__)
    real_stat = os.stat
    monkeypatch.setattr(media.os, "stat", lambda p, *a, **k: regular if str(p) == str(fifo) else real_stat(p, *a, **k))
    outcome: list[BaseException | str] = []

    def target() -> None:
        try:
            outcome.append(prepare_media(str(fifo)))
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(10)
    if worker.is_alive():  # unblock the reader so the thread ends, then fail
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(5)
        pytest.fail("opening a FIFO for reading blocked")
    assert isinstance(outcome[0], MediaError)
    assert "is a FIFO (named pipe), not a regular file" in str(outcome[0])


def test_socket_and_block_device_words(tmp_path):
    import socket

    sock_path = tmp_path / "s.png"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(sock_path))
        with pytest.raises(MediaError, match=r"^image: '.*s\.png' is a socket, not a regular file\."):
            prepare_media(sock_path)
    finally:
        server.close()


def test_directory_is_named(tmp_path):
    with pytest.raises(MediaError, match=rf"^image_url: {str(tmp_path)!r} is a directory, not a file\."):
        prepare_media(tmp_path.as_uri(), field="image_url")


# --------------------------------------------------------------------------- item 5: read at most limit+1
def test_huge_sparse_file_is_refused_from_its_size(tmp_path):
    big = tmp_path / "huge.png"
    with open(big, "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n")
        handle.truncate(1 << 30)  # 1 GiB, sparse: costs no disk, but reading it whole costs 1 GiB of memory
    report = run_isolated(f"call({str(big)!r})")
    assert report.startswith(f"MediaTooLargeError: image: file {str(big)!r} is 1,073,741,824 bytes, over the "
                             "10,485,760-byte limit.")


class _CountingStorage:
    """An ObjectStoragePath stand-in whose file object records every read size."""

    def __init__(self, payload: bytes, uri: str = "s3://bucket/key.png") -> None:
        self.payload, self.uri, self.reads = payload, uri, []

    def __str__(self) -> str:
        return self.uri

    def open(self, mode: str = "r", **kwargs):
        assert mode == "rb"
        outer = self

        class Handle(io.BytesIO):
            size = len(outer.payload)

            def read(self, n=-1):
                outer.reads.append(n)
                return super().read(n)

        return Handle(self.payload)

    def read_bytes(self) -> bytes:  # must not be used when open() exists: it reads everything
        raise AssertionError("read_bytes() reads the whole object")


def test_object_storage_reads_at_most_limit_plus_one():
    storage = _CountingStorage(b"\x89PNG\r\n\x1a\n" + b"\x00" * 5000)
    with pytest.raises(MediaTooLargeError) as info:
        prepare_media(storage, max_bytes=1000)
    assert storage.reads == [1001]
    assert str(info.value).startswith("image: object 's3://bucket/key.png' is 5,008 bytes, over the 1,000-byte limit.")


def test_real_fsspec_object_over_the_limit_is_not_read_whole(monkeypatch):
    # Airflow's ObjectStoragePath knows no memory:// store; a plain UPath exercises a real fsspec file object.
    import fsspec
    import upath

    import airflow_provider_magicvideo.media as media

    monkeypatch.setattr(media, "_object_storage_path", upath.UPath)
    fs = fsspec.filesystem("memory")
    fs.pipe("/magicvideo-security/big.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 4096)
    try:
        with pytest.raises(MediaTooLargeError, match=r"^image: object 'memory://magicvideo-security/big\.png' is "
                                                     r"4,104 bytes, over the 100-byte limit\."):
            prepare_media("memory://magicvideo-security/big.png", max_bytes=100)
    finally:
        fs.rm("/magicvideo-security/big.png")


# --------------------------------------------------------------------------- item 5: remote reads time out
def test_remote_read_has_a_timeout():
    assert DEFAULT_READ_TIMEOUT == 60.0
    release = threading.Event()

    class Stuck:
        def __str__(self) -> str:
            return "s3://slow-bucket/frame.png"

        def open(self, mode: str = "r", **kwargs):
            release.wait(30)
            raise TimeoutError("released")

    started = time.monotonic()
    try:
        with pytest.raises(MediaError) as info:
            prepare_media(Stuck(), read_timeout=0.3)
    finally:
        release.set()
    assert time.monotonic() - started < 5
    assert str(info.value) == ("image: reading 's3://slow-bucket/frame.png' did not finish within 0.3 s; check the "
                               "storage connection, or copy the file somewhere faster and pass that.")


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf")])
def test_read_timeout_must_be_finite_and_positive(timeout):
    with pytest.raises(MediaError, match="read_timeout"):
        prepare_media(b"x", read_timeout=timeout)


def test_unknown_storage_scheme_is_a_media_error():
    with pytest.raises(MediaError, match=r"^image: cannot read 'nosuchfs://bucket/frame\.png': "):
        prepare_media("nosuchfs://bucket/frame.png")


# --------------------------------------------------------------------------- item 7: structurally broken media
def _pillow(fmt: str, size: tuple[int, int] = (64, 48), **options) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    image = Image.new("RGBA" if options.pop("alpha", False) else "RGB", size, (200, 30, 60))
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    import struct
    import zlib

    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_with_ihdr(width: int, height: int) -> bytes:
    import struct

    png = _pillow("PNG")
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return png[:8] + _png_chunk(b"IHDR", ihdr) + png[33:]


@pytest.fixture(scope="module")
def mp4() -> bytes:
    """A real (tiny) MP4 from PyAV: ftyp, free, mdat, then moov."""
    import av
    import numpy as np

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        for shade in (0, 80, 160):
            frame = av.VideoFrame.from_ndarray(np.full((16, 16, 3), shade, np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return buffer.getvalue()


def _box(kind: bytes, body: bytes = b"", *, large: bool = False, to_end: bool = False) -> bytes:
    import struct

    if to_end:
        return struct.pack(">I", 0) + kind + body
    if large:
        return struct.pack(">I", 1) + kind + struct.pack(">Q", 16 + len(body)) + body
    return struct.pack(">I", 8 + len(body)) + kind + body


FTYP = _box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2mp41")


@pytest.mark.parametrize("make", [
    lambda: _pillow("PNG"), lambda: _pillow("PNG", alpha=True), lambda: _pillow("PNG", (1, 1)),
    lambda: _pillow("JPEG"), lambda: _pillow("JPEG", progressive=True), lambda: _pillow("JPEG", (1, 1)),
    lambda: _pillow("WEBP"), lambda: _pillow("WEBP", lossless=True), lambda: _pillow("WEBP", alpha=True),
    lambda: _pillow("WEBP", exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x00"),
    lambda: _pillow("PNG") + b"trailing bytes after IEND are ignored by decoders",
], ids=["png", "png-alpha", "png-1x1", "jpeg", "jpeg-progressive", "jpeg-1x1", "webp", "webp-lossless",
        "webp-alpha-vp8x", "webp-exif-vp8x", "png-trailing"])
def test_real_images_pass_the_structural_check(make):
    assert prepare_media(make()).startswith("data:image/")


@pytest.mark.parametrize(("make", "problem"), [
    (lambda: _pillow("PNG")[:60], "it is cut inside its IDAT chunk (truncated?)"),
    (lambda: _pillow("PNG")[:8], "it ends before its IHDR chunk (truncated?)"),
    (lambda: _pillow("PNG")[:-12], "it ends before its IEND chunk (truncated?)"),
    (lambda: _pillow("PNG")[:33], "it ends before its IEND chunk (truncated?)"),
    (lambda: _png_with_ihdr(0, 48), "its IHDR gives a zero dimension (0x48)"),
    (lambda: _png_with_ihdr(64, 2_000_000), "its IHDR gives implausible dimensions (64x2,000,000; at most 65,535)"),
    (lambda: _pillow("PNG")[:8] + _png_chunk(b"IEND", b""), "its first chunk is not IHDR"),
    (lambda: (lambda p: p[:-20] + bytes([p[-20] ^ 0xFF]) + p[-19:])(_pillow("PNG")),
     "its IDAT chunk fails its CRC check (corrupted)"),
    (lambda: _pillow("PNG")[:33] + _png_chunk(b"IEND", b""), "it has no IDAT (image data) chunk"),
], ids=["cut-at-60", "signature-only", "no-iend", "ihdr-only", "zero-width", "huge-height", "no-ihdr",
        "bad-crc", "no-idat"])
def test_broken_png_is_invalid_media(make, problem):
    with pytest.raises(InvalidMediaError) as info:
        prepare_media(make(), field="image_url")
    assert str(info.value) == (f"image_url: the given bytes is not a usable PNG: {problem}. Re-export the image: "
                               "sent as it is, it would pay for a generation that fails.")


def _jpeg_with_height(height: int) -> bytes:
    jpeg = bytearray(_pillow("JPEG"))
    sof = jpeg.index(b"\xff\xc0")
    jpeg[sof + 5:sof + 7] = height.to_bytes(2, "big")
    return bytes(jpeg)


@pytest.mark.parametrize(("make", "problem"), [
    (lambda: _pillow("JPEG")[:-2], "it ends inside its image data, without an EOI marker (truncated?)"),
    (lambda: _pillow("JPEG")[:-20], "it ends inside its image data, without an EOI marker (truncated?)"),
    (lambda: (lambda j: j[: j.index(b"\xff\xc4") + 10])(_pillow("JPEG")), "it is cut inside a DHT segment (truncated?)"),
    (lambda: b"\xff\xd8\xff", "it ends before its image data (truncated?)"),
    (lambda: _pillow("JPEG")[:30], "it is cut inside a DQT segment (truncated?)"),
    (lambda: _jpeg_with_height(0), "its SOF frame header gives a zero dimension (64x0)"),
    (lambda: b"\xff\xd8\xff\xe0\x00\x04ab\xff\xd9", "it has no SOF frame header"),
], ids=["no-eoi", "cut-in-scan", "cut-in-dht", "soi-only", "cut-in-dqt", "zero-height", "no-sof"])
def test_broken_jpeg_is_invalid_media(make, problem):
    with pytest.raises(InvalidMediaError) as info:
        prepare_media(make())
    assert str(info.value).startswith(f"image: the given bytes is not a usable JPEG: {problem}. Re-export")


def _webp_riff(body: bytes, declared: int | None = None) -> bytes:
    import struct

    return b"RIFF" + struct.pack("<I", 4 + len(body) if declared is None else declared) + b"WEBP" + body


@pytest.mark.parametrize(("make", "problem"), [
    (lambda: _pillow("WEBP")[:-10], "its RIFF header announces {declared:,} bytes but there are {actual:,} "
                                    "(truncated?)"),
    (lambda: _webp_riff(b""), "it has no image data (VP8/VP8L) chunk"),
    (lambda: _webp_riff(b"ICCP\x04\x00\x00\x00abcd"), "its first chunk is not VP8, VP8L or VP8X"),
    (lambda: _webp_riff(b"VP8 \x40\x00\x00\x00" + b"\x00" * 10), "its VP8 chunk runs past the end of the RIFF data "
                                                               "(truncated?)"),
    (lambda: _webp_riff(b"VP8 \x0a\x00\x00\x00" + b"\x00" * 10), "its VP8 chunk is not a VP8 key frame"),
], ids=["cut", "header-only", "first-chunk", "chunk-past-riff", "bad-vp8"])
def test_broken_webp_is_invalid_media(make, problem):
    data = make()
    declared = int.from_bytes(data[4:8], "little") + 8
    with pytest.raises(InvalidMediaError) as info:
        prepare_media(data)
    expected = problem.format(declared=declared, actual=len(data))
    assert str(info.value).startswith(f"image: the given bytes is not a usable WebP: {expected}. Re-export")


def test_real_mp4_passes(mp4):
    assert prepare_media(mp4, kind="video").startswith("data:video/mp4;base64,")


@pytest.mark.parametrize("data", [
    FTYP + _box(b"moov", b"\x00" * 16) + _box(b"mdat", b"\x00" * 64),
    FTYP + _box(b"mdat", b"\x00" * 64, large=True) + _box(b"moov", b"\x00" * 16),
    FTYP + _box(b"moov", b"\x00" * 16) + _box(b"mdat", b"\x00" * 64, to_end=True),
], ids=["faststart", "64-bit-mdat", "mdat-to-end"])
def test_hand_built_mp4_box_layouts_pass(data):
    assert prepare_media(data, kind="video").startswith("data:video/mp4;base64,")


@pytest.mark.parametrize(("make", "problem"), [
    (lambda mp4: mp4[:-100], "its 'moov' box runs past the end of the file (truncated?)"),
    (lambda mp4: mp4[:60], "its 'mdat' box runs past the end of the file (truncated?)"),
    (lambda mp4: FTYP, "it has no 'moov' box (the movie header)"),
    (lambda mp4: FTYP + _box(b"mdat", b"\x00" * 64, to_end=True), "it has no 'moov' box (the movie header)"),
    (lambda mp4: FTYP + b"\x00\x00\x00", "it ends inside a box header (truncated?)"),
    (lambda mp4: FTYP + b"\x00\x00\x00\x04moov", "it has a box with an impossible size (corrupted)"),
    (lambda mp4: FTYP + _box(b"mdat", b"\x00" * 8, large=True)[:12], "it ends inside a box header (truncated?)"),
    (lambda mp4: FTYP + b"\x00\x00\x00\x10\x01\x02\x03\x04" + b"\x00" * 8 + _box(b"moov"),
     "it has a box with an invalid type (corrupted)"),
], ids=["cut-in-moov", "cut-in-mdat", "ftyp-only", "no-moov", "cut-header", "size-4", "cut-64-bit", "bad-type"])
def test_broken_mp4_is_invalid_media(mp4, make, problem):
    with pytest.raises(InvalidMediaError) as info:
        prepare_media(make(mp4), kind="video", field="video_url")
    assert str(info.value) == (f"video_url: the given bytes is not a usable MP4: {problem}. Re-export the video: "
                               "sent as it is, it would pay for a generation that fails.")


def test_broken_file_names_the_file(tmp_path):
    cut = tmp_path / "cut.png"
    cut.write_bytes(_pillow("PNG")[:60])
    with pytest.raises(InvalidMediaError, match=rf"^image: file {str(cut)!r} is not a usable PNG: it is cut inside"):
        prepare_media(cut)


def test_every_cut_and_flipped_byte_is_refused_cleanly(mp4):
    # Whatever the damage, the outcome is "accepted" or InvalidMediaError: never a raw IndexError/struct.error.
    import random

    rng = random.Random(16)
    samples = {"image": [_pillow("PNG"), _pillow("JPEG"), _pillow("JPEG", progressive=True), _pillow("WEBP"),
                         _pillow("WEBP", lossless=True), _pillow("WEBP", alpha=True)], "video": [mp4]}
    refused = 0
    for kind, blobs in samples.items():
        for blob in blobs:
            damaged = [blob[:cut] for cut in range(12, len(blob))]
            damaged += [blob[:i] + bytes([blob[i] ^ (1 << rng.randrange(8))]) + blob[i + 1:]
                        for i in (rng.randrange(12, len(blob)) for _ in range(200))]
            for data in damaged:
                try:
                    prepare_media(data, kind=kind)  # type: ignore[arg-type]
                except InvalidMediaError:
                    refused += 1
    assert refused > 0.9 * sum(len(b) - 12 for bs in samples.values() for b in bs)  # nearly every cut is caught


# --------------------------------------------------------------------------- item 8: a template that rendered None
@pytest.mark.parametrize("rendered", ["None", "null", " None\n", "NULL"])
@pytest.mark.parametrize("kind", ["image", "video"])
def test_rendered_none_names_the_missing_upstream_value(rendered, kind):
    with pytest.raises(MediaError) as info:
        prepare_media(rendered, kind=kind)  # type: ignore[arg-type]
    message = str(info.value)
    article = {"image": "an image", "video": "a video"}[kind]
    assert message == (f"{kind}: the {kind} rendered to {rendered.strip()!r}, not {article}: the value was None "
                       "when the template was rendered. If it comes from a template such as "
                       "\"{{ ti.xcom_pull(...) }}\" or a param, the upstream XCom or param is probably missing.")
    assert "unrecognised" not in message and "36 89 de" not in message


@pytest.mark.parametrize("rendered", ["", "  \n"])
def test_rendered_empty_names_the_missing_upstream_value(rendered):
    with pytest.raises(MediaError) as info:
        prepare_media(rendered, field="image_url")
    assert str(info.value) == ("image_url: the image is an empty string. Pass a URL, a path, base64 or bytes; if it "
                               "comes from a template, the upstream XCom or param is probably missing or empty.")


# --------------------------------------------------------------------------- item 9: bounded echo, no file bytes
@pytest.mark.parametrize("value", [
    "definitely not an image! " * 4000,
    "https://exa mple.com/" + "a" * 100_000,
    "nosuchfs://bucket/" + "k" * 100_000,
    "/no/such/dir/" + "d" * 3000 + ".png",
    Path("/no/such/dir/" + "p" * 100_000 + ".png"),
], ids=["garbage", "bad-url", "bad-scheme", "long-missing-path", "path-too-long"])
def test_messages_echo_at_most_about_200_characters(value):
    with pytest.raises(MediaError) as info:
        prepare_media(value)
    message = str(info.value)
    total = len(value.strip() if isinstance(value, str) else str(value))
    assert len(message) < 600, message[:1000]
    assert f"… ({total:,} characters)" in message


def test_unrecognised_bytes_are_not_printed(tmp_path):
    secret = b"\x13\x37SECRET-TOKEN-abcdef0123456789"
    blob = tmp_path / "frame.png"
    blob.write_bytes(secret)
    for value in (secret, blob, base64.b64encode(secret).decode()):
        with pytest.raises(MediaError) as info:
            prepare_media(value)
        message = str(info.value)
        assert "in an unrecognised format; the API accepts image/jpeg, image/png, image/webp" in message
        for leak in ("SECRET", "13 37", "1337", secret[:8].hex()):
            assert leak not in message
