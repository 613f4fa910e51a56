"""OpenLineage facets of the submit, render, deliver and batch operators.

Only the OpenLineage provider calls into this module (through the operators'
``get_openlineage_facets_on_complete``), and the operators import it inside that method: so it may import the
OpenLineage provider at the top, and the rest of the provider works without it installed.

Datasets follow the OpenLineage provider's naming (its object-storage and ``file`` asset converters):
``s3://bucket/key`` is namespace ``s3://bucket``, name ``key``; ``file:///data/in.png`` is namespace ``file``,
name ``/data/in.png``. Only storage URIs and paths name a dataset: an http(s) URL (possibly presigned), a data
URI, base64 or bytes does not, and a bare string path is not guessed at (it may be base64); pass a
``file://`` URI or a ``Path`` to see it in the lineage.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from airflow.providers.common.compat.openlineage.facet import Dataset, RunFacet
from airflow.providers.common.compat.sdk import ObjectStoragePath
from airflow.providers.openlineage.extractors import OperatorLineage
from attrs import define

from airflow_provider_magicvideo.delivery.destination import str_uri

#: The run facets' keys in the OpenLineage event.
RUN_FACET_KEY = "magicvideo"
BATCH_RUN_FACET_KEY = "magicvideo_batch"
#: As the OpenLineage provider's object-storage converter: one namespace per store, whatever the fsspec alias.
_SCHEME_ALIASES = {"s3a": "s3", "s3n": "s3", "gcs": "gs"}
_NOT_STORAGE = ("http", "https", "data")


@define
class MagicVideoRunFacet(RunFacet):
    """The generation this run made or delivered. Never the API key, never the (signed) video URL."""

    model: str | None = None
    template: str | None = None
    generation_id: str | None = None
    credits_used: int | None = None


@define
class MagicVideoBatchRunFacet(RunFacet):
    """What one batch task rendered: row counts, credits and its manifest (which lists every generation)."""

    rows: int = 0
    delivered: int = 0
    failed: int = 0
    invalid: int = 0
    credits_used: int | None = None
    manifest_uri: str | None = None


def dataset_of(value: Any) -> Dataset | None:
    """The OpenLineage dataset a media input or a destination names, or ``None`` when it names none."""
    uri = _storage_uri(value)
    if uri is None:
        return None
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    # Userinfo (an Airflow connection id, or credentials) and any query (a signature) identify no dataset.
    host = parts.netloc.rpartition("@")[2]
    if scheme in ("file", "local"):
        return Dataset(namespace=f"file://{host}" if host else "file", name=parts.path)
    scheme = _SCHEME_ALIASES.get(scheme, scheme)
    if not host:
        return Dataset(namespace=scheme, name=parts.path)
    return Dataset(namespace=f"{scheme}://{host}", name=parts.path.lstrip("/"))


def _storage_uri(value: Any) -> str | None:
    if isinstance(value, ObjectStoragePath):
        return str_uri(value)  # without the connection id that str() puts in
    if isinstance(value, os.PathLike):
        return "file://" + os.path.abspath(os.path.expanduser(os.fspath(value)))
    if isinstance(value, str):
        text = value.strip()
        scheme = urlsplit(text).scheme.lower() if "://" in text[:32] else ""
        if scheme and scheme not in _NOT_STORAGE:
            return text
    return None


def run_facets(summary: Mapping[str, Any]) -> dict[str, RunFacet]:
    """``{"magicvideo": MagicVideoRunFacet}`` from what the task knew (nothing when it knew no generation)."""
    if not summary.get("generation_id"):
        return {}
    return {RUN_FACET_KEY: MagicVideoRunFacet(
        model=_text(summary.get("model")), template=_text(summary.get("template")),
        generation_id=str(summary["generation_id"]),
        credits_used=_credits(summary.get("credits_used")),
    )}


def submit_lineage(operator: Any, summary: Mapping[str, Any]) -> OperatorLineage:
    """The submit operator's lineage: its image or video input (when a storage URI) and the run facet."""
    inputs = [d for d in (dataset_of(operator.image), dataset_of(operator.video)) if d is not None]
    return OperatorLineage(inputs=inputs, run_facets=run_facets(summary))


def deliver_lineage(delivered_uri: str | None, summary: Mapping[str, Any]) -> OperatorLineage:
    """The deliver operator's lineage: the delivered object and the run facet."""
    output = dataset_of(delivered_uri) if delivered_uri else None
    return OperatorLineage(outputs=[output] if output is not None else [], run_facets=run_facets(summary))


def render_lineage(operator: Any, delivered_uri: str | None, summary: Mapping[str, Any]) -> OperatorLineage:
    """The render operator's lineage: the submit's input and the deliver's output, one run facet."""
    lineage = submit_lineage(operator, summary)
    lineage.outputs = deliver_lineage(delivered_uri, summary).outputs
    return lineage


def batch_lineage(rows: Any, delivered_uris: list[str], summary: Mapping[str, Any]) -> OperatorLineage:
    """The batch operator's lineage: every row's image/video that is a storage URI (once each), every delivered
    video and the manifest, and one run facet for the chunk (a facet per generation would not scale to 500)."""
    inputs: dict[tuple[str, str], Dataset] = {}
    for row in rows if isinstance(rows, list) else ():
        for field in ("image", "video"):
            dataset = dataset_of(row.get(field)) if isinstance(row, Mapping) else None
            if dataset is not None:
                inputs.setdefault((dataset.namespace, dataset.name), dataset)
    uris = [*delivered_uris, summary.get("manifest_uri")]
    outputs = [d for d in (dataset_of(uri) for uri in uris if uri) if d is not None]
    facets: dict[str, RunFacet] = {}
    if summary:
        facets[BATCH_RUN_FACET_KEY] = MagicVideoBatchRunFacet(
            rows=int(summary.get("rows") or 0), delivered=int(summary.get("delivered") or 0),
            failed=int(summary.get("failed") or 0), invalid=int(summary.get("invalid") or 0),
            credits_used=_credits(summary.get("credits_used")),
            manifest_uri=_text(summary.get("manifest_uri")))
    return OperatorLineage(inputs=list(inputs.values()), outputs=outputs, run_facets=facets)


def _credits(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
