"""Hostile media inputs (issue 16, items 5, 7, 8, 9): refused before any HTTP call, quickly, with bounded memory.

The cases that would hang or exhaust memory on unprotected code (a FIFO, /dev/zero, a sparse 1 GiB file) run
in a child process with a memory cap and a timeout, so a regression fails the test instead of the machine.
"""

from __future__ import annotations

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

from airflow_provider_magicvideo.exceptions import MediaError, MediaTooLargeError
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
