"""``bench.campaign`` without a deployment: its CLI rules, checks and outputs (the deployment run itself is
``tests/integration/test_campaign_smoke.py``). Nothing here measures or asserts a time."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

pytest.importorskip("psycopg2")  # bench.campaign_run imports the deployment tooling (the integration extra)

from bench import campaign
from bench.campaign_paths import DAGS, PATHS
from bench.campaign_report import markdown_table, write_all
from bench.campaign_run import CampaignResult, _deliveries, verify


def test_small_runs_never_write_the_real_results() -> None:
    assert campaign.parse_args(["--smoke"]).stem == "campaign-smoke"
    assert campaign.parse_args(["--sizes", "20", "--render-seconds", "120"]).stem == "campaign-smoke"
    assert campaign.parse_args(["--render-seconds", "20"]).stem == "campaign-smoke"
    assert campaign.parse_args([]).stem == "campaign"


def test_unknown_path_is_refused() -> None:
    with pytest.raises(SystemExit):
        campaign.parse_args(["--paths", "no_such_path"])


def test_every_path_has_its_dag_file() -> None:
    for path in PATHS.values():
        assert (DAGS / f"campaign_{path.name}.py").is_file(), path.name


def test_a_path_whose_operator_is_missing_says_why() -> None:
    from bench.campaign_paths import CampaignPath

    assert "not importable" in (CampaignPath("x", "-", requires="no_such_module:Thing").unavailable() or "")
    assert CampaignPath("y", "-", requires="pathlib:Path").unavailable() is None


def test_deliveries_are_found_in_any_xcom_shape() -> None:
    one = {"uri": "file:///x/row-0000.mp4", "sha256": "a", "size": 1, "generation_id": "g"}
    assert _deliveries(one) == [one]
    assert _deliveries(json.dumps(one)) == [one]
    assert _deliveries({"row-0000": one, "other": 3}) == [one]
    assert _deliveries([one, {"generation_id": "only"}]) == [one]


def test_a_batch_tasks_deliveries_are_read_from_its_manifest(tmp_path: Path) -> None:
    one = {"key": "row-0000", "uri": "file:///x/row-0000.mp4", "sha256": "a", "size": 1, "generation_id": "g",
           "status": "delivered"}
    failed = {**one, "key": "row-0001", "status": "failed", "uri": None}
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"rows": [one, failed]}))
    assert _deliveries({"manifest_uri": f"file://{manifest}", "rows": 2, "delivered": 1}) == [one]


def test_verify_checks_size_sha256_and_ftyp(tmp_path: Path) -> None:
    data = b"\x00\x00\x00\x18ftypisom" + bytes(100)
    file = tmp_path / "row-0000.mp4"
    file.write_bytes(data)
    record = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert verify(file, record)
    assert not verify(file, {**record, "sha256": "0" * 64})
    assert not verify(file, {**record, "size": 3})
    assert not verify(file, None)
    file.write_bytes(b"\x00\x00\x00\x18moov" + bytes(100))
    assert not verify(file, {"size": 108, "sha256": hashlib.sha256(file.read_bytes()).hexdigest()})


def test_outputs_carry_the_required_fields(tmp_path: Path) -> None:
    ran = CampaignResult(path="render_operator", n=2, render_s=20, poll_s=5, parallelism=4, wall_s=30.0,
                         ideal_s=25.5, ratio=30 / 25.5, renders_created=2, videos_verified=2,
                         worker_slot_s_per_render=3.0, cpu_s={"scheduler": 1.0}, rss_proc_peak_mb={"scheduler": 9})
    gone = CampaignResult(path="batch_operator", n=2, render_s=20, poll_s=5, parallelism=4, status="skipped",
                          problems=["skipped: not importable"])
    md, js, png = write_all([ran, gone], tmp_path, "campaign-smoke", command="python -m bench.campaign --smoke",
                            settings="render 20 s", elapsed=1.0)
    records = json.loads(js.read_text())["results"]
    for key in ("path", "n", "wall_s", "ideal_s", "renders_created", "videos_verified", "worker_slot_s_per_render"):
        assert all(key in r for r in records), key
    assert records[1]["wall_s"] is None  # NaN written as null: valid JSON
    assert "skipped: not importable" in md.read_text()
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert "| batch_operator | 2 | skipped |" in markdown_table([gone])
