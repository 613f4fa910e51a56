"""``MagicVideoDeliverOperator``: copy a finished render's MP4 to any ObjectStoragePath (file://, s3://, ...).

A thin wrapper over :func:`airflow_provider_magicvideo.delivery.deliver_generation`: it resolves the
arguments, maps permanent failures to ``AirflowFailException`` and publishes the result (XCom, asset
event extra, ``delivered_uri`` for the "Delivered video" link; see :mod:`airflow_provider_magicvideo.links`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator, ObjectStoragePath

from airflow_provider_magicvideo.delivery import (
    DEFAULT_CHUNK_SIZE,
    OVERWRITE_MODES,
    DeliveryResult,
    Overwrite,
    as_destination,
    deliver_generation,
)
from airflow_provider_magicvideo.exceptions import InvalidInputError
from airflow_provider_magicvideo.generation import resolve_generation_id
from airflow_provider_magicvideo.hooks.magicvideo import MagicVideoHook
from airflow_provider_magicvideo.hooks.settings import positive_number
from airflow_provider_magicvideo.links import (
    GENERATION_ID_KEY,
    MagicVideoDeliveredLink,
    MagicVideoLink,
    push_links_now,
)
from airflow_provider_magicvideo.tasks import client_request_id_for, fail_task

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context


class DeliveryStep:
    """The delivery step, shared: :class:`MagicVideoDeliverOperator` is only this step, and
    ``MagicVideoRenderOperator`` ends with it (same options, checks, errors and published result)."""

    destination: str | ObjectStoragePath
    dest_conn_id: str | None
    overwrite: Overwrite
    chunk_size: int
    max_attempts: int
    #: Set by a successful delivery; the "Delivered video" link reads it when the worker finalizes the task.
    delivered_uri: str | None

    def _set_delivery_options(self, *, destination: str | ObjectStoragePath, dest_conn_id: str | None,
                              overwrite: Overwrite, chunk_size: int, max_attempts: int) -> None:
        """Checked when the DAG is parsed, long before anything is downloaded."""
        if overwrite not in OVERWRITE_MODES:
            raise InvalidInputError(f"overwrite: {overwrite!r:.60} is not one of {', '.join(OVERWRITE_MODES)}.")
        self.destination = destination
        self.dest_conn_id = dest_conn_id
        self.overwrite = overwrite
        self.chunk_size = positive_number(chunk_size, "chunk_size", integer=True, maximum=1 << 30,
                                          error=InvalidInputError)
        self.max_attempts = positive_number(max_attempts, "max_attempts", integer=True, maximum=100,
                                            error=InvalidInputError)
        self.delivered_uri = None

    def _deliver(self, context: Context, hook: MagicVideoHook, generation_id: str) -> DeliveryResult:
        with fail_task():
            result = deliver_generation(
                hook, generation_id,
                as_destination(self.destination, self.dest_conn_id or None),
                chunk_size=self.chunk_size, max_attempts=self.max_attempts, overwrite=self.overwrite,
            )
        self._publish(context, result)
        return result

    def _publish(self, context: Context, result: DeliveryResult) -> None:
        """Remember where the video went (for the link) and attach the result to the asset events of this
        task's Asset outlets."""
        from airflow.providers.common.compat.sdk import Asset

        self.delivered_uri = result.uri
        outlets = [o for o in (getattr(self, "outlets", None) or []) if isinstance(o, Asset)]
        if not outlets:
            return
        events = context["outlet_events"]
        for asset in outlets:
            events[asset].extra.update(result.as_xcom())


class MagicVideoDeliverOperator(DeliveryStep, BaseOperator):
    """Stream a completed render's MP4 to ``destination``: resumable, verified, atomic and idempotent.

    A fresh presigned URL is fetched right before the download (the API's URLs expire after 10 minutes),
    the body is streamed in ``chunk_size`` pieces (constant memory), checked (MP4 signature, length,
    sha256) and written to ``<name>.part-<random>`` next to the destination, then moved onto it. A
    re-run that finds the same bytes already delivered writes nothing and returns ``skipped=True``.

    :param generation_id: the render's id, or the dict returned by ``MagicVideoSubmitOperator`` /
        ``MagicVideoSensor`` (``{"generation_id": ..., ...}``). Templated.
    :param destination: where to put the MP4: ``s3://bucket/{{ ds }}/{{ params.sku }}.mp4``,
        ``file:///data/out.mp4``, a local path or an ``ObjectStoragePath``. Templated.
    :param dest_conn_id: Airflow connection of the destination store (e.g. an AWS connection). Templated.
    :param conn_id: connection of type ``magicvideo``.
    :param overwrite: ``"if_different"`` (default: replace only when the sha256 differs), ``"always"``,
        or ``"never"`` (keep any existing object without downloading).
    :param chunk_size: bytes per read/write.
    :param max_attempts: download attempts (each with a fresh URL, resuming with ``Range``).

    Returns (XCom ``return_value``) ``{"uri", "size", "sha256", "content_type", "generation_id",
    "skipped"}``; the same dict is attached as the extra of every :class:`Asset` in ``outlets``.
    """

    template_fields: Sequence[str] = ("generation_id", "destination", "dest_conn_id")
    #: "AI/ML API video" (a fresh URL of the render, at click time) and "Delivered video" (s3:// only).
    operator_extra_links = (MagicVideoLink(), MagicVideoDeliveredLink())
    ui_color = "#c9e7f5"

    def __init__(
        self,
        *,
        generation_id: str | Mapping[str, Any],
        destination: str | ObjectStoragePath,
        dest_conn_id: str | None = None,
        conn_id: str = MagicVideoHook.default_conn_name,
        overwrite: Overwrite = "if_different",
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        max_attempts: int = 4,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.generation_id = generation_id
        self.conn_id = conn_id
        self._set_delivery_options(destination=destination, dest_conn_id=dest_conn_id, overwrite=overwrite,
                                   chunk_size=chunk_size, max_attempts=max_attempts)
        #: What this try knew of the generation (its id; model, template, credits when handed a result dict).
        self.lineage_summary: dict[str, Any] = {}

    def get_hook(self, context: Context) -> MagicVideoHook:
        return MagicVideoHook(self.conn_id, client_request_id=client_request_id_for(context))

    def execute(self, context: Context) -> dict[str, Any]:
        push_links_now(self, context)
        hook = self.get_hook(context)
        with fail_task():
            generation_id = resolve_generation_id(self.generation_id)
        context["ti"].xcom_push(key=GENERATION_ID_KEY, value=generation_id)  # the extra link finds it here
        known = self.generation_id if isinstance(self.generation_id, Mapping) else {}
        self.lineage_summary = {**{k: known.get(k) for k in ("model", "template", "credits_used")},
                                "generation_id": generation_id}
        try:
            result = self._deliver(context, hook, generation_id)
        finally:
            hook.close()
        return result.as_xcom()

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the delivered object as the output dataset, and the generation's run facet."""
        from airflow_provider_magicvideo.lineage import deliver_lineage

        return deliver_lineage(self.delivered_uri, self.lineage_summary)

# MagicVideoDeliveredLink: its registered import path
__all__ = ["DeliveryStep", "MagicVideoDeliverOperator", "MagicVideoDeliveredLink"]
