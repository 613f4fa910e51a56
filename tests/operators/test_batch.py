"""MagicVideoBatchRenderOperator against the emulator over a real socket: validation, billing-once resume (with
and without a state store), partial failure, the deferred path, the manifest.

Airflow's retry is simulated by running ``execute`` again with the same durable ``task_state_store``
(``None`` emulates Airflow 3.0-3.2, which keeps nothing between tries); POSTs are counted by the emulator.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, TaskDeferred

from airflow_provider_magicvideo.emulator.testing import data_uri, png_bytes
from airflow_provider_magicvideo.exceptions import BatchIncompleteError
from airflow_provider_magicvideo.hooks.magicvideo import MagicVideoHook
from airflow_provider_magicvideo.operators.batch import MagicVideoBatchRenderOperator
from airflow_provider_magicvideo.rows import row_request_id
from airflow_provider_magicvideo.triggers.batch import MagicVideoBatchTrigger
from tests.conftest import TEST_API_KEY
from tests.task_support import EmulatorTime, Store, first_event

pytestmark = pytest.mark.integration

IMAGE = data_uri(png_bytes((200, 40, 90), (64, 48)))
#: The emulator cannot fetch it: the generation is created (the POST is accepted) and ends in error.
UNREACHABLE = "http://127.0.0.1:9/missing.png"
CREDITS = 1_050_000


class TI:
    dag_id, task_id, run_id = "batch_dag", "render_chunk", "manual__2026"

    def __init__(self, try_number: int = 1, map_index: int = -1) -> None:
        self.try_number = try_number
        self.map_index = map_index
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = json.loads(json.dumps(value))

    def xcom_pull(self, task_ids: Any = None, key: str = "return_value", map_indexes: Any = None) -> Any:
        return self.xcoms.get(key)


class RunTI(TI):
    """A TI whose DAG run's other tasks have recorded ``spent`` (their ``credits_used`` XComs)."""

    def __init__(self, spent: list[int], try_number: int = 1) -> None:
        super().__init__(try_number)
        self.spent = spent

    def xcom_pull(self, task_ids: Any = None, key: str = "return_value", map_indexes: Any = None) -> Any:
        if key == "credits_used" and isinstance(task_ids, list):
            return self.spent + ([self.xcoms[key]] if key in self.xcoms else [])
        return super().xcom_pull(task_ids, key, map_indexes)


def context(store: Store | None, ti: TI) -> dict[str, Any]:
    return {"ti": ti, "task_state_store": store, "dag_run": SimpleNamespace(start_date=None),
            "dag": SimpleNamespace(task_ids=["earlier_renders", ti.task_id])}


def rows(n: int = 5, **overrides: dict[str, Any]) -> list[dict[str, Any]]:
    made = [{"key": f"SKU-{i}", "image": IMAGE, "template": "Art Gallery"} for i in range(1, n + 1)]
    for row in made:
        row.update(overrides.get(row["key"], {}))
    return made


def operator(tmp_path: Path, chunk: list[dict[str, Any]], **kwargs: Any) -> MagicVideoBatchRenderOperator:
    kwargs = {"deferrable": False, "max_in_flight": 3, "poll_interval": 1, "timeout": 3600, **kwargs}
    return MagicVideoBatchRenderOperator(task_id="render_chunk", rows=chunk, destination=str(tmp_path / "out"),
                                         retries=2, **kwargs)


def manifest(summary_or_uri: Any) -> dict[str, Any]:
    uri = summary_or_uri["manifest_uri"] if isinstance(summary_or_uri, dict) else summary_or_uri
    return json.loads(Path(uri.removeprefix("file://")).read_text())


def posts_by_row(emulator, ti: TI) -> dict[str, int]:
    by_id = emulator.stats()["posts_by_client_request_id"]
    base = f"airflow:{ti.dag_id}:{ti.task_id}:{ti.run_id}:{ti.map_index}"
    return {f"SKU-{i}": by_id.get(row_request_id(base, f"SKU-{i}"), 0) for i in range(1, 6)}


