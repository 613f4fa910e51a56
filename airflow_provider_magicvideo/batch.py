"""The work of one batch render task, row by row: resume or submit, wait (blocking), deliver.

:class:`Ledger` is the row key → generation record, written through to the task's state store the moment
anything is learnt (Airflow >= 3.3), so a retry, a crash or a deferral never submits a row twice.
:class:`BatchRun` does the per-row steps with bounded thread pools; every HTTP call goes through a
:class:`MagicVideoHook` carrying the row's own ``X-Client-Request-Id`` (see :func:`rows.row_request_id`), which
is what the usage-log lookup finds a row's generation by on Airflow < 3.3 (no state store).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from airflow_provider_magicvideo import metrics
from airflow_provider_magicvideo.account import CREDITS_PER_GENERATION
from airflow_provider_magicvideo.delivery import as_destination, deliver_generation
from airflow_provider_magicvideo.delivery.destination import stat
from airflow_provider_magicvideo.exceptions import AmbiguousSubmitError, MagicVideoError
from airflow_provider_magicvideo.generation import Generation, GenerationStatus
from airflow_provider_magicvideo.hooks.magicvideo import MagicVideoHook
from airflow_provider_magicvideo.hooks.polling import BatchWait
from airflow_provider_magicvideo.hooks.reconcile import quote_of
from airflow_provider_magicvideo.rows import BatchRow
from airflow_provider_magicvideo.tasks import TaskState
from airflow_provider_magicvideo.triggers.batch import outcome_of

HookFor = Callable[[str | None], MagicVideoHook]


class Ledger:
    """What is known of every row's generation: ``model``, ``template``, ``destination``, ``generation_id``,
    ``submitted_at``, ``sending_at`` (a POST about to be sent), ``credits_used``, ``status`` and ``delivered``.

    Each row is its own state-store entry (``row_state(key)``) and a write sends only that row. Every write is
    a round trip through the task's supervisor, one at a time (the store's client is not documented as
    thread-safe, so writes are serialized here too): a row is written only when something a retry needs is
    learnt, i.e. its generation id and its delivery, twice per row. What only saves a retry a status request
    (``persist=False``: completed, failed) rides along with the next write. ``meta`` (row order, invalid rows,
    ``sending_at``: when the chunk's first POST of any try was about to be sent) is one more entry, so a
    resumed deferral can rebuild the plan.
    """

    def __init__(self, state: TaskState, row_state: Callable[[str], TaskState], keys: Iterable[str] | None = None,
                 known: Mapping[str, Any] | None = None) -> None:
        self.state = state
        self._row_state = row_state
        self._lock = threading.Lock()
        if known is not None:  # a plan handed over by the deferral (Airflow < 3.3: nothing in a store)
            plan = dict(known)
            self.rows = {str(k): dict(v) for k, v in (plan.pop("rows", None) or {}).items()}
            self.meta: dict[str, Any] = plan
            return
        self.meta = state.load() or {}
        wanted = list(keys) if keys is not None else [str(k) for k in self.meta.get("order", [])]
        self.rows = {key: row_state(key).load() or {} for key in wanted}

    def save_meta(self, **meta: Any) -> None:
        with self._lock:
            self.meta = {**self.meta, **meta}
            self.state.save(self.meta)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {**self.meta, "rows": {k: dict(v) for k, v in self.rows.items()}}

    def get(self, key: str) -> dict[str, Any]:
        with self._lock:
            return dict(self.rows.get(key) or {})

    def update(self, key: str, *, persist: bool = True, **fields: Any) -> None:
        with self._lock:
            self.rows[key] = {**self.rows.get(key, {}), **fields}
            if persist:
                self._row_state(key).save(self.rows[key])


class BatchRun:
    """The per-row steps of one try. ``hook_for(row_key)`` makes a hook for that row (``None``: the task's)."""

    def __init__(self, rows: Iterable[BatchRow], ledger: Ledger, hook_for: HookFor, *, log: Any,
                 max_in_flight: int, first_try: bool, run_started: float | None) -> None:
        self.rows = list(rows)
        self.ledger = ledger
        self.hook_for = hook_for
        self.log = log
        self.max_in_flight = max_in_flight
        self.first_try = first_try
        self.run_started = run_started

    # -- 1. resume or submit -----------------------------------------------------------------------------
    def submit_all(self, check: Callable[[int, int], None] | None = None) -> None:
        """Every row ends with a live generation recorded, or this raises (after the POSTs in flight returned):
        rows not started yet are left for the retry, which resumes from the ledger.

        ``check(new, committed)`` runs before the first POST and may refuse: ``new`` rows have no live
        generation yet, ``committed`` credits are this chunk's generations rendering or done."""
        self._look_up_all()
        new, committed = self.spending()
        if check is not None:
            check(new, committed)
        if new and not self.ledger.meta.get("sending_at"):
            # One record for the chunk instead of one per row before its POST: a retry after a crash looks
            # every row without a generation id up in the usage log from here (one lookup for the chunk).
            self.ledger.save_meta(sending_at=time.time())
        stop = threading.Event()
        failures: list[BaseException] = []

        def one(row: BatchRow) -> None:
            if stop.is_set():
                return
            try:
                self._settle(row)
            except BaseException as exc:
                stop.set()  # no new POSTs once one failed: a rate limit or a bad key would hit them all
                failures.append(exc)

        with ThreadPoolExecutor(self.max_in_flight, thread_name_prefix="magicvideo-submit") as pool:
            futures: list[Future[None]] = [pool.submit(one, row) for row in self.rows]
            wait(futures)
        if failures:
            # An ambiguous submit first: its "do not retry" must win over a retryable error of another row.
            failures.sort(key=lambda exc: not isinstance(exc, AmbiguousSubmitError))
            raise failures[0]

    def _settle(self, row: BatchRow) -> None:
        record = self.ledger.get(row.key)
        if record and record.get("destination") != row.destination:  # the DAG changed it between tries
            self.ledger.update(row.key, destination=row.destination)
        if record.get("status") == GenerationStatus.COMPLETED.value:
            return
        hook = self.hook_for(row.key)
        try:
            if record.get("generation_id") and record.get("status") != GenerationStatus.ERROR.value:
                generation = hook.get_generation(str(record["generation_id"]))
                if generation.status is GenerationStatus.COMPLETED:  # finished while no try was watching
                    self._completed(row.key, record.get("credits_used") or quote_of(generation))
                    return
                if generation.status is not GenerationStatus.ERROR:
                    self.ledger.update(row.key, persist=False, status=generation.status.value)
                    return
                record["status"] = GenerationStatus.ERROR.value
            if record.get("status") == GenerationStatus.ERROR.value:
                self.log.info("Row %s: generation %s ended in error (not billed): submitting anew", row.key,
                              record.get("generation_id"))
            self._submit(row, hook)  # _look_up_all found nothing live for it
        finally:
            hook.close()

    def _look_up_all(self) -> None:
        """Rows an earlier try may have submitted without leaving an id: sent just before a crash
        (``sending_at``), or, on an Airflow without a state store, every row of a retry (the usage log is all
        there is). One lookup for all of them, per model: the log is read once per look for every row's
        request id, and its window (rows arrive late) is waited once, not once per row."""
        since: dict[str, float] = {}
        for row in self.rows:
            record = self.ledger.get(row.key)
            if record.get("generation_id"):
                continue
            at = record.get("sending_at") or self.ledger.meta.get("sending_at")
            if at is None and not self.ledger.state.available and not self.first_try:
                at = self.run_started if self.run_started is not None else time.time() - 86_400
            if at is not None:
                since[row.key] = float(at)
        for model in sorted({row.model for row in self.rows if row.key in since}):
            rows = [row for row in self.rows if row.key in since and row.model == model]
            ids = {self.hook_for(row.key).client_request_id: row for row in rows}
            hook = self.hook_for(None)
            try:
                found = hook.find_generations(list(ids), model=model, since=min(since[r.key] for r in rows))
            finally:
                hook.close()
            for request_id, row in ids.items():
                generation = found.get(request_id)
                if generation is None:
                    continue
                self.log.info("Row %s: reconnecting to generation %s of an earlier try", row.key, generation.id)
                self.ledger.update(row.key, model=row.model, template=row.template, destination=row.destination,
                                   generation_id=generation.id, submitted_at=since[row.key], sending_at=None,
                                   credits_used=quote_of(generation), status=generation.status.value)

    def _submit(self, row: BatchRow, hook: MagicVideoHook) -> None:
        # A crash before the answer is recorded leaves the retry a time to look from: the chunk's sending_at,
        # or, replacing a generation that ended in error, this row's own (the stored id must not stay the
        # errored one, or the retry would not look for the new one).
        replacing = bool(self.ledger.get(row.key).get("generation_id"))
        self.ledger.update(row.key, persist=replacing, model=row.model, template=row.template,
                           destination=row.destination, generation_id=None, status=None, delivered=None,
                           credits_used=None, sending_at=time.time() if replacing else None)

        def record(generation_id: str, credits_quoted: int | None) -> None:
            self.ledger.update(row.key, generation_id=generation_id, submitted_at=time.time(), sending_at=None,
                               credits_used=credits_quoted, status=GenerationStatus.QUEUED.value)

        try:
            hook.submit(model=row.model, template=row.template, on_created=record, **row.inputs)
        except MagicVideoError as exc:
            if not isinstance(exc, AmbiguousSubmitError) and replacing:  # answered, or never sent
                self.ledger.update(row.key, sending_at=None)
            raise

    def spending(self) -> tuple[int, int]:
        """(rows without a live generation, credits of the chunk's generations rendering or completed)."""
        records = [self.ledger.get(row.key) for row in self.rows]
        live = [r for r in records if r.get("generation_id") and r.get("status") != GenerationStatus.ERROR.value]
        return len(records) - len(live), sum(int(r.get("credits_used") or CREDITS_PER_GENERATION) for r in live)

    def pending(self) -> dict[str, float | None]:
        """Generation id → submit time of every row still rendering."""
        records = (self.ledger.get(row.key) for row in self.rows)
        return {r["generation_id"]: r.get("submitted_at") for r in records
                if r.get("generation_id") and r.get("status") not in ("completed", "error")}

    # -- 2. wait (the blocking mode; the deferrable one is MagicVideoBatchTrigger) -----------------------
    def wait_blocking(self, pending: Mapping[str, float | None], *, deadline: float, poll_interval: float,
                      max_consecutive_poll_failures: int, sleep: Callable[[float], None] = time.sleep,
                      clock: Callable[[], float] = time.time) -> dict[str, dict[str, Any]]:
        """The trigger's schedule (:class:`BatchWait`) driven from this worker: polls in a thread pool, each
        thread with its own hook (a ``requests`` session is not shared between threads)."""
        batch = BatchWait(pending, deadline=deadline, poll_interval=poll_interval, log=self.log, clock=clock,
                          max_consecutive_failures=max_consecutive_poll_failures,
                          submitted_at={k: v for k, v in pending.items() if v is not None})
        local = threading.local()
        hooks: list[MagicVideoHook] = []

        def poll(generation_id: str) -> Generation | MagicVideoError:
            if not hasattr(local, "hook"):
                local.hook = self.hook_for(None)
                hooks.append(local.hook)
            try:
                return local.hook.get_generation(generation_id)
            except MagicVideoError as exc:
                return exc

        try:
            with ThreadPoolExecutor(self.max_in_flight, thread_name_prefix="magicvideo-poll") as pool:
                while not batch.done:
                    due = batch.due()
                    for generation_id, outcome in zip(due, pool.map(poll, due), strict=True):
                        batch.record(generation_id, outcome)
                    if not batch.done:
                        sleep(batch.delay())
        finally:
            for hook in hooks:
                hook.close()
        return {gid: outcome_of(outcome) for gid, outcome in batch.outcomes.items()}

    def apply(self, outcomes: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
        """Record the wait's outcomes; return row key → error text of the rows that did not complete."""
        errors: dict[str, str] = {}
        for row in self.rows:
            record = self.ledger.get(row.key)
            outcome = outcomes.get(record.get("generation_id") or "")
            if outcome is None:
                continue
            if outcome.get("status") == "completed":
                self._completed(row.key, outcome.get("credits_used") or record.get("credits_used"))
            elif outcome.get("error") == "GenerationFailedError":  # free: the retry submits this row anew
                self.ledger.update(row.key, persist=False, status="error", credits_used=0)
                metrics.generation_failed(record.get("model"), record.get("template"))
                errors[row.key] = f"{outcome.get('error_name') or 'error'}: {outcome.get('error_message') or ''}"
            else:  # timed out (still rendering: the retry reconnects) or not pollable
                status = "pending" if outcome.get("error") == "GenerationTimeoutError" else record.get("status")
                self.ledger.update(row.key, persist=False, status=status)
                errors[row.key] = str(outcome.get("message"))
        return errors

    def _completed(self, key: str, credits: Any) -> None:
        """A row's generation was seen completed: recorded, and counted once (a retry finds it recorded)."""
        record = self.ledger.get(key)
        credits = credits or CREDITS_PER_GENERATION
        self.ledger.update(key, persist=False, status="completed", credits_used=credits)  # kept by the delivery
        metrics.generation_completed({**record, "credits_used": credits}, submitted_at=record.get("submitted_at"),
                                     now=time.time())

    # -- 3. deliver --------------------------------------------------------------------------------------
    def deliver_all(self, *, dest_conn_id: str | None, parallel: int, **options: Any) -> dict[str, str]:
        """Deliver every completed row, ``parallel`` streams at once; row key → error text of failed ones."""
        done = [row for row in self.rows if self.ledger.get(row.key).get("status") == "completed"]
        errors: dict[str, str] = {}

        def one(row: BatchRow) -> None:
            try:
                self._deliver(row, dest_conn_id, **options)
            except MagicVideoError as exc:
                errors[row.key] = str(exc)
                self.ledger.update(row.key)  # keeps "completed": the retry neither asks again nor counts it twice

        with ThreadPoolExecutor(parallel, thread_name_prefix="magicvideo-deliver") as pool:
            list(pool.map(one, done))
        return errors

    def _deliver(self, row: BatchRow, dest_conn_id: str | None, *, overwrite: str, **options: Any) -> None:
        record = self.ledger.get(row.key)
        dest = as_destination(row.destination, dest_conn_id)
        delivered = record.get("delivered")
        # Delivered by an earlier try and still there: no download at all (if_different would download the whole
        # video only to find the same bytes). A same-size replacement by someone else is not detected.
        if (overwrite != "always" and isinstance(delivered, Mapping) and delivered.get("uri") == row.destination
                and stat(dest, row.destination) == delivered.get("size")):
            return
        hook = self.hook_for(row.key)
        try:
            result = deliver_generation(hook, str(record["generation_id"]), dest, overwrite=overwrite,  # type: ignore[arg-type]
                                        **options)
        finally:
            hook.close()
        self.ledger.update(row.key, delivered={"uri": result.uri, "size": result.size, "sha256": result.sha256})


__all__ = ["BatchRun", "Ledger"]
