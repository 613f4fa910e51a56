"""MagicVideoBatchRenderOperator: one task instance renders and delivers a chunk of rows, with a manifest.

The steps are :mod:`airflow_provider_magicvideo.batch` (per-row resume/submit, blocking wait, delivery),
:mod:`airflow_provider_magicvideo.rows` (validation) and :mod:`airflow_provider_magicvideo.manifest`; the
deferred wait is :class:`MagicVideoBatchTrigger`. This module only wires them to Airflow.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowException, BaseOperator

from airflow_provider_magicvideo.batch import BatchRun, Ledger
from airflow_provider_magicvideo.budget import (
    CREDITS_XCOM_KEY,
    check_balance,
    check_credit_budget,
    credit_budget_of,
    min_balance_renders_of,
)
from airflow_provider_magicvideo.delivery import DEFAULT_CHUNK_SIZE, OVERWRITE_MODES, Overwrite
from airflow_provider_magicvideo.exceptions import BatchIncompleteError, InvalidInputError, MagicVideoError
from airflow_provider_magicvideo.gallery import page_name_for, write_gallery
from airflow_provider_magicvideo.hooks.magicvideo import MagicVideoHook
from airflow_provider_magicvideo.hooks.polling import epoch_of
from airflow_provider_magicvideo.hooks.settings import positive_number
from airflow_provider_magicvideo.manifest import build_manifest, task_label, write_manifest
from airflow_provider_magicvideo.rows import BatchRow, InvalidRow, plan_rows, row_request_id
from airflow_provider_magicvideo.tasks import (
    TaskState,
    check_count,
    check_interval,
    check_timeout,
    client_request_id_for,
    fail_task,
)
from airflow_provider_magicvideo.templates import Model
from airflow_provider_magicvideo.triggers.batch import MagicVideoBatchTrigger
from airflow_provider_magicvideo.triggers.magicvideo import deadline_after

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

#: Where a deferred try keeps its plan on an Airflow without a state store (dag.test() resumes without kwargs).
PLAN_XCOM_KEY = "magicvideo_batch_plan"


def _count(value: Any, name: str, maximum: int) -> int:
    return positive_number(value, name, integer=True, maximum=maximum, error=InvalidInputError)


class MagicVideoBatchRenderOperator(BaseOperator):
    """Render a chunk of rows (one generation each), deliver every MP4 and write a ``manifest.json`` beside them.

    Every row is checked before anything is sent: one bad row refuses the whole chunk (listing every bad row)
    unless ``skip_invalid=True``, which renders the others and lists the bad ones as ``invalid``. Rows are then
    submitted ``max_in_flight`` at a time, each with its own ``X-Client-Request-Id`` and its generation id
    recorded the moment the POST returns, so a retry resumes and never renders a row twice. The wait is one
    trigger for the whole chunk (``deferrable=True``, the default) or a blocking poll loop on the worker.

    A row whose generation ended in ``error`` (not billed) or could not be delivered fails the task (Airflow may
    retry: only those rows are submitted or delivered again), or, with ``allow_failed_rows=True``, is listed as
    ``failed`` in a successful task's manifest. Rows still rendering at ``timeout`` always fail the task (they are
    paid for): the retry reconnects to them.

    :param rows: list of dicts: ``key`` (unique; letters, digits, ``.``, ``_``, ``-``), one of ``image`` |
        ``video`` | ``prompt``, optional ``template``, ``model`` and ``destination`` (the full file URI of this
        row's MP4). Templated; map chunks over it with ``.expand(rows=chunks)``.
    :param destination: folder for rows without their own ``destination``: ``<destination>/<key>.mp4``. Templated.
    :param manifest: where to write the manifest (a folder, or a path ending in ``.json``). Default: the
        ``destination`` folder (else the first row's video's folder), as ``manifest.json``, or
        ``manifest-<map_index>.json`` for a mapped task, so chunks sharing a folder never overwrite each other's.
    :param dest_conn_id: connection of the destination store (e.g. an AWS connection). Templated.
    :param model: default model of rows without one; ``template``: default template of rows without one.
    :param max_in_flight: submits (and, blocking, status polls) at once.
    :param max_parallel_deliveries: downloads at once.
    :param credit_budget: refuse to submit (nothing sent) when the credits recorded by this DAG run's tasks,
        this chunk's generations already rendering and one generation per row still to submit would exceed it
        (the submit operator's guard, for the whole chunk; best effort across tasks submitting at once).
    :param min_balance_renders: refuse to submit (nothing sent) unless the account's balance pays for at least
        this many generations (one free balance request before the first POST).

    Beside the manifest, a campaign page (``index.html``, ``index-<map_index>.html`` for a mapped task: see
    :mod:`airflow_provider_magicvideo.gallery`) shows every delivered video and every failed row's reason.

    Returns (XCom) ``{manifest_uri, gallery_uri, rows, delivered, failed, invalid, credits_used}``; never the rows.
    """

    template_fields: Sequence[str] = ("rows", "destination", "manifest", "dest_conn_id", "template", "model")
    ui_color = "#d8cff7"
    #: The task_state_store key. Renaming it on a deployed DAG makes in-flight retries forget their generations.
    state_key = "magicvideo_batch"

    def __init__(self, *, rows: Any, destination: str | None = None, manifest: str | None = None,
                 dest_conn_id: str | None = None, conn_id: str = MagicVideoHook.default_conn_name,
                 model: str = Model.IMAGE_TO_VIDEO.value, template: str | None = None, skip_invalid: bool = False,
                 allow_failed_rows: bool = False, max_in_flight: int = 20, max_parallel_deliveries: int = 4,
                 deferrable: bool = True, poll_interval: float = 15, timeout: float = 3600,
                 max_consecutive_poll_failures: int = 5, overwrite: Overwrite = "if_different",
                 chunk_size: int = DEFAULT_CHUNK_SIZE, max_attempts: int = 4, credit_budget: int | None = None,
                 min_balance_renders: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if overwrite not in OVERWRITE_MODES:
            raise InvalidInputError(f"overwrite: {overwrite!r:.60} is not one of {', '.join(OVERWRITE_MODES)}.")
        self.rows = rows
        self.destination = destination
        self.manifest = manifest
        self.dest_conn_id = dest_conn_id
        self.conn_id = conn_id
        self.model = model
        self.template = template
        self.skip_invalid = skip_invalid
        self.allow_failed_rows = allow_failed_rows
        # Checked when the DAG is parsed, long before anything could be submitted.
        self.max_in_flight = _count(max_in_flight, "max_in_flight", 200)
        self.max_parallel_deliveries = _count(max_parallel_deliveries, "max_parallel_deliveries", 64)
        self.deferrable = deferrable
        self.poll_interval = check_interval(poll_interval, "poll_interval")
        self.timeout = check_timeout(timeout)
        self.max_consecutive_poll_failures = check_count(max_consecutive_poll_failures, "max_consecutive_poll_failures")
        self.overwrite = overwrite
        self.chunk_size = _count(chunk_size, "chunk_size", 1 << 30)
        self.max_attempts = _count(max_attempts, "max_attempts", 100)
        self.credit_budget = credit_budget_of(credit_budget)
        self.min_balance_renders = min_balance_renders_of(min_balance_renders)
        #: This try's summary and delivered URIs: the lineage facets read them.
        self.lineage_summary: dict[str, Any] = {}
        self.delivered_uris: list[str] = []

    def get_hook(self, context: Context, row_key: str | None = None) -> MagicVideoHook:
        """The task's hook, or a row's: the row's request id is what the usage log finds its generation by."""
        task_id = client_request_id_for(context)
        return MagicVideoHook(self.conn_id, client_request_id=row_request_id(task_id, row_key) if row_key else task_id)

    # The control flow: 1. check every row (nothing sent if one is bad); 2. resume or submit each row;
    # 3. wait, deferred to MagicVideoBatchTrigger or blocking here; 4. deliver, write the manifest, summarize.
    def execute(self, context: Context) -> dict[str, Any]:
        first = self.get_hook(context)
        with fail_task():
            settings = first.settings  # one connection read for the whole batch (see _run)
            valid, invalid = plan_rows(self.rows, model=self.model, template=self.template, folder=self.destination,
                                       dest_conn_id=self.dest_conn_id or None,
                                       max_media_bytes=settings.max_media_bytes)
            if invalid and not self.skip_invalid:
                raise InvalidInputError(
                    f"{len(invalid)} of {len(invalid) + len(valid)} rows are invalid; nothing was submitted. Fix "
                    "them (or pass skip_invalid=True to render the others):\n"
                    + "\n".join(f"  - {row.describe()}" for row in invalid))
            ledger = self._ledger(context, keys=[row.key for row in valid])
            ledger.save_meta(order=[row.key for row in valid],
                             invalid=[[row.index, row.key, row.message] for row in invalid])
            run = self._run(context, ledger, valid, settings)

            def check_spending(new: int, committed: int) -> None:
                if new:
                    check_credit_budget(context, self.credit_budget, generations=new, committed=committed)
                    check_balance(first, self.min_balance_renders)

            try:
                run.submit_all(check=check_spending)
            finally:  # what the run's other tasks count against their credit_budget, even if a POST failed
                context["ti"].xcom_push(key=CREDITS_XCOM_KEY, value=run.spending()[1])
        pending = run.pending()
        if pending and self.deferrable:
            self._defer(context, ledger, pending)
        with fail_task():
            outcomes = run.wait_blocking(pending, deadline=first.clock() + self.timeout,
                                         poll_interval=self.poll_interval, sleep=first.sleep, clock=first.clock,
                                         max_consecutive_poll_failures=self.max_consecutive_poll_failures
                                         ) if pending else {}
        return self._finish(context, run, invalid, outcomes)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None,
                         plan: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after the trigger fired: the plan from the defer kwargs, else the state store (Airflow >= 3.3),
        else this try's XCom (kept while a task is deferred; dag.test() resumes without the kwargs)."""
        if not event or event.get("status") != "done" or not isinstance(event.get("generations"), dict):
            raise AirflowException(f"MagicVideoBatchTrigger resumed the task with an unusable event: {event!r:.200}")
        if plan is None and not TaskState(context, self.state_key).available:
            ti = context["ti"]
            plan = ti.xcom_pull(task_ids=ti.task_id, key=PLAN_XCOM_KEY, map_indexes=ti.map_index)
        ledger = self._ledger(context, known=plan)
        rows = [BatchRow(key=key, model=r.get("model") or self.model, template=r.get("template") or "",
                         destination=str(r.get("destination")), inputs={})
                for key in ledger.meta.get("order", []) if (r := ledger.rows.get(key)) is not None]
        invalid = [InvalidRow(int(i), k, str(m)) for i, k, m in ledger.meta.get("invalid", [])]
        return self._finish(context, self._run(context, ledger, rows, None), invalid, event["generations"])

    def _ledger(self, context: Context, **kwargs: Any) -> Ledger:
        return Ledger(TaskState(context, self.state_key),
                      lambda key: TaskState(context, f"{self.state_key}:{key}"), **kwargs)

    def _run(self, context: Context, ledger: Ledger, rows: list[BatchRow], settings: Any) -> BatchRun:
        shared = settings

        def hook_for(row_key: str | None) -> MagicVideoHook:
            nonlocal shared
            hook = self.get_hook(context, row_key)
            if shared is None:
                shared = hook.settings
            hook.__dict__.setdefault("settings", shared)  # the cached property: no connection read per row
            return hook

        ti = context["ti"]
        started = getattr(context.get("dag_run"), "start_date", None)
        return BatchRun(rows, ledger, hook_for, log=self.log, max_in_flight=self.max_in_flight,
                        first_try=getattr(ti, "try_number", 1) <= 1,
                        run_started=started.timestamp() if started is not None else None)

    def _defer(self, context: Context, ledger: Ledger, pending: dict[str, float | None]) -> None:
        # Airflow >= 3.3 resumes from the state store; older ones need the plan handed over: in the kwargs (a
        # deployment) and in this try's XCom (dag.test() resumes without the kwargs).
        plan = None if ledger.state.available else ledger.snapshot()
        if plan is not None:
            context["ti"].xcom_push(key=PLAN_XCOM_KEY, value=plan)
        self.defer(
            trigger=MagicVideoBatchTrigger(
                list(pending), end_time=deadline_after(self.timeout), conn_id=self.conn_id,
                poll_interval=self.poll_interval, max_consecutive_poll_failures=self.max_consecutive_poll_failures,
                client_request_id=client_request_id_for(context), max_concurrent_polls=self.max_in_flight,
                submitted_at={gid: epoch_of(at) for gid, at in pending.items() if at is not None}),
            method_name="execute_complete",
            kwargs={"plan": plan} if plan is not None else None,
        )

    def _finish(self, context: Context, run: BatchRun, invalid: list[InvalidRow],
                outcomes: dict[str, Any]) -> dict[str, Any]:
        """Deliver what completed, write the manifest, then succeed or fail with every unfinished row listed."""
        errors = run.apply(outcomes)
        errors.update(run.deliver_all(dest_conn_id=self.dest_conn_id or None, parallel=self.max_parallel_deliveries,
                                      overwrite=self.overwrite, chunk_size=self.chunk_size,
                                      max_attempts=self.max_attempts))
        listed = [{"key": row.key, "status": "invalid", "error": row.message} for row in invalid]
        listed += [self._manifest_row(row, run.ledger.get(row.key), errors.get(row.key)) for row in run.rows]
        ti = context["ti"]
        manifest = build_manifest(task_label(ti.dag_id, ti.task_id, getattr(ti, "map_index", None)), listed)
        with fail_task():
            uri = write_manifest(self._manifest_target(context, run.rows), manifest, self.dest_conn_id or None)
        gallery = self._write_gallery(uri, manifest)
        counts = {status: sum(r["status"] == status for r in listed) for status in ("delivered", "failed",
                                                                                    "invalid", "pending")}
        summary = {"manifest_uri": uri, "rows": len(listed), "delivered": counts["delivered"],
                   "failed": counts["failed"] + counts["pending"], "invalid": counts["invalid"],
                   "credits_used": manifest["credits_used"], "gallery_uri": gallery}
        self.lineage_summary = summary
        self.delivered_uris = [str(r["uri"]) for r in listed if r["status"] == "delivered" and r.get("uri")]
        self.log.info("Batch: %(delivered)d delivered, %(failed)d failed or pending, %(invalid)d invalid, "
                      "%(credits_used)d credits; manifest %(manifest_uri)s", summary)
        unfinished = [r for r in listed if r["status"] in ("failed", "pending")]
        if counts["pending"] or (unfinished and not self.allow_failed_rows):
            raise BatchIncompleteError(
                f"{len(unfinished)} of {len(listed)} rows did not deliver (manifest: {uri}); a retry submits or "
                "delivers only these:\n" + "\n".join(f"  - {r['key']} ({r['status']}): {r['error']}"
                                                      for r in unfinished))
        return summary

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the rows' storage inputs, the delivered videos and the manifest, the chunk's run facet."""
        from airflow_provider_magicvideo.lineage import batch_lineage

        return batch_lineage(self.rows, self.delivered_uris, self.lineage_summary)

    def _write_gallery(self, manifest_uri: str, manifest: dict[str, Any]) -> str | None:
        """The campaign page beside the manifest. The manifest is the record, the page a view of it: a page that
        cannot be written is logged, and never fails the rows that were delivered."""
        folder = manifest_uri.rsplit("/", 1)[0]
        try:
            return write_gallery(folder, manifest, title=manifest["task"], conn_id=self.dest_conn_id or None,
                                 name=page_name_for(manifest_uri))
        except MagicVideoError as error:
            self.log.warning("Could not write the campaign page beside %s: %s", manifest_uri, error)
            return None

    @staticmethod
    def _manifest_row(row: BatchRow, record: dict[str, Any], error: str | None) -> dict[str, Any]:
        delivered = record.get("delivered") if error is None else None
        status = "delivered" if delivered else "pending" if record.get("status") == "pending" else "failed"
        charged = record.get("status") in ("completed", "error")  # pending ones are not billed yet
        return {"key": row.key, "template": row.template, "model": row.model,
                "generation_id": record.get("generation_id"), "status": status, **(delivered or {}),
                "credits_used": record.get("credits_used") if charged else None,
                "error": None if delivered else error or "not delivered"}

    def _manifest_target(self, context: Context, rows: list[BatchRow]) -> str:
        if self.manifest:
            return str(self.manifest)
        folder = self.destination or (rows[0].destination.rsplit("/", 1)[0] if rows else None)
        if not folder:
            raise InvalidInputError("manifest: no destination folder and no valid row to put it beside; pass "
                                    "manifest=<folder or .json path>.")
        map_index = getattr(context["ti"], "map_index", None)
        name = f"manifest-{map_index}.json" if map_index is not None and map_index >= 0 else "manifest.json"
        return f"{str(folder).rstrip('/')}/{name}"


__all__ = ["MagicVideoBatchRenderOperator"]