def on_emulator_time(monkeypatch, op: MagicVideoBatchRenderOperator, emulator) -> EmulatorTime:
    """Every hook's clock and sleep on the emulator's paused clock: usage-log lookups and waits take no real time."""
    fake = EmulatorTime(emulator)
    real = op.get_hook

    def get_hook(ctx, row_key=None):
        hook = real(ctx, row_key)
        hook.clock, hook.sleep = fake, fake.sleep
        return hook

    monkeypatch.setattr(op, "get_hook", get_hook)
    return fake


def test_a_valid_chunk_delivers_every_video_and_a_manifest(magicvideo_emulator, magicvideo_conn, tmp_path):
    magicvideo_conn(magicvideo_emulator.base_url, max_retries=0)
    ti = TI()
    summary = operator(tmp_path, rows()).execute(context(Store(), ti))

    assert summary == {"manifest_uri": f"file://{tmp_path}/out/manifest.json", "rows": 5, "delivered": 5,
                       "failed": 0, "invalid": 0, "credits_used": 5 * CREDITS,
                       "gallery_uri": f"file://{tmp_path}/out/index.html"}
    page = (tmp_path / "out" / "index.html").read_text()
    assert all(f'src="SKU-{i}.mp4"' in page for i in range(1, 6))  # the gallery beside the manifest
    listed = manifest(summary)
    assert listed["task"] == "batch_dag.render_chunk"
    assert listed["credits_used"] == 5 * CREDITS
    assert [r["key"] for r in listed["rows"]] == [f"SKU-{i}" for i in range(1, 6)]
    for row in listed["rows"]:
        assert set(row) == {"key", "template", "model", "generation_id", "status", "uri", "size", "sha256",
                            "credits_used", "error"}
        video = tmp_path / "out" / f"{row['key']}.mp4"
        assert row["status"] == "delivered" and row["error"] is None
        assert row["uri"] == f"file://{video}" and row["template"] == "Art Gallery"
        assert row["model"] == "magic/image-to-video" and row["credits_used"] == CREDITS
        assert row["sha256"] == hashlib.sha256(video.read_bytes()).hexdigest() and row["size"] == video.stat().st_size
    assert posts_by_row(magicvideo_emulator, ti) == dict.fromkeys((f"SKU-{i}" for i in range(1, 6)), 1)
    text = json.dumps([listed, summary, ti.xcoms])
    assert TEST_API_KEY not in text


def test_each_row_is_written_to_the_state_store_twice_named_and_delivered(magicvideo_emulator, magicvideo_conn,
                                                                          tmp_path):
    # Each write is a round trip through the task's supervisor to the api-server, one at a time: in a
    # 1,000-row chunk, every extra write per row on the submit or the delivery path costs seconds of wall time.
    magicvideo_conn(magicvideo_emulator.base_url, max_retries=0)
    store, writes = Store(), Counter()
    real_set = store.set

    def counting_set(key: str, value: Any) -> None:
        writes[key] += 1
        real_set(key, value)

    store.set = counting_set  # type: ignore[method-assign]
    operator(tmp_path, rows()).execute(context(store, TI()))
    assert {k: n for k, n in writes.items() if k.startswith("magicvideo_batch:")} == {
        f"magicvideo_batch:SKU-{i}": 2 for i in range(1, 6)}  # its generation id, then its delivery
    assert writes["magicvideo_batch"] <= 2  # the chunk's plan, and once when it starts submitting
    assert all(store[f"magicvideo_batch:SKU-{i}"]["status"] == "completed" for i in range(1, 6))


def test_one_invalid_row_refuses_the_whole_chunk_and_names_every_bad_row(magicvideo_emulator, magicvideo_conn,
                                                                          tmp_path):
    magicvideo_conn(magicvideo_emulator.base_url, max_retries=0)
    chunk = rows(**{"SKU-2": {"template": "No Such Template"}, "SKU-4": {"image": None, "prompt": "hi"}})
    chunk.append({"key": "SKU-1", "image": IMAGE})  # a duplicate key
    with pytest.raises(AirflowFailException) as refused:
        operator(tmp_path, chunk).execute(context(Store(), TI()))
    message = str(refused.value)
    assert "3 of 6 rows are invalid; nothing was submitted" in message
    assert "row 2 (key 'SKU-2'): template:" in message
    assert "row 4 (key 'SKU-4'): prompt:" in message
    assert "row 6 (key 'SKU-1'): key: 'SKU-1' is used by an earlier row" in message
    assert magicvideo_emulator.stats()["total_posts"] == 0
    assert not (tmp_path / "out").exists()


