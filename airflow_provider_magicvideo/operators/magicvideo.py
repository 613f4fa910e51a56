"""MagicVideoSubmitOperator: create a generation, record its id at once, optionally wait (blocking or deferred)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import Asset, BaseOperator, BaseOperatorLink, conf

from airflow_provider_magicvideo import metrics
from airflow_provider_magicvideo.budget import (
    CREDITS_XCOM_KEY,
    check_balance,
    check_credit_budget,
    credit_budget_of,
    min_balance_renders_of,
)
from airflow_provider_magicvideo.exceptions import (
    AmbiguousSubmitError,
    GenerationFailedError,
    MagicVideoError,
)
from airflow_provider_magicvideo.generation import Generation, GenerationStatus
from airflow_provider_magicvideo.hooks.magicvideo import MagicVideoHook
from airflow_provider_magicvideo.hooks.reconcile import quote_of
from airflow_provider_magicvideo.links import GENERATION_ID_KEY, MagicVideoLink, push_links_now
from airflow_provider_magicvideo.tasks import (
    TaskState,
    check_count,
    check_interval,
    check_timeout,
    client_request_id_for,
    fail_task,
    result_of,
)
from airflow_provider_magicvideo.templates import Model, resolve_model, resolve_template
from airflow_provider_magicvideo.triggers.magicvideo import MagicVideoTrigger, deadline_after

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

__all__ = ["MagicVideoLink", "MagicVideoSubmitOperator", "publish"]  # MagicVideoLink: its registered import path


def publish(task: BaseOperator, context: Context, result: dict[str, Any]) -> None:
    """Hand a finished generation on: ``video_url`` under its own XCom key and the result's essentials as
    the extra of every :class:`Asset` outlet."""
    context["ti"].xcom_push(key="video_url", value=result["video_url"])
    task.log.info("Generation %s is ready (URL valid until %s)", result["generation_id"], result["url_expires_at"])
    extra = {k: result[k] for k in ("generation_id", "video_url", "template", "credits_used")}
    for outlet in task.outlets or ():
        if isinstance(outlet, Asset):
            context["outlet_events"][outlet].extra.update(extra)


class MagicVideoSubmitOperator(BaseOperator):
    """Submit an AI/ML API "magic" generation and push its ``generation_id`` to XCom.

    With ``wait_for_completion=True`` it also waits, blocking or (``deferrable=True``) in the triggerer, and
    returns ``{generation_id, status, video_url, url_expires_at, credits_used, model, template}`` (``video_url``
    is also pushed under its own key). Otherwise it returns the generation id.

    A retry, a worker crash, a resumed deferral or a lost submit answer never pays twice. On Airflow >= 3.3 the
    generation id is written to the task's ``task_state_store`` the moment the API names it, and reused while
    the generation is pending or completed; a new one is submitted only when the recorded one ended in
    ``error`` (not billed). Where no id was recorded but a submit may have been sent (a lost answer, a crash
    right after the POST, any retry on Airflow < 3.3, which has no state store), the API's usage log is
    searched for this task's ``X-Client-Request-Id`` first (see the connection's ``reconcile_window``).

    :param conn_id: connection of type ``magicvideo``.
    :param model: ``magic/image-to-video`` (default), ``magic/video-to-video`` or ``magic/text-to-video``.
    :param image: image-to-video input: http(s) URL, local path, ``ObjectStoragePath`` URI, data URI, base64 or bytes.
    :param video: video-to-video input (MP4), same forms as ``image``.
    :param prompt: text-to-video prompt.
    :param template: template name; forgiving about case/spacing; default per model.
    :param wait_for_completion: wait for the generation to finish.
    :param deferrable: wait in the triggerer instead of a worker slot.
    :param poll_interval: seconds between status polls (at least 1).
    :param timeout: seconds to wait for the generation (per try).
    :param max_consecutive_poll_failures: failed polls tolerated in a row while waiting.
    :param credit_budget: refuse to submit when the credits recorded by this DAG run's tasks (completed and
        in-flight generations; one that ended in ``error`` records 0) plus this generation would exceed it
        (best effort: tasks submitting at the same moment do not see each other).
    :param min_balance_renders: refuse to submit (nothing sent) unless the account's balance pays for at least
        this many generations (one free balance request before the submit).
    """

    template_fields: Sequence[str] = ("image", "video", "prompt", "template", "model")
    operator_extra_links: tuple[BaseOperatorLink, ...] = (MagicVideoLink(),)
    ui_color = "#f0e4ff"
    #: The task_state_store key. Renaming it on a deployed DAG makes in-flight retries forget their generation.
    state_key = "magicvideo_submission"

    def __init__(self, *, conn_id: str = MagicVideoHook.default_conn_name, model: str = Model.IMAGE_TO_VIDEO.value,
                 image: Any = None, video: Any = None, prompt: str | None = None, template: str | None = None,
                 wait_for_completion: bool = False,
                 deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
                 poll_interval: float = 15, timeout: float = 1000, max_consecutive_poll_failures: int = 5,
                 credit_budget: int | None = None, min_balance_renders: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id
        self.model = model
        self.image = image
        self.video = video
        self.prompt = prompt
        self.template = template
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        # Checked when the DAG is parsed, long before anything could be submitted.
        self.poll_interval = check_interval(poll_interval, "poll_interval")
        self.timeout = check_timeout(timeout)
        self.max_consecutive_poll_failures = check_count(max_consecutive_poll_failures, "max_consecutive_poll_failures")
        self.credit_budget = credit_budget_of(credit_budget)
        self.min_balance_renders = min_balance_renders_of(min_balance_renders)
        #: What this try learnt of its generation (model, template, id, credits): the lineage facets read it.
        self.lineage_summary: dict[str, Any] = {}

    def get_hook(self, context: Context) -> MagicVideoHook:
        return MagicVideoHook(self.conn_id, client_request_id=client_request_id_for(context))

    # The whole control flow, in order:
    #   1. resume: a generation recorded by an earlier try of this task instance is reused unless it ended in
    #      `error` (then it cost nothing, and a new one is submitted);
    #   2. submit: inputs and budget are checked, then the POST; the id is recorded in the state store inside
    #      the hook's submit, before anything else can fail;
    #   3. wait, when asked: blocking here, or deferred to MagicVideoTrigger and resumed in execute_complete;
    #   4. finish: publish the result (XCom, asset events); the render operator then delivers the video.
    def execute(self, context: Context) -> Any:
        push_links_now(self, context)
        hook = self.get_hook(context)
        state = TaskState(context, self.state_key)
        with fail_task():
            submission, generation = self._resume(context, hook, state)
            if generation is None:
                submission, generation = self._submit(context, hook, state)
        self.lineage_summary = {**submission, "generation_id": generation.id}
        ti = context["ti"]
        ti.xcom_push(key=GENERATION_ID_KEY, value=generation.id)  # the extra link finds it here
        if submission.get("credits_used") is not None:
            ti.xcom_push(key=CREDITS_XCOM_KEY, value=submission["credits_used"])
        if not self.wait_for_completion:
            return generation.id
        if generation.status is not GenerationStatus.COMPLETED:
            if self.deferrable:
                self._defer(context, generation.id, submission)
            with fail_task():
                try:
                    generation = hook.wait_for_generation(
                        generation.id, poll_interval=self.poll_interval, timeout=self.timeout,
                        max_consecutive_poll_failures=self.max_consecutive_poll_failures,
                        submitted_at=submission.get("submitted_at"))
                except GenerationFailedError:
                    _ended_in_error(context, submission)
                    raise
        result = generation.result(model=submission["model"], template=submission["template"],
                                   credits_used=submission.get("credits_used"))
        return self._finish(context, result, submission)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None,
                         submission: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after the trigger fired: strict about the event, the same result as the blocking path."""
        # dag.test() resumes without the defer kwargs: the state store has the same record (Airflow >= 3.3), and
        # this try's own XComs (kept while a task is deferred) and arguments have it on any Airflow.
        known = submission or TaskState(context, self.state_key).load() or self._known_before_defer(context)
        if event and event.get("error") == GenerationFailedError.__name__:
            _ended_in_error(context, known)
        result = result_of(event, known)
        return self._finish(context, result, known)

    def _finish(self, context: Context, result: dict[str, Any], submission: dict[str, Any]) -> Any:
        """The last step once the generation completed, on the blocking and the deferred path alike (the render
        operator delivers the video after it)."""
        self.lineage_summary = {**submission, **result}  # for get_openlineage_facets_on_complete
        metrics.generation_completed(result, submitted_at=submission.get("submitted_at"), now=time.time())
        publish(self, context, result)
        return result

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the image/video input when it is a storage URI, and the generation's run facet."""
        from airflow_provider_magicvideo.lineage import submit_lineage

        return submit_lineage(self, self.lineage_summary)

    def _known_before_defer(self, context: Context) -> dict[str, Any]:
        ti = context["ti"]
        model = resolve_model(self.model).value
        credits_used = ti.xcom_pull(task_ids=ti.task_id, key=CREDITS_XCOM_KEY, map_indexes=ti.map_index)
        return {"model": model, "template": resolve_template(self.template, model), "credits_used": credits_used}

    def _resume(self, context: Context, hook: MagicVideoHook, state: TaskState
                ) -> tuple[dict[str, Any], Generation | None]:
        stored = state.load() or {}
        generation: Generation | None
        if stored.get("generation_id"):
            generation = hook.get_generation(str(stored["generation_id"]))
        else:
            generation, stored = self._look_up(context, hook, state, stored)
            if generation is None:
                return {}, None
        if generation.status is GenerationStatus.ERROR:
            self.log.warning("Generation %s of an earlier try ended in error (%s: %s; not billed): submitting anew",
                             generation.id, generation.error_name, generation.error_message)
            return {}, None
        self.log.info("Reconnecting to generation %s of an earlier try (%s) instead of submitting again",
                      generation.id, generation.raw_status)
        return stored, generation

    def _look_up(self, context: Context, hook: MagicVideoHook, state: TaskState, stored: dict[str, Any]
                 ) -> tuple[Generation | None, dict[str, Any]]:
        """A submit of an earlier try that left no id: sent just before a crash (the state store holds the
        time it was about to be sent), or any earlier try on an Airflow without a state store."""
        since = stored.get("sending_at")
        if since is None and not state.available and getattr(context["ti"], "try_number", 1) > 1:
            started = getattr(context.get("dag_run"), "start_date", None)
            since = started.timestamp() if started is not None else time.time() - 86_400
            self.log.info("This Airflow keeps nothing between tries: looking for a generation of an earlier try "
                          "in the usage log before submitting")
        if since is None:
            return None, stored
        model = stored.get("model") or resolve_model(self.model).value
        generation = hook.find_generation(model=model, since=float(since))
        if generation is None:
            return None, stored
        stored = {"model": model, "template": stored.get("template") or resolve_template(self.template, model),
                  "generation_id": generation.id, "submitted_at": since, "credits_used": quote_of(generation)}
        state.save(stored)
        return generation, stored

    def _submit(self, context: Context, hook: MagicVideoHook, state: TaskState
                ) -> tuple[dict[str, Any], Generation]:
        model = resolve_model(self.model).value
        submission: dict[str, Any] = {"model": model, "template": resolve_template(self.template, model)}
        check_credit_budget(context, self.credit_budget)
        check_balance(hook, self.min_balance_renders)
        # Recorded before the POST: a crash before its answer is recorded leaves the next try a time to look from.
        state.save({**submission, "sending_at": time.time()})

        def record(generation_id: str, credits_quoted: int | None) -> None:
            submission.update(generation_id=generation_id, submitted_at=time.time(), credits_used=credits_quoted)
            state.save(submission)

        try:
            generation = hook.submit(model=model, image=self.image, video=self.video, prompt=self.prompt,
                                     template=submission["template"], on_created=record)
        except MagicVideoError as exc:
            if not isinstance(exc, AmbiguousSubmitError):  # answered, or never sent: nothing to look for later
                state.save(submission)
            raise
        return submission, generation

    def _defer(self, context: Context, generation_id: str, submission: dict[str, Any]) -> None:
        self.defer(
            trigger=MagicVideoTrigger(generation_id=generation_id, end_time=deadline_after(self.timeout),
                                      conn_id=self.conn_id, poll_interval=self.poll_interval,
                                      max_consecutive_poll_failures=self.max_consecutive_poll_failures,
                                      client_request_id=client_request_id_for(context),
                                      submitted_at=submission.get("submitted_at")),
            method_name="execute_complete",
            kwargs={"submission": submission},
        )

def _ended_in_error(context: Context, submission: dict[str, Any]) -> None:
    """A generation that ended in ``error`` costs nothing: the DAG run's ``credit_budget`` must not count it."""
    context["ti"].xcom_push(key=CREDITS_XCOM_KEY, value=0)
    metrics.generation_failed(submission.get("model"), submission.get("template"))
