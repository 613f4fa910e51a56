"""The extra links of the magicvideo tasks: links that do not expire and are there as soon as a task has run.

When Airflow 3 computes a link
    ``get_link`` runs on the worker, in the task runner's ``finalize()`` (``airflow/sdk/execution_time/
    task_runner.py``), every time a try leaves the worker: on success, on failure and when it defers. What it
    returns is stored as the XCom ``link.xcom_key``; the api-server never calls ``get_link`` again: it
    deserializes the task's links as ``XComOperatorLink`` (``airflow/serialization/serialized_objects.py``) and
    reads that XCom (``airflow/api_fastapi/core_api/routes/public/extra_links.py``, which turns ``""`` into
    ``null``). The 3.3 UI shows the "Extra Links" heading whenever the task *has* links and skips each ``null``
    one, and any that is neither same-origin nor http(s)/mailto (so ``file://`` is never shown).

What that rules out
    A presigned video URL stored at task end expires 10 minutes later, and reading an XCom that does not
    exist yet (``video_url`` before a render finished) logs ``[error] XCom not found`` on the worker.

So the links here read no XCom at all
    :class:`MagicVideoLink` ("AI/ML API video") names the task instance itself:
    ``{[api] base_url}/magicvideo/dags/<dag>/runs/<run>/tasks/<task>/video?map_index=&conn_id=``. That path is
    served by this provider's api-server plugin (:mod:`airflow_provider_magicvideo.plugins.video_redirect`): at
    click time it requires a logged-in user allowed to read the DAG's task instances, looks up the generation
    the task instance recorded (its ``generation_id`` XCom), asks the API for it and answers ``302`` to a fresh
    presigned URL. The link never expires, is present from the first time a try leaves the worker (a deferred
    submit included), and needs only the task instance key and the operator's ``conn_id`` to build. The
    operators also write it when a try starts (:func:`push_links_now`), so a task that waits while running
    (blocking, poking) shows it too.

    :class:`MagicVideoDeliveredLink` ("Delivered video") is the delivered object where the store has a page a
    browser can open without a secret: ``s3://`` → the AWS console's object page (never expires; the console
    asks for an AWS login, no presigned URL that would expire). For any other store (``file://`` included) it
    is ``""``, which the UI hides: the deliver task's "AI/ML API video" link opens the same video.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit

from airflow.providers.common.compat.sdk import BaseOperatorLink, conf

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import BaseOperator, TaskInstanceKey

#: Where the api-server plugin is mounted (one segment, outside Airflow's reserved prefixes).
URL_PREFIX = "/magicvideo"
#: The XCom key every magicvideo task writes its generation id under, read by the redirect at click time.
GENERATION_ID_KEY = "generation_id"
DEFAULT_CONN_ID = "magicvideo_default"

log = logging.getLogger(__name__)


def video_redirect_path(*, dag_id: str, run_id: str, task_id: str, map_index: int = -1,
                        conn_id: str = DEFAULT_CONN_ID) -> str:
    """The plugin's path for a task instance's video (relative to the api-server root)."""
    parts = (quote(part, safe="") for part in (dag_id, run_id, task_id))
    dag, run, task = parts
    query = urlencode({"map_index": int(map_index), "conn_id": conn_id})
    return f"{URL_PREFIX}/dags/{dag}/runs/{run}/tasks/{task}/video?{query}"


def api_server_url(path: str) -> str:
    """``path`` under ``[api] base_url`` (its own path prefix kept); relative when no base URL is configured,
    which the UI opens on its own origin."""
    base = (conf.get("api", "base_url", fallback="") or "").strip().rstrip("/")
    return f"{base}{path}"


def s3_console_url(uri: str) -> str | None:
    """The AWS console page of an ``s3://bucket/key`` object, or None for any other URI."""
    split = urlsplit(uri)
    key = split.path.lstrip("/")
    if split.scheme not in ("s3", "s3a") or not split.netloc or not key:
        return None
    return f"https://s3.console.aws.amazon.com/s3/object/{quote(split.netloc, safe='')}?prefix={quote(key, safe='')}"


def push_links_now(task: BaseOperator, context: Any) -> None:
    """Write the task's link values at the start of a try as well.

    Airflow writes them only when a try leaves the worker, and clears a task's XComs when a try starts: a
    blocking wait or a poking sensor would show an empty "Extra Links" heading for the whole render. Empty
    values are not written (the UI would hide them anyway). A failed write is only logged: Airflow writes the
    values again when the try ends, and a link is never the reason a render is not submitted.
    """
    ti = context["ti"]
    for link in task.operator_extra_links:
        value = link.get_link(task, ti_key=ti)
        if not value:
            continue
        try:
            ti.xcom_push(key=link.xcom_key, value=value)
        except Exception as error:  # whatever the execution API raised; the values hold no secret
            log.warning("Could not write the %r link yet (%s: %s); Airflow writes it when this try ends",
                        link.name, type(error).__name__, error)


class MagicVideoLink(BaseOperatorLink):
    """"AI/ML API video": the provider's api-server redirect to a fresh presigned URL of the task's render.

    Built from the task instance key and ``operator.conn_id`` only (no XCom read), so it exists as soon as a
    try has left the worker, deferred or finished; it never expires. See this module's docstring.
    """

    name = "AI/ML API video"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        conn_id = getattr(operator, "conn_id", None) or DEFAULT_CONN_ID
        map_index = getattr(ti_key, "map_index", -1)
        return api_server_url(video_redirect_path(
            dag_id=ti_key.dag_id, run_id=ti_key.run_id, task_id=ti_key.task_id,
            map_index=-1 if map_index is None else map_index, conn_id=conn_id))


class MagicVideoDeliveredLink(BaseOperatorLink):
    """"Delivered video": the AWS console page of an object delivered to ``s3://``; ``""`` (hidden) otherwise.

    Reads ``operator.delivered_uri``, which the deliver operator sets after a successful delivery on the same
    task object the worker finalizes; no XCom read, so a failed try logs no "XCom not found".
    """

    name = "Delivered video"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        uri: Any = getattr(operator, "delivered_uri", None)
        return (s3_console_url(uri) if isinstance(uri, str) else None) or ""


__all__ = ["GENERATION_ID_KEY", "URL_PREFIX", "MagicVideoDeliveredLink", "MagicVideoLink", "api_server_url",
           "push_links_now", "s3_console_url", "video_redirect_path"]