def test_skip_invalid_renders_the_others_and_lists_the_invalid_rows(magicvideo_emulator, magicvideo_conn, tmp_path):
    magicvideo_conn(magicvideo_emulator.base_url, max_retries=0)
    chunk = rows(3, **{"SKU-2": {"tempalte": "Art Gallery"}})
    summary = operator(tmp_path, chunk, skip_invalid=True).execute(context(Store(), TI()))
    assert (summary["delivered"], summary["invalid"], summary["failed"]) == (2, 1, 0)
    [bad] = [r for r in manifest(summary)["rows"] if r["status"] == "invalid"]
    assert bad["key"] == "SKU-2" and bad["generation_id"] is None and bad["credits_used"] is None
    assert bad["error"].startswith("tempalte: not a row field")
    assert magicvideo_emulator.stats()["total_posts"] == 2


def crash_after(n: int, real: Any) -> Any:
    """A MagicVideoHook.submit that crashes the worker (before sending) from its ``n + 1``-th call on."""
    calls = []

    def submit(hook: MagicVideoHook, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) > n:
            raise RuntimeError("the worker was killed")
        return real(hook, **kwargs)

    return submit


@pytest.mark.parametrize("store_kind", ["state_store", "no_state_store"])
def test_a_retry_after_a_crash_mid_submit_renders_each_row_once(magicvideo_emulator, magicvideo_conn, tmp_path,
                                                                 monkeypatch, store_kind):
    magicvideo_conn(magicvideo_emulator.base_url, max_retries=0)
    store = Store() if store_kind == "state_store" else None
    op = operator(tmp_path, rows(), max_in_flight=1)  # one at a time: the crash lands after exactly 2 POSTs
    real_submit = MagicVideoHook.submit
    monkeypatch.setattr(MagicVideoHook, "submit", crash_after(2, real_submit))
    with pytest.raises(RuntimeError, match="killed"):
        op.execute(context(store, TI(try_number=1)))
    assert magicvideo_emulator.stats()["total_posts"] == 2

    monkeypatch.setattr(MagicVideoHook, "submit", real_submit)
    # Rows 3-5 were about to be sent (state store) or may have been (no store): the usage log is read first,
    # for the connection's whole reconcile window, on the emulator's clock.
    fake = on_emulator_time(monkeypatch, op, magicvideo_emulator)
    retry = TI(try_number=2)
    summary = op.execute(context(store, retry))
    assert summary["delivered"] == 5
    assert magicvideo_emulator.stats()["total_posts"] == 5
    assert set(posts_by_row(magicvideo_emulator, retry).values()) == {1}
    if store is None:
        assert fake.slept >= 180  # it proved rows 3-5 absent before submitting them


def test_a_failed_render_is_listed_fails_the_task_and_only_it_is_submitted_again(magicvideo_emulator,
                                                                                 magicvideo_conn, tmp_path):
    magicvideo_conn(magicvideo_emulator.base_url, max_retries=0)
    store, op = Store(), operator(tmp_path, rows(**{"SKU-3": {"image": UNREACHABLE}}))
    with pytest.raises(BatchIncompleteError) as failed:
        op.execute(context(store, TI(try_number=1)))
    assert failed.value.disposition.task_retry  # Airflow retries it
    assert "1 of 5 rows did not deliver" in str(failed.value) and "SKU-3 (failed): MediaDownloadError" in str(
        failed.value)
    listed = manifest(f"file://{tmp_path}/out/manifest.json")
    bad = listed["rows"][2]
    assert bad["status"] == "failed" and bad["credits_used"] == 0 and bad["uri"] is None
    assert bad["generation_id"] and bad["error"].startswith("MediaDownloadError: ")
    assert listed["credits_used"] == 4 * CREDITS
    delivered = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out").glob("*.mp4")}
    assert len(delivered) == 4

    retry = TI(try_number=2)
    with pytest.raises(BatchIncompleteError):
        op.execute(context(store, retry))
    assert posts_by_row(magicvideo_emulator, retry) == {"SKU-1": 1, "SKU-2": 1, "SKU-3": 2, "SKU-4": 1, "SKU-5": 1}
    # Delivered videos were not downloaded or written again.
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out").glob("*.mp4")} == delivered


