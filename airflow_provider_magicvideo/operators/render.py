"""MagicVideoRenderOperator: one task per video, from the input to the delivered MP4.

The submit operator's control flow (resume, submit, wait or defer, finish) with the deliver operator's step as
its finish: no wait loop, defer block or delivery code of its own. See ``MagicVideoSubmitOperator.execute``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperatorLink, ObjectStoragePath

from airflow_provider_magicvideo.delivery import DEFAULT_CHUNK_SIZE, Overwrite, as_destination
from airflow_provider_magicvideo.exceptions import InvalidInputError
from airflow_provider_magicvideo.links import MagicVideoDeliveredLink, MagicVideoLink
from airflow_provider_magicvideo.operators.deliver import DeliveryStep
from airflow_provider_magicvideo.operators.magicvideo import MagicVideoSubmitOperator
from airflow_provider_magicvideo.tasks import fail_task

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context


class MagicVideoRenderOperator(DeliveryStep, MagicVideoSubmitOperator):
    """Submit a generation, wait for it (in the triggerer by default) and deliver its MP4 to ``destination``.

    Returns (XCom ``return_value``) the submit operator's result dict joined with the delivery's:
    ``{generation_id, status, video_url, url_expires_at, credits_used, model, template, uri, size, sha256,
    content_type, skipped}``; the same essentials are the extra of every :class:`Asset` outlet's event.
    ``video_url`` is the API's presigned URL and expires (10 minutes): use ``uri``, or the "AI/ML API video"
    link, which fetches a fresh one at click time.

    Never billed twice, as the submit operator: a retry, a worker crash, a triggerer restart reconnect to the
    generation recorded by the first try. A retry after a failed delivery (a full disk, an unreachable bucket,
    a dropped download) delivers the recorded generation again without a new submit.

    Takes every argument of ``MagicVideoSubmitOperator`` (``model``, ``image``, ``video``, ``prompt``,
    ``template``, ``poll_interval``, ``timeout``, ``credit_budget``, ...) but ``wait_for_completion``, and those
    of ``MagicVideoDeliverOperator`` but ``generation_id``:

    :param destination: where to put the MP4: ``s3://bucket/{{ ds }}/{{ params.sku }}.mp4``,
        ``file:///data/out.mp4``, a local path or an ``ObjectStoragePath``. Templated.
    :param dest_conn_id: Airflow connection of the destination store (e.g. an AWS connection). Templated.
    :param deferrable: wait in the triggerer (default), or block a worker slot while the video renders.
    :param overwrite: ``"if_different"`` (default), ``"always"`` or ``"never"``.
    :param chunk_size: bytes per read/write of the download.
    :param max_attempts: download attempts (each with a fresh URL, resuming with ``Range``).
    """

    template_fields: Sequence[str] = (*MagicVideoSubmitOperator.template_fields, "destination", "dest_conn_id")
    operator_extra_links: tuple[BaseOperatorLink, ...] = (MagicVideoLink(), MagicVideoDeliveredLink())
    ui_color = "#dcd6f7"

    # Deferrable by default, whatever [operators] default_deferrable says: Airflow's own default for it is
    # false, and a render keeps a blocking task's worker slot idle for minutes.
    def __init__(self, *, destination: str | ObjectStoragePath, dest_conn_id: str | None = None,
                 deferrable: bool = True, overwrite: Overwrite = "if_different",
                 chunk_size: int = DEFAULT_CHUNK_SIZE, max_attempts: int = 4, **kwargs: Any) -> None:
        if "wait_for_completion" in kwargs:
            raise InvalidInputError("wait_for_completion: MagicVideoRenderOperator always waits (it delivers the "
                                    "video); use MagicVideoSubmitOperator to submit without waiting.")
        super().__init__(wait_for_completion=True, deferrable=deferrable, **kwargs)
        self._set_delivery_options(destination=destination, dest_conn_id=dest_conn_id, overwrite=overwrite,
                                   chunk_size=chunk_size, max_attempts=max_attempts)

    def execute(self, context: Context) -> Any:
        with fail_task():  # a destination that cannot name a file fails now, not after a paid render
            as_destination(self.destination, self.dest_conn_id or None)
        return super().execute(context)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the image/video input (a storage URI), the delivered object, the generation's run facet."""
        from airflow_provider_magicvideo.lineage import render_lineage

        return render_lineage(self, self.delivered_uri, self.lineage_summary)

    def _finish(self, context: Context, result: dict[str, Any], submission: dict[str, Any]) -> dict[str, Any]:
        """Publish the generation (``video_url`` XCom, asset extra), then deliver it in this same try."""
        super()._finish(context, result, submission)
        hook = self.get_hook(context)
        try:
            delivered = self._deliver(context, hook, result["generation_id"])
        finally:
            hook.close()
        return {**result, **delivered.as_xcom()}


__all__ = ["MagicVideoDeliveredLink", "MagicVideoLink", "MagicVideoRenderOperator"]
