"""The campaign gallery: one self-contained ``index.html`` beside a campaign's ``manifest.json``.

The page is for people, not programs: every row of the manifest becomes a card, a delivered generation as a
playable ``<video>`` and a failed or invalid row with the reason it has no video. It must open from a disk, a
bucket or any static host, so it has no script, no framework and no external fonts or stylesheets (CSS inline),
and the videos are linked relative to the page (the MP4s sit next to it).

The manifest's text is untrusted (row keys and templates come from a marketing spreadsheet, errors from the
API): every value is HTML-escaped, and a ``<video>`` source is only ever a relative path computed from the row's
``uri`` or an ``http(s)`` URL, never whatever scheme the text names (``javascript:``). A Content-Security-Policy
forbids scripts outright, in case an escape is ever missed.

Manifest schema (what the campaign DAG and the batch operator write)::

    {"task": str, "generated_at": ISO 8601, "credits_used": int,
     "rows": [{"key", "template", "model", "generation_id", "status": "delivered"|"failed"|"invalid"|"pending",
               "uri", "size", "sha256", "credits_used", "error"}]}      (missing values null)
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import quote, urlsplit

from airflow.providers.common.compat.sdk import ObjectStoragePath

from airflow_provider_magicvideo.account import CREDITS_PER_USD
from airflow_provider_magicvideo.delivery.destination import (
    LOCAL_PROTOCOLS,
    as_destination,
    destination_failure,
    is_local,
    str_uri,
)

PAGE_NAME = "index.html"
CONTENT_TYPE = "text/html; charset=utf-8"
STATUSES = ("delivered", "failed", "invalid", "pending")
_NO_VALUE = "—"

# No script may run on this page (an unescaped value would be the only way in); media from the page's own
# folder (file:// or the host), or an http(s) URL a row names.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; media-src 'self' file: http: https:"

_CSS = """
:root { color-scheme: light dark; --bg: #f4f4f6; --card: #fff; --ink: #1d1d24; --muted: #62626e;
        --ok: #1b7f4b; --bad: #b3261e; --warn: #8a5a00; --line: #e0e0e6; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #15151a; --card: #202028; --ink: #ececf1; --muted: #a2a2ae; --line: #33333d;
          --ok: #5fd08f; --bad: #ff8a80; --warn: #f0c060; } }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       background: var(--bg); color: var(--ink); }
header { padding: 24px clamp(16px, 4vw, 48px) 8px; }
h1 { margin: 0 0 4px; font-size: clamp(22px, 3vw, 30px); overflow-wrap: anywhere; }
.sub { margin: 0; color: var(--muted); }
.totals { display: flex; flex-wrap: wrap; gap: 8px 24px; margin: 16px 0 0; padding: 0; list-style: none; }
.totals li { font-size: 17px; } .totals b { font-size: 22px; }
main { display: grid; gap: 20px; padding: 16px clamp(16px, 4vw, 48px) 48px;
       grid-template-columns: repeat(auto-fill, minmax(min(100%, 240px), 1fr)); }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 12px; overflow: hidden;
        display: flex; flex-direction: column; }
.frame { aspect-ratio: 608 / 1080; background: #0d0d10; display: flex; align-items: center;
         justify-content: center; }