def test_each_row_is_counted_once_in_the_metrics_as_it_completes_or_fails(magicvideo_emulator, magicvideo_conn,
                                                                         tmp_path, stats):
    magicvideo_conn(magicvideo_emulator.base_url, max_retries=0)
    store, op = Store(), operator(tmp_path, rows(**{"SKU-3": {"image": UNREACHABLE}}))
    tags = {"model": "magic/image-to-video", "template": "Art_Gallery"}

    def counted() -> dict[str, Any]:
        calls = stats.ours()
        return {name: [value for kind, stat, value, t in calls if stat == name and t == tags]
                for name in ("magicvideo.generation.completed", "magicvideo.generation.failed",
                             "magicvideo.generation.credits", "magicvideo.generation.duration")}

    with pytest.raises(BatchIncompleteError):
        op.execute(context(store, TI(try_number=1)))
    first = counted()
    assert first["magicvideo.generation.completed"] == [1, 1, 1, 1]
    assert first["magicvideo.generation.failed"] == [1]
    assert sum(first["magicvideo.generation.credits"]) == 4 * CREDITS
    assert len(first["magicvideo.generation.duration"]) == 4  # submit time known for each row

    with pytest.raises(BatchIncompleteError):  # the retry submits only SKU-3, which fails again
        op.execute(context(store, TI(try_number=2)))
    second = counted()
    assert second["magicvideo.generation.completed"] == [1, 1, 1, 1]  # the delivered rows are not counted again
    assert second["magicvideo.generation.failed"] == [1, 1]


def test_allow_failed_rows_succeeds_with_the_failure_in_the_manifest(magicvideo_emulator, magicvideo_conn,
                                                                     tmp_path):
    magicvideo_conn(magicvideo_emulator.base_url, max_retries=0)
    op = operator(tmp_path, rows(3, **{"SKU-1": {"image": UNREACHABLE}}), allow_failed_rows=True)
    summary = op.execute(context(Store(), TI()))
    assert (summary["delivered"], summary["failed"], summary["credits_used"]) == (2, 1, 2 * CREDITS)
    assert [r["status"] for r in manifest(summary)["rows"]] == ["failed", "delivered", "delivered"]


@pytest.mark.parametrize("resume", ["state_store", "kwargs_without_state_store", "xcom_without_state_store"])
def test_the_deferred_path_waits_on_one_trigger(magicvideo_emulator, magicvideo_conn, tmp_path, resume):
    magicvideo_conn(magicvideo_emulator.base_url, max_retries=0)
    store = Store() if resume == "state_store" else None
    op, ti = operator(tmp_path, rows(4, **{"SKU-4": {"image": UNREACHABLE}}), deferrable=True), TI(map_index=2)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context(store, ti))
    trigger = deferred.value.trigger
    assert isinstance(trigger, MagicVideoBatchTrigger) and len(trigger.generation_ids) == 4
    _, trigger_kwargs = trigger.serialize()
    assert TEST_API_KEY not in json.dumps(trigger_kwargs)
    if store is not None:  # the plan is in the store, one entry per row: nothing to hand over
        assert deferred.value.kwargs is None
        assert store["magicvideo_batch"]["order"] == ["SKU-1", "SKU-2", "SKU-3", "SKU-4"]
        assert set(trigger.generation_ids) == {store[f"magicvideo_batch:SKU-{i}"]["generation_id"] for i in range(1, 5)}

    # rebuilt from its kwargs, as the triggerer does
    event = asyncio.run(first_event(MagicVideoBatchTrigger(**json.loads(json.dumps(trigger_kwargs)))))
    assert sorted(o["status"] for o in event["generations"].values()) == ["completed"] * 3 + ["error"]
    # dag.test() resumes without the kwargs
    kwargs = (deferred.value.kwargs or {}) if resume == "kwargs_without_state_store" else {}
    with pytest.raises(BatchIncompleteError, match="SKU-4"):
        op.execute_complete(context(store, ti), event=json.loads(json.dumps(event)), **kwargs)
    listed = manifest(f"file://{tmp_path}/out/manifest-2.json")
    assert TEST_API_KEY not in json.dumps(listed)
    page = (tmp_path / "out" / "index-2.html").read_text()  # chunks sharing a folder: one page each
    assert "SKU-4" in page and "failed" in page and TEST_API_KEY not in page
    assert listed["task"] == "batch_dag.render_chunk[2]"
    assert [r["status"] for r in listed["rows"]] == ["delivered"] * 3 + ["failed"]
    assert magicvideo_emulator.stats()["total_posts"] == 4


