"""MagicVideoSubmitOperator: create a render, push its id, optionally wait (blocking or deferred)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow.providers.common.compat.sdk import (
    Asset,
    BaseOperator,
    BaseOperatorLink,
    ResumableJobMixin,
    XCom,
    conf,
)

from airflow_provider_magicvideo.exceptions import CreditBudgetExceededError
from airflow_provider_magicvideo.generation import Generation, GenerationStatus
from airflow_provider_magicvideo.hooks.magicvideo import MagicVideoHook, client_request_id_for
from airflow_provider_magicvideo.results import fail_fast, generation_result, result_from_event
from airflow_provider_magicvideo.templates import Model, resolve_model, resolve_template
from airflow_provider_magicvideo.triggers.magicvideo import MagicVideoTrigger, deadline_after

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context, TaskInstanceKey

#: What one magic render costs, per the API's own submit response.
CREDITS_PER_RENDER = 1_050_000


class MagicVideoLink(BaseOperatorLink):
    """Link to the rendered MP4. The API's presigned URL expires 10 minutes after it was issued."""

    name = "AI/ML API video (link valid 10 min)"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        return XCom.get_value(ti_key=ti_key, key="video_url") or ""


class MagicVideoSubmitOperator(ResumableJobMixin, BaseOperator):
    """Submit an AI/ML API "magic" render and push its ``generation_id`` to XCom at once.

    With ``wait_for_completion=True`` it also waits, blocking or (``deferrable=True``) in the triggerer,
    and returns ``{generation_id, status, video_url, url_expires_at, credits_used, model, template}``
    (``video_url`` is also pushed under its own key). Otherwise it returns the generation id.

    A retry, a worker crash or a resumed deferral never pays twice: the generation id is kept in the
    task's ``task_state_store`` and reused while the render is pending or completed; a new render is
    submitted only when the stored one ended in ``error``.

    :param conn_id: connection of type ``magicvideo``.
    :param model: ``magic/image-to-video`` (default), ``magic/video-to-video`` or ``magic/text-to-video``.
    :param image: image-to-video input: http(s) URL, local path, ``ObjectStoragePath`` URI, data URI,
        base64 or bytes.
    :param video: video-to-video input (MP4), same forms as ``image``.
    :param prompt: text-to-video prompt.
    :param template: template name; forgiving about case/spacing; default per model.
    :param wait_for_completion: wait for the render to finish.
    :param deferrable: wait in the triggerer instead of a worker slot.
    :param poll_interval: seconds between status polls.
    :param timeout: seconds to wait for the render (per try).
    :param max_consecutive_poll_failures: failed polls tolerated in a row while waiting.
    :param credit_budget: refuse to submit when the credits already recorded by this DAG run plus
        this render would exceed it (best effort: concurrently running renders are not counted yet).
    """

    template_fields: Sequence[str] = ("image", "video", "prompt", "template", "model")
    operator_extra_links = (MagicVideoLink(),)
    ui_color = "#f0e4ff"
    external_id_key = "magicvideo_generation_id"
    submission_key = "magicvideo_submission"

    def __init__(
        self,
        *,
        conn_id: str = MagicVideoHook.default_conn_name,
        model: str = Model.IMAGE_TO_VIDEO.value,
        image: Any = None,
        video: Any = None,
        prompt: str | None = None,
        template: str | None = None,
        wait_for_completion: bool = False,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 15,
        timeout: float = 1000,
        max_consecutive_poll_failures: int = 5,
        credit_budget: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id
        self.model = model
        self.image = image
        self.video = video
        self.prompt = prompt
        self.template = template
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.max_consecutive_poll_failures = max_consecutive_poll_failures
        self.credit_budget = credit_budget
        self._client_request_id: str | None = None
        self._generation: Generation | None = None
        self._result: Any = None

    @cached_property
    def hook(self) -> MagicVideoHook:
        return MagicVideoHook(self.conn_id, client_request_id=self._client_request_id)

    def _submission(self, context: Context) -> dict[str, Any]:
        store = context.get("task_state_store")
        stored = store.get(self.submission_key) if store is not None else None
        if isinstance(stored, dict):
            return stored
        with fail_fast():
            model = resolve_model(self.model).value
            return {"model": model, "template": resolve_template(self.template, model), "credits_used": None}

    # -- entry points -----------------------------------------------------------------------------
    def execute(self, context: Context) -> Any:
        self._client_request_id = client_request_id_for(context)
        return self.execute_resumable(context)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None,
                         submission: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after the trigger fired: strict about the event, same result as the sync path."""
        submission = submission or self._submission(context)
        result = result_from_event(event, model=submission.get("model"), template=submission.get("template"),
                                   credits_used=submission.get("credits_used"))
        self._finish(context, result)
        return result

    # -- ResumableJobMixin ------------------------------------------------------------------------
    def submit_job(self, context: Context) -> str:
        submission = self._submission(context)
        self._check_budget(context)
        with fail_fast():
            generation = self.hook.submit(
                model=submission["model"], image=self.image, video=self.video, prompt=self.prompt,
                template=submission["template"],
            )
        submission["credits_used"] = generation.credits_used
        store = context.get("task_state_store")
        if store is not None:
            store.set(self.submission_key, submission)
        ti = context["ti"]
        ti.xcom_push(key="generation_id", value=generation.id)
        if generation.credits_used is not None:
            ti.xcom_push(key="credits_used", value=generation.credits_used)
        return generation.id

    def get_job_status(self, external_id: Any, context: Context) -> str:
        with fail_fast():
            self._generation = self.hook.get_generation(str(external_id))
        return self._generation.raw_status

    def is_job_active(self, status: str) -> bool:
        return _status(status).is_pending

    def is_job_succeeded(self, status: str) -> bool:
        return _status(status) is GenerationStatus.COMPLETED

    def poll_until_complete(self, external_id: Any, context: Context) -> Any:
        generation_id = str(external_id)
        context["ti"].xcom_push(key="generation_id", value=generation_id)
        if not self.wait_for_completion:
            return generation_id
        if self.deferrable:
            # The extra link is evaluated when the task leaves the worker to defer: give it a value to read
            # (otherwise every deferral logs an "XCom not found" error).
            context["ti"].xcom_push(key="video_url", value=None)
            self.defer(
                trigger=MagicVideoTrigger(
                    generation_id=generation_id,
                    end_time=deadline_after(self.timeout),
                    conn_id=self.conn_id,
                    poll_interval=self.poll_interval,
                    max_consecutive_failures=self.max_consecutive_poll_failures,
                    client_request_id=self._client_request_id,
                ),
                method_name="execute_complete",
                kwargs={"submission": self._submission(context)},
            )
        with fail_fast():
            self._generation = self.hook.wait_for_generation(
                generation_id, poll_interval=self.poll_interval, timeout=self.timeout,
                max_consecutive_poll_failures=self.max_consecutive_poll_failures,
            )
        return self.get_job_result(generation_id, context)

    def get_job_result(self, external_id: Any, context: Context) -> Any:
        if self._result is not None:
            return self._result
        if not self.wait_for_completion:
            self._result = str(external_id)
            return self._result
        generation = self._generation
        if generation is None or generation.id != str(external_id) or not generation.is_terminal:
            with fail_fast():
                generation = self.hook.get_generation(str(external_id))
        submission = self._submission(context)
        result = generation_result(generation, model=submission.get("model"), template=submission.get("template"),
                                   credits_used=submission.get("credits_used"))
        self._finish(context, result)
        return result

    # -- helpers ----------------------------------------------------------------------------------
    def _finish(self, context: Context, result: dict[str, Any]) -> None:
        self._result = result
        context["ti"].xcom_push(key="video_url", value=result["video_url"])
        url = result["video_url"] or ""
        self.log.info("Render %s is ready: %s (URL valid until %s)", result["generation_id"],
                      urlsplit(url).path, result["url_expires_at"])
        extra = {k: result[k] for k in ("generation_id", "video_url", "template", "credits_used")}
        for outlet in self.outlets or ():
            if isinstance(outlet, Asset):
                context["outlet_events"][outlet].extra.update(extra)

    def _check_budget(self, context: Context) -> None:
        if self.credit_budget is None:
            return
        dag = context["dag"]
        recorded = context["ti"].xcom_pull(task_ids=list(dag.task_ids), key="credits_used") or []
        spent = sum(_flatten_numbers(recorded))
        if spent + CREDITS_PER_RENDER > self.credit_budget:
            with fail_fast():
                raise CreditBudgetExceededError(
                    f"credit_budget: this DAG run has recorded {spent:,} credits; another render "
                    f"({CREDITS_PER_RENDER:,}) would exceed the budget of {self.credit_budget:,}. "
                    "Nothing was submitted. Raise credit_budget or render fewer items."
                )


def _status(status: str) -> GenerationStatus:
    try:
        return GenerationStatus(str(status).lower())
    except ValueError:
        return GenerationStatus.UNKNOWN


def _flatten_numbers(value: Any) -> list[float]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [value]
    if isinstance(value, (list, tuple)):
        return [n for item in value for n in _flatten_numbers(item)]
    return []
