"""The API docs' Python sample, unchanged except ``api_key`` and ``base_url``, against the emulator."""

from __future__ import annotations

import re
import time
from pathlib import Path

import av
import pytest
import requests

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
# A verbatim copy ships with the tests so a fresh clone runs this test; the original sits beside the repo
# on the project's machines, and when it is there the copy must still match it.
VENDORED = Path(__file__).resolve().parent / "data" / "seed_sample_client.py"
ORIGINAL = REPO_ROOT.parent / "shared" / "seed" / "sample_client.py"
SAMPLE = ORIGINAL if ORIGINAL.is_file() else VENDORED


@pytest.mark.skipif(not ORIGINAL.is_file(), reason=f"the API doc's seed folder is not beside the repo ({ORIGINAL})")
def test_vendored_sample_client_is_the_docs_own():
    assert VENDORED.read_bytes() == ORIGINAL.read_bytes(), "refresh tests/emulator/data/seed_sample_client.py"


def test_sample_client_runs_end_to_end(emulator, monkeypatch, capsys, tmp_path):
    source = SAMPLE.read_text()
    patched, n_key = re.subn(r"^api_key = .*$", 'api_key = "sample-key"', source, flags=re.M)
    patched, n_url = re.subn(r"^base_url = .*$", f'base_url = "{emulator.base_url}"', patched, flags=re.M)
    assert n_key == n_url == 1
    real_sleep = time.sleep
    monkeypatch.setattr(time, "sleep", lambda _seconds: real_sleep(0.2))
    namespace: dict = {"__name__": "sample_client"}
    exec(compile(patched, str(SAMPLE), "exec"), namespace)
    result = namespace["main"]()
    out = capsys.readouterr().out
    assert "Processing complete" in out
    assert result["status"] == "completed"
    url = re.search(r"'url': '(http[^']+)'", out).group(1)
    download = requests.get(url, timeout=10)
    assert download.status_code == 200 and download.headers["content-type"] == "video/mp4"
    clip = tmp_path / "sample.mp4"
    clip.write_bytes(download.content)
    with av.open(str(clip)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert next(container.decode(video=0)).width == 608