def test_rows_still_rendering_at_the_timeout_fail_the_task_and_the_retry_reconnects(magicvideo_emulator,
                                                                                    magicvideo_conn, tmp_path,
                                                                                    monkeypatch):
    from tests.hooks.support import FakeClock

    magicvideo_conn(magicvideo_emulator.base_url, max_retries=0)
    magicvideo_emulator.pause_clock()  # renders stand still until released: nothing races a clock
    fake = FakeClock(start=magicvideo_emulator.clock()["now"])
    store = Store()
    op = operator(tmp_path, rows(2), timeout=5, allow_failed_rows=True)
    real = op.get_hook
    monkeypatch.setattr(op, "get_hook", lambda ctx, row_key=None: fake.attach(real(ctx, row_key)))
    with pytest.raises(BatchIncompleteError, match=r"SKU-1 \(pending\)"):  # paid renders: never "allowed"
        op.execute(context(store, TI(try_number=1)))
    listed = manifest(f"file://{tmp_path}/out/manifest.json")
    assert [(r["status"], r["credits_used"]) for r in listed["rows"]] == [("pending", None)] * 2
    assert all(r["generation_id"] for r in listed["rows"])

    magicvideo_emulator.complete_pending()
    op.timeout = 3600
    summary = op.execute(context(store, TI(try_number=2)))
    assert summary["delivered"] == 2
    assert magicvideo_emulator.stats()["total_posts"] == 2


def test_a_page_that_cannot_be_written_never_fails_the_delivered_rows(magicvideo_emulator, magicvideo_conn,
                                                                      tmp_path, monkeypatch):
    from airflow_provider_magicvideo.exceptions import DeliveryError
    from airflow_provider_magicvideo.operators import batch

    def refuse(*args: Any, **kwargs: Any) -> str:
        raise DeliveryError("Cannot write file:///out/index.html: PermissionError")

    monkeypatch.setattr(batch, "write_gallery", refuse)
    magicvideo_conn(magicvideo_emulator.base_url, max_retries=0)
    summary = operator(tmp_path, rows()).execute(context(Store(), TI()))
    assert summary["delivered"] == 5 and summary["gallery_uri"] is None
    assert (tmp_path / "out" / "manifest.json").is_file()