.frame video { width: 100%; height: 100%; object-fit: contain; display: block; }
.frame p { margin: 0; padding: 20px; color: #e6e6ec; text-align: center; overflow-wrap: anywhere; }
.meta { padding: 12px 14px 14px; }
.meta h2 { margin: 0 0 6px; font-size: 16px; overflow-wrap: anywhere; }
dl { margin: 0; display: grid; grid-template-columns: auto 1fr; gap: 2px 10px; font-size: 13px; }
dt { color: var(--muted); } dd { margin: 0; overflow-wrap: anywhere; }
.badge { font-weight: 600; text-transform: uppercase; font-size: 12px; letter-spacing: .04em; }
.delivered .badge { color: var(--ok); } .failed .badge, .invalid .badge { color: var(--bad); }
.pending .badge, .other .badge { color: var(--warn); }
.reason { margin: 8px 0 0; font-size: 13px; color: var(--bad); overflow-wrap: anywhere; }
.empty { grid-column: 1 / -1; color: var(--muted); }
"""


def esc(value: Any) -> str:
    """Any manifest value as HTML text (attributes included): escaped, ``—`` for a missing one."""
    return _NO_VALUE if value is None or value == "" else html.escape(str(value), quote=True)


def count(value: Any) -> int | None:
    """A whole non-negative number from the manifest, else ``None`` (a bool or text is not a count)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value or value < 0:
        return None
    return int(value) if value < 2**62 else None


def usd(credits: int) -> str:
    """Credits as an approximate bill: ``$0.53`` for one generation (half-up, as a price list rounds)."""
    amount = (Decimal(credits) / CREDITS_PER_USD).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"${amount:,}"


def video_src(uri: Any, folder: str | None = None) -> str | None:
    """The ``src`` of a row's video as the page links it, or ``None`` when it cannot be linked safely.

    ``http(s)`` URLs are kept (without credentials in them); anything else is a stored object and becomes a
    path relative to the page: its file name when ``folder`` is unknown (the videos sit beside the page), its
    path below ``folder`` (the page's folder URI) when known, and ``None`` when it is stored elsewhere. Each
    segment is percent-encoded, so the result can never be read as a scheme (``javascript%3A...``).
    """
    if not isinstance(uri, str) or not uri.strip():
        return None
    uri = uri.strip()
    try:
        parts = urlsplit(uri)
    except ValueError:
        return None
    if parts.scheme.lower() in ("http", "https"):
        return uri if parts.netloc and "@" not in parts.netloc else None
    if folder is None:
        place = _location(uri)
        segments = place[1][-1:] if place else []
    else:
        place, base = _location(uri), _location(folder)
        if place is None or base is None or place[0] != base[0] or place[1][:len(base[1])] != base[1]:
            return None
        segments = place[1][len(base[1]):]
    if not segments or any(s in ("", ".", "..") for s in segments):
        return None
    return "/".join(quote(s, safe="") for s in segments)


def _location(uri: str) -> tuple[str, list[str]] | None:
    """(store, path segments) of a URI or local path: ``("file", [...])``, ``("s3://bucket", [...])``.

    Not ``urlsplit``: an object key may hold ``#`` or ``?`` (``str_uri`` writes keys as they are)."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        scheme, rest = "", uri
    scheme = scheme.lower()
    if scheme in LOCAL_PROTOCOLS:
        store, path = "file", os.path.abspath(rest) if rest else ""
    else:
        bucket, _, path = rest.partition("/")
        if not bucket:
            return None
        store = f"{scheme}://{bucket}"
    return store, [s for s in path.split("/") if s]


def render_gallery(manifest: Mapping[str, Any], *, title: str, folder: str | None = None) -> str:
    """The gallery page of ``manifest`` (pure: no I/O). ``folder``: the URI of the folder the page will be
    written to, so that a video stored elsewhere is not linked as if it were next to the page."""
    raw_rows = manifest.get("rows") if isinstance(manifest, Mapping) else None
    rows = [row for row in raw_rows if isinstance(row, Mapping)] if isinstance(raw_rows, list) else []
    statuses = [_status(row) for row in rows]
    credits = count(manifest.get("credits_used"))
    if credits is None:
        credits = sum(count(row.get("credits_used")) or 0 for row in rows)
    totals = [_total(statuses.count("delivered"), "video delivered", "videos delivered"),
              _total(statuses.count("failed"), "failed", "failed")]
    for extra in ("invalid", "pending"):
        if statuses.count(extra):
            totals.append(_total(statuses.count(extra), extra, extra))
    totals.append(f"<li><b>{credits:,}</b> credits ≈ {usd(credits)}</li>")
    cards = [_card(row, status, folder) for row, status in zip(rows, statuses, strict=True)]
    if not cards:
        cards = ['<p class="empty">This manifest lists no videos.</p>']
    generated = _when(manifest.get("generated_at"))
    task = manifest.get("task")
    sub = f"Generated {esc(generated)}" + (f" by {esc(task)}" if task else "")
    return "\n".join([
        "<!doctype html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>{esc(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        "<header>",
        f"<h1>{esc(title)}</h1>",
        f'<p class="sub">{sub}</p>',
        f'<ul class="totals">{"".join(totals)}</ul>',
        "</header>",
        "<main>",
        *cards,
        "</main>",
        "</body>",
        "</html>",
        "",
    ])


def _total(number: int, one: str, many: str) -> str:
    return f"<li><b>{number:,}</b> {one if number == 1 else many}</li>"


def _status(row: Mapping[str, Any]) -> str:
    status = row.get("status")
    return status if status in STATUSES else "other"


def _when(value: Any) -> Any:
    """``generated_at`` for people (``2026-12-03 11:31 UTC``); the text as given when it is not ISO 8601."""
    if not isinstance(value, str):
        return value
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return value
    offset = moment.utcoffset()
    zone = "" if offset is None else " UTC" if not offset else moment.strftime(" UTC%z")
    return moment.strftime("%Y-%m-%d %H:%M") + zone


def _card(row: Mapping[str, Any], status: str, folder: str | None) -> str:
    src = video_src(row.get("uri"), folder) if status == "delivered" else None
    if src is not None:
        frame = (f'<video src="{esc(src)}" preload="metadata" controls muted playsinline '
                 f'aria-label="{esc(row.get("key"))}"></video>')
    elif status == "delivered":
        frame = f"<p>Stored at {esc(row.get('uri'))}</p>"
    else:
        frame = f"<p>{'No video yet' if status == 'pending' else 'No video'}</p>"
    credits = count(row.get("credits_used"))
    facts = [("Template", esc(row.get("template"))),
             ("Credits", _NO_VALUE if credits is None else f"{credits:,}"),
             ("Status", f'<span class="badge">{esc(row.get("status"))}</span>'),
             ("Generation", esc(row.get("generation_id")))]
    details = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in facts)
    reason = ""
    if status != "delivered" and row.get("error"):
        reason = f'<p class="reason">{esc(row.get("error"))}</p>'
    return (f'<article class="card {status}"><div class="frame">{frame}</div>'
            f'<div class="meta"><h2>{esc(row.get("key"))}</h2><dl>{details}</dl>{reason}</div></article>')


def page_name_for(manifest_uri: str) -> str:
    """The page beside a manifest: ``manifest.json`` → ``index.html``, ``manifest-3.json`` (a mapped batch
    chunk) → ``index-3.html``, any other ``x.json`` → ``x.html``."""
    stem = manifest_uri.rsplit("/", 1)[-1].removesuffix(".json")
    if stem == "manifest":
        return PAGE_NAME
    return f"index-{stem.removeprefix('manifest-')}.html" if stem.startswith("manifest-") else f"{stem}.html"


def write_gallery(folder: str | os.PathLike[str] | ObjectStoragePath, manifest: Mapping[str, Any], *, title: str,
                  conn_id: str | None = None, name: str = PAGE_NAME) -> str:
    """Write the page (``name``, default ``index.html``) for ``manifest`` into ``folder`` (a local folder,
    ``file://``, ``s3://``... URI or :class:`ObjectStoragePath`; ``conn_id`` as for deliveries) and return its URI.

    The page is sent as ``text/html`` to S3 (a bucket website or a presigned link then shows it instead of
    downloading it); other stores keep their own idea of the type.
    """
    if isinstance(folder, ObjectStoragePath):
        target = as_destination(folder / name, conn_id)
    else:
        text = os.fspath(folder).rstrip("/" + os.sep) if isinstance(folder, str | os.PathLike) else ""
        target = as_destination(f"{text}/{name}" if text else "", conn_id)
    uri = str_uri(target)
    page = render_gallery(manifest, title=title, folder=uri.rsplit("/", 1)[0]).encode("utf-8")
    kwargs: dict[str, Any] = {"ContentType": CONTENT_TYPE} if target.protocol in ("s3", "s3a") else {}
    try:
        if is_local(target):
            target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb", **kwargs) as handle:
            handle.write(page)
    except Exception as exc:
        raise destination_failure(exc, "write", uri) from exc
    return uri
