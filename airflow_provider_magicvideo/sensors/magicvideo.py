"""MagicVideoSensor: wait for an existing generation (poke, reschedule or deferrable) and hand its URL on."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
)
from airflow.triggers.base import StartTriggerArgs

from airflow_provider_magicvideo import metrics
from airflow_provider_magicvideo.exceptions import GenerationFailedError, InvalidInputError, MagicVideoError
from airflow_provider_magicvideo.generation import Generation, resolve_generation_id
from airflow_provider_magicvideo.hooks.magicvideo import MagicVideoHook
from airflow_provider_magicvideo.hooks.polling import Wait
from airflow_provider_magicvideo.links import GENERATION_ID_KEY, MagicVideoLink, push_links_now
from airflow_provider_magicvideo.operators.magicvideo import publish
from airflow_provider_magicvideo.tasks import (
    check_count,
    check_interval,
    client_request_id_for,
    fail_task,
    result_of,
)
from airflow_provider_magicvideo.triggers.magicvideo import MagicVideoTrigger, deadline_after
from airflow_provider_magicvideo.version_check import airflow_release

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context


class MagicVideoSensor(BaseSensorOperator):
    """Wait until a generation completes; return ``{generation_id, status, video_url, url_expires_at, ...}``.

    :param generation_id: the generation to wait for (templated), e.g.
        ``"{{ ti.xcom_pull(task_ids='submit', key='generation_id') }}"``, or the submit task's dict.
    :param conn_id: connection of type ``magicvideo``.
    :param deferrable: wait in the triggerer (no worker slot) instead of poking.
    :param max_consecutive_poll_failures: failed polls (network, 5xx, malformed answers) tolerated in a row
        (counted within one worker process: in ``reschedule`` mode each poke starts afresh).
    :param start_from_trigger: Airflow >= 3.3, with ``deferrable=True``: the scheduler hands the wait straight
        to the triggerer, no worker runs until the generation is done. ``generation_id`` must then be a string
        (a Jinja template such as ``"{{ ti.xcom_pull(task_ids='submit', key='generation_id') }}"``, rendered
        by the triggerer), not an ``XComArg`` or a dict; ``timeout`` becomes the trigger's timeout. Ignored by
        ``dag.test()`` and for mapped sensors (they start on a worker and defer as usual).

    ``poke_interval`` (at least 1 s), ``timeout``, ``mode`` and ``soft_fail`` behave as for every sensor; a
    generation that ends in ``error`` fails the task without retries (or skips it with ``soft_fail``).
    """

    template_fields: Sequence[str] = ("generation_id",)
    operator_extra_links = (MagicVideoLink(),)
    ui_color = "#f0e4ff"

    def __init__(self, *, generation_id: str | Mapping[str, Any], conn_id: str = MagicVideoHook.default_conn_name,
                 deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
                 max_consecutive_poll_failures: int = 5, poke_interval: float = 15, timeout: float = 1000,
                 start_from_trigger: bool = False, **kwargs: Any) -> None:
        super().__init__(poke_interval=check_interval(poke_interval, "poke_interval"), timeout=timeout, **kwargs)
        self.generation_id = generation_id
        self.conn_id = conn_id
        self.deferrable = deferrable
        self.max_consecutive_poll_failures = check_count(max_consecutive_poll_failures, "max_consecutive_poll_failures")
        self._client_request_id: str | None = None
        if start_from_trigger:
            self._start_in_the_triggerer()

    def _start_in_the_triggerer(self) -> None:
        release = airflow_release()
        if release is not None and release < (3, 3, 0):
            raise InvalidInputError("start_from_trigger: needs Airflow >= 3.3 (its triggerer renders the templated "
                                    "generation_id); use deferrable=True alone.")
        if not self.deferrable:
            raise InvalidInputError("start_from_trigger: needs deferrable=True.")
        if not isinstance(self.generation_id, str):
            raise InvalidInputError(
                "start_from_trigger: generation_id must be a string or a Jinja template, e.g. \"{{ ti.xcom_pull("
                "task_ids='submit', key='generation_id') }}\": the trigger's arguments are stored with the DAG, "
                f"and a {type(self.generation_id).__name__} cannot be.")
        self.start_from_trigger = True
        # Fixed when the DAG is parsed, so no absolute deadline (and no per-try request id): the scheduler sets
        # the trigger's timeout from ``timeout`` when it starts the task.
        self.start_trigger_args = StartTriggerArgs(
            trigger_cls=f"{MagicVideoTrigger.__module__}.{MagicVideoTrigger.__qualname__}",
            trigger_kwargs={"generation_id": self.generation_id, "end_time": None, "conn_id": self.conn_id,
                            "poll_interval": self.poke_interval,
                            "max_consecutive_poll_failures": self.max_consecutive_poll_failures,
                            "deadline_by_airflow": True},
            next_method="execute_complete", next_kwargs=None, timeout=timedelta(seconds=self.timeout))

    @cached_property
    def hook(self) -> MagicVideoHook:
        return MagicVideoHook(self.conn_id, client_request_id=self._client_request_id)

    @property
    def _known(self) -> dict[str, Any]:
        """What the upstream submit task told us, when it handed over its dict instead of a bare id."""
        return dict(self.generation_id) if isinstance(self.generation_id, Mapping) else {}

    @cached_property
    def _id(self) -> str:
        with fail_task():
            return resolve_generation_id(self.generation_id)

    @cached_property
    def _wait(self) -> Wait:
        # No deadline of its own: the sensor's timeout is Airflow's.
        return Wait(self._id, deadline=math.inf, poll_interval=self.poke_interval, log=self.log,
                    max_consecutive_failures=self.max_consecutive_poll_failures)

    def execute(self, context: Context) -> Any:
        self._client_request_id = client_request_id_for(context)
        push_links_now(self, context)
        context["ti"].xcom_push(key=GENERATION_ID_KEY, value=self._id)  # the extra link finds it here
        if not self.deferrable:
            return self._handed_on(context, super().execute(context))
        try:
            first = self.poke(context)
        except (AirflowFailException, AirflowSensorTimeout) as exc:
            # What BaseSensorOperator.execute does for a failing poke: soft_fail/never_fail skip the task.
            if self.soft_fail or getattr(self, "never_fail", False):
                flag = "soft_fail" if self.soft_fail else "never_fail"
                raise AirflowSkipException(f"Skipping due to {flag} is set to True: {exc}") from exc
            raise
        if first.is_done:
            return self._handed_on(context, first.xcom_value)
        self.defer(
            trigger=MagicVideoTrigger(generation_id=self._id, end_time=deadline_after(self.timeout),
                                      conn_id=self.conn_id, poll_interval=self.poke_interval,
                                      max_consecutive_poll_failures=self.max_consecutive_poll_failures,
                                      client_request_id=self._client_request_id),
            method_name="execute_complete",
        )

    def poke(self, context: Context) -> PokeReturnValue:
        try:
            outcome: Generation | MagicVideoError = self.hook.get_generation(self._id)
        except MagicVideoError as exc:
            outcome = exc
        with fail_task():
            try:
                step = self._wait.after(outcome)  # raises when the generation failed or polling must give up
            except GenerationFailedError:
                metrics.generation_failed(self._known.get("model"), self._known.get("template"))
                raise
        if not isinstance(step, Generation):
            return PokeReturnValue(is_done=False)
        known = self._known
        return PokeReturnValue(is_done=True, xcom_value=step.result(
            model=known.get("model"), template=known.get("template"), credits_used=known.get("credits_used")))

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        if event and event.get("error") == "GenerationTimeoutError":
            # A sensor timeout, so soft_fail/never_fail apply as for any sensor.
            raise AirflowSensorTimeout(str(event.get("message")))
        if self.start_from_trigger:  # execute never ran: the extra link's redirect finds the id here
            context["ti"].xcom_push(key=GENERATION_ID_KEY, value=self._id)
        if event and event.get("error") == GenerationFailedError.__name__:
            metrics.generation_failed(self._known.get("model"), self._known.get("template"))
        return self._handed_on(context, result_of(event, self._known))

    def _handed_on(self, context: Context, result: Any) -> Any:
        """Push ``video_url`` under its own key too, as the submit operator does."""
        if isinstance(result, Mapping) and result.get("video_url"):
            # No submit time here (the submit task's to know): counted, but no render duration.
            metrics.generation_completed(result, submitted_at=None, now=time.time())
            publish(self, context, dict(result))
        return result