def test_lineage_names_each_storage_input_each_delivered_video_and_the_manifest(magicvideo_emulator,
                                                                               magicvideo_conn, tmp_path):
    pytest.importorskip("airflow.providers.openlineage", reason="the OpenLineage provider: the openlineage extra")
    from airflow.providers.common.compat.openlineage.facet import Dataset

    magicvideo_conn(magicvideo_emulator.base_url, max_retries=0)
    picture = tmp_path / "cat.png"
    picture.write_bytes(png_bytes((10, 200, 30), (64, 48)))
    chunk = rows(3, **{"SKU-1": {"image": f"file://{picture}"}, "SKU-3": {"image": UNREACHABLE}})
    op = operator(tmp_path, chunk, allow_failed_rows=True)
    summary = op.execute(context(Store(), TI()))

    lineage = op.get_openlineage_facets_on_complete(None)
    out = tmp_path / "out"
    assert lineage.inputs == [Dataset(namespace="file", name=str(picture))]  # data URIs and URLs name none
    assert lineage.outputs == [Dataset(namespace="file", name=str(out / "SKU-1.mp4")),
                               Dataset(namespace="file", name=str(out / "SKU-2.mp4")),
                               Dataset(namespace="file", name=str(out / "manifest.json"))]
    facet = lineage.run_facets["magicvideo_batch"]
    assert (facet.rows, facet.delivered, facet.failed, facet.invalid) == (3, 2, 1, 0)
    assert facet.credits_used == summary["credits_used"] == 2 * CREDITS
    assert facet.manifest_uri == summary["manifest_uri"]


def test_a_chunk_that_would_exceed_the_credit_budget_submits_nothing(magicvideo_emulator, magicvideo_conn,
                                                                      tmp_path):
    magicvideo_conn(magicvideo_emulator.base_url, max_retries=0)
    op = operator(tmp_path, rows(), credit_budget=5 * CREDITS)
    with pytest.raises(AirflowFailException) as refused:
        op.execute(context(Store(), RunTI(spent=[CREDITS])))  # another task of the run rendered one
    message = str(refused.value)
    assert message.startswith("credit_budget: this DAG run has recorded 1,050,000 credits; 5 more generations")
    assert "exceed the budget of 5,250,000. Nothing was submitted." in message
    assert magicvideo_emulator.stats()["total_posts"] == 0

    ti = RunTI(spent=[])
    assert operator(tmp_path, rows(), credit_budget=5 * CREDITS).execute(context(Store(), ti))["delivered"] == 5
    assert ti.xcoms["credits_used"] == 5 * CREDITS  # what the run's other tasks count against the budget


def test_a_retry_counts_its_own_renders_once_against_the_budget(magicvideo_emulator, magicvideo_conn, tmp_path,
                                                                 monkeypatch):
    magicvideo_conn(magicvideo_emulator.base_url, max_retries=0)
    store = Store()
    op = operator(tmp_path, rows(), max_in_flight=1, credit_budget=5 * CREDITS)
    on_emulator_time(monkeypatch, op, magicvideo_emulator)  # the retry's usage-log lookup waits no real time
    real_submit = MagicVideoHook.submit
    monkeypatch.setattr(MagicVideoHook, "submit", crash_after(2, real_submit))
    with pytest.raises(RuntimeError, match="killed"):
        op.execute(context(store, RunTI(spent=[], try_number=1)))
    monkeypatch.setattr(MagicVideoHook, "submit", real_submit)
    # 2 rendering (recorded) + 3 to submit = the budget: allowed, and not counted as 2 + 5.
    assert op.execute(context(store, RunTI(spent=[], try_number=2)))["delivered"] == 5
    assert magicvideo_emulator.stats()["total_posts"] == 5


def test_min_balance_renders_refuses_the_chunk_before_any_post(magicvideo_emulator, magicvideo_conn, tmp_path):
    magicvideo_conn(magicvideo_emulator.base_url, max_retries=0)
    magicvideo_emulator.set_faults(profile="no_credits")
    with pytest.raises(AirflowFailException, match=r"min_balance_renders: the account's balance 0 credits .*"
                                                   r"fewer than the 5 required\. Nothing was submitted"):
        operator(tmp_path, rows(), min_balance_renders=5).execute(context(Store(), TI()))
    assert magicvideo_emulator.stats()["total_posts"] == 0


@pytest.mark.parametrize(("kwargs", "field"), [({"credit_budget": 0}, "credit_budget"),
                                               ({"min_balance_renders": "many"}, "min_balance_renders")])
def test_spending_guards_are_checked_when_the_dag_is_parsed(tmp_path, kwargs, field):
    from airflow_provider_magicvideo.exceptions import InvalidInputError

    with pytest.raises(InvalidInputError, match=field):
        operator(tmp_path, rows(), **kwargs)
