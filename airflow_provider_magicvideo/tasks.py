"""What the operators and the sensor share: task identity, argument checks, the state store, failing a task.

Nothing here speaks HTTP. :func:`fail_task` is where an error's ``disposition.task_retry`` becomes Airflow's
"fail now" (:class:`AirflowFailException`) or "let Airflow retry" (the error as is).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

from airflow_provider_magicvideo.exceptions import InvalidInputError, MagicVideoError
from airflow_provider_magicvideo.hooks.settings import MIN_POLL_INTERVAL, positive_number
from airflow_provider_magicvideo.hooks.submission import make_client_request_id

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

#: The longest wait accepted (a generation takes minutes; a week is a typo).
MAX_TIMEOUT = 7 * 86_400


def client_request_id_for(context: Context) -> str:
    """A stable ``X-Client-Request-Id`` for a task instance: the same across its tries, so every request of
    one task (and the API's usage log) can be tied together."""
    ti = context["ti"]
    return make_client_request_id("airflow", ti.dag_id, ti.task_id, ti.run_id, getattr(ti, "map_index", None))


def check_interval(value: Any, name: str) -> float:
    """A poll interval in seconds (at least :data:`MIN_POLL_INTERVAL`), checked when the DAG is parsed."""
    return positive_number(value, name, minimum=MIN_POLL_INTERVAL, maximum=3600, error=InvalidInputError)


def check_timeout(value: Any, name: str = "timeout") -> float:
    return positive_number(value, name, maximum=MAX_TIMEOUT, error=InvalidInputError)


def check_count(value: Any, name: str) -> int:
    return positive_number(value, name, integer=True, allow_zero=True, maximum=1000, error=InvalidInputError)


@contextmanager
def fail_task() -> Iterator[None]:
    """Errors whose disposition says no retry can help fail the task at once (message kept, key-free)."""
    try:
        yield
    except MagicVideoError as exc:
        if exc.disposition.task_retry:
            raise
        raise AirflowFailException(str(exc)) from exc


class TaskState:
    """The task instance's durable store (Airflow 3.3's ``task_state_store``): survives retries, worker crashes
    and deferrals. ``available`` is False on older Airflow, where nothing is kept between tries."""

    def __init__(self, context: Context, key: str) -> None:
        self._store = context.get("task_state_store")
        self.key = key

    @property
    def available(self) -> bool:
        return self._store is not None

    def load(self) -> dict[str, Any] | None:
        value = self._store.get(self.key) if self._store is not None else None
        return dict(value) if isinstance(value, Mapping) else None

    def save(self, value: Mapping[str, Any]) -> None:
        if self._store is not None:
            self._store.set(self.key, dict(value))


def result_of(event: Mapping[str, Any] | None, known: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The result dict of a :class:`MagicVideoTrigger` event, completed with what the task knew, or raise.

    An error event fails the task now when its ``task_retry`` is False; otherwise Airflow may retry it.
    """
    if not event or event.get("status") not in ("success", "error"):
        raise AirflowException(f"MagicVideoTrigger resumed the task with an unusable event: {event!r:.200}")
    if event["status"] == "error":
        message = str(event.get("message") or f"Generation {event.get('generation_id')} failed.")
        raise (AirflowException if event.get("task_retry") else AirflowFailException)(message)
    result = event.get("result")
    if not isinstance(result, Mapping) or not result.get("video_url"):
        raise AirflowException(f"Generation {event.get('generation_id')}: success event without a video URL.")
    extra = {k: v for k, v in (known or {}).items() if k in ("model", "template", "credits_used") and v is not None}
    return {**result, **extra}
