"""The api-server side of the "AI/ML API video" extra link: a fresh presigned URL at click time.

``GET /magicvideo/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/video?map_index=-1&conn_id=magicvideo_default``

* **Who**: Airflow's own dependency ``requires_access_dag("GET", DagAccessEntity.TASK_INSTANCE)`` (the one the
  task instance and extra-link endpoints use): a request without a valid Airflow token (the UI's ``_token``
  cookie or an ``Authorization: Bearer`` header) is refused with 401/403 before anything else runs, and so is
  a user who may not read this DAG's task instances.
* **Which generation**: the one *this task instance* recorded under the XCom ``generation_id``, read from the
  metadata DB; the URL names a task instance, never a generation, so a user reaches only renders of DAGs they
  may read.
* **Which connection**: ``conn_id`` (the operator's, written into the link by the worker); it must be of type
  ``magicvideo``, so the link cannot make the api-server send another connection's secret anywhere.
* **Answer**: ``302`` to the API's current presigned URL, checked by :func:`.check_video_url` (https, public
  host; what the connection's ``allow_insecure_video_urls`` allows for the emulator), ``Cache-Control:
  no-store``. ``404`` when the task recorded no generation, the API does not know it or it ended in error;
  ``409`` while it is still rendering; ``502`` when the API fails or answers a URL the guard refuses. Messages
  name the generation and the task, never the key or the URL's signature.

The HTTP to the API is the hook's (:meth:`MagicVideoHook.get_generation`); the handler is a plain ``def``, so
FastAPI runs it in its thread pool and the blocking request does not hold the api-server's event loop.
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, status
from fastapi.responses import RedirectResponse

from airflow_provider_magicvideo.exceptions import GenerationNotFoundError, MagicVideoError
from airflow_provider_magicvideo.generation import GenerationStatus
from airflow_provider_magicvideo.hooks.magicvideo import MagicVideoHook
from airflow_provider_magicvideo.hooks.video_url import RefusedVideoUrl, check_video_url
from airflow_provider_magicvideo.links import DEFAULT_CONN_ID, GENERATION_ID_KEY
from airflow_provider_magicvideo.redaction import truncate

log = logging.getLogger(__name__)

CONN_TYPE = "magicvideo"


def recorded_generation_id(*, dag_id: str, run_id: str, task_id: str, map_index: int) -> str | None:
    """The generation id the task instance pushed under :data:`GENERATION_ID_KEY`, or None."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    query = select(XComModel.value).where(
        XComModel.dag_id == dag_id, XComModel.run_id == run_id, XComModel.task_id == task_id,
        XComModel.map_index == map_index, XComModel.key == GENERATION_ID_KEY).limit(1)
    with create_session() as session:
        value: Any = session.execute(query).scalar()
    if isinstance(value, (str, bytes)):
        # Stored JSON-encoded. A custom XCom backend may store a reference instead: not an id, so refused below.
        with contextlib.suppress(ValueError):
            value = json.loads(value)
    if isinstance(value, str) and value.strip() and len(value) <= 200 and value.isprintable():
        return value.strip()
    return None


def fresh_video_url(conn_id: str, generation_id: str) -> str:
    """The generation's current presigned URL, checked; :class:`HTTPException` with a clear message otherwise."""
    hook = MagicVideoHook(conn_id)
    try:
        _require_magicvideo_connection(hook, conn_id)
        allow_insecure = hook.settings.allow_insecure_video_urls
        try:
            generation = hook.get_generation(generation_id)
        except GenerationNotFoundError:
            raise HTTPException(status.HTTP_404_NOT_FOUND,
                                f"The AI/ML API does not know generation {generation_id}.") from None
        except MagicVideoError as exc:  # messages are key-free by construction (see exceptions.py)
            raise HTTPException(status.HTTP_502_BAD_GATEWAY,
                                f"The AI/ML API did not answer for generation {generation_id}: {exc}") from None
    finally:
        hook.close()
    if generation.status is GenerationStatus.ERROR:
        reason = ": ".join(part for part in (generation.error_name, generation.error_message) if part)
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"Generation {generation_id} ended in error, no video"
                            f"{f' ({reason})' if reason else ''}.")
    if generation.status is not GenerationStatus.COMPLETED or not generation.video_url:
        raise HTTPException(status.HTTP_409_CONFLICT, f"Generation {generation_id} is still rendering (status "
                            f"{generation.raw_status!r}); open the link again when the task has finished.")
    try:
        return check_video_url(generation.video_url, allow_insecure=allow_insecure)
    except RefusedVideoUrl as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"The AI/ML API answered a video URL for generation "
                            f"{generation_id} that the provider refuses to open (host {truncate(exc.host, 80)!r}: "
                            f"{exc.reason}).") from None


def _require_magicvideo_connection(hook: MagicVideoHook, conn_id: str) -> None:
    from airflow.providers.common.compat.sdk import AirflowNotFoundException

    try:
        conn = hook.get_connection(conn_id)
    except AirflowNotFoundException:
        conn = None
    if conn is None or conn.conn_type != CONN_TYPE:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            f"No connection {truncate(conn_id, 100)!r} of type {CONN_TYPE!r} on this Airflow.")


def create_app() -> FastAPI:
    """The sub-application the plugin mounts under ``/magicvideo`` (no OpenAPI pages of its own)."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import requires_access_dag

    app = FastAPI(title="AI/ML API video redirect", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/video", response_class=RedirectResponse,
             status_code=status.HTTP_302_FOUND,
             dependencies=[Depends(requires_access_dag("GET", DagAccessEntity.TASK_INSTANCE))])
    def task_instance_video(dag_id: str, run_id: str, task_id: str, map_index: int = -1,
                            conn_id: str = DEFAULT_CONN_ID) -> RedirectResponse:
        generation_id = recorded_generation_id(dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=map_index)
        where = f"task {task_id!r}{f'[{map_index}]' if map_index >= 0 else ''} of run {run_id!r} of DAG {dag_id!r}"
        if generation_id is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"No generation recorded for {where}: it has not "
                                "submitted one yet, or failed before the AI/ML API named it.")
        url = fresh_video_url(conn_id, generation_id)
        log.info("Redirecting to a fresh video URL of generation %s (%s)", generation_id, where)
        return RedirectResponse(url, status_code=status.HTTP_302_FOUND,
                                headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})

    return app
