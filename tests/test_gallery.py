"""The campaign gallery (``index.html`` beside ``manifest.json``): what it shows, what it escapes, where it links.

The page is parsed with the standard library's HTML parser, as a browser would tokenise it: a hostile value
that survived escaping would show up as a tag or attribute of its own, not only as text.
"""

from __future__ import annotations

import uuid
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_magicvideo.gallery import render_gallery, usd, video_src, write_gallery
from tests.s3_server import s3_endpoint  # noqa: F401  (fixture)
from tooling.s3 import s3_client

HOSTILE_KEY = "<script>alert(1)</script>"
QUOTED_TEMPLATE = 'Art "Gallery" \'n\' <b>bold</b>'


class Page(HTMLParser):
    """Every start tag with its attributes, and the page's text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]

    @property
    def plain(self) -> str:
        return " ".join(" ".join(self.text).split())


def row(key: str, status: str, **values: Any) -> dict[str, Any]:
    base = {"key": key, "template": "Art Gallery", "model": "magic/image-to-video", "generation_id": f"gen-{key}",
            "status": status, "uri": None, "size": None, "sha256": None, "credits_used": None, "error": None}
    return {**base, **values}


def manifest(*rows: dict[str, Any], credits_used: int | None = None) -> dict[str, Any]:
    return {"task": "magicvideo_campaign.write_summary", "generated_at": "2026-12-03T11:31:42+00:00",
            "credits_used": credits_used, "rows": list(rows)}


CAMPAIGN = manifest(
    row("SKU-1", "delivered", uri="s3://shop/videos/2026-12-03/SKU-1.mp4", size=10, credits_used=1_050_000),
    row(HOSTILE_KEY, "delivered", template=QUOTED_TEMPLATE, uri="s3://shop/videos/2026-12-03/x y#1.mp4",
        credits_used=1_050_000),
    row("SKU-3", "failed", credits_used=0, error="MediaDownloadError: image_url: could not download <host>"),
    row("SKU-4", "invalid", generation_id=None, error="template: 'Nope' is not a known template"),
    row("SKU-5", "pending", credits_used=1_050_000),
    credits_used=3_150_000,
)
FOLDER = "s3://shop/videos/2026-12-03"


def test_hostile_values_are_text_never_markup():
    page = Page(render_gallery(CAMPAIGN, title='Spring "sale" <img src=x onerror=alert(1)>', folder=FOLDER))
    assert not page.all("script") and not page.all("img")  # the key and the title did not become tags
    assert HOSTILE_KEY in page.plain and QUOTED_TEMPLATE in page.plain
    assert 'Spring "sale" <img src=x onerror=alert(1)>' in page.plain
    labels = [attrs["aria-label"] for attrs in page.all("video")]
    assert labels == ["SKU-1", HOSTILE_KEY]  # inside an attribute the quotes are escaped too
    assert all(not name.startswith("on") for _, attrs in page.tags for name in attrs)


def test_every_status_is_a_card_with_its_reason():
    page = Page(render_gallery(CAMPAIGN, title="Spring", folder=FOLDER))
    cards = [attrs["class"] for attrs in page.all("article")]
    assert cards == ["card delivered", "card delivered", "card failed", "card invalid", "card pending"]
    assert "MediaDownloadError: image_url: could not download <host>" in page.plain
    assert "template: 'Nope' is not a known template" in page.plain
    assert len(page.all("video")) == 2  # only delivered rows play


def test_an_unknown_status_gets_no_class_of_its_own():
    page = Page(render_gallery(manifest(row("K", 'x" onclick="alert(1)')), title="t"))
    assert [attrs["class"] for attrs in page.all("article")] == ["card other"]
    assert 'x" onclick="alert(1)' in page.plain


def test_totals_and_the_usd_estimate():
    page = Page(render_gallery(CAMPAIGN, title="Spring", folder=FOLDER)).plain
    assert "2 videos delivered" in page and "1 failed" in page and "1 invalid" in page and "1 pending" in page
    assert "3,150,000 credits ≈ $1.58" in page
    assert "Generated 2026-12-03 11:31 UTC by magicvideo_campaign.write_summary" in page
    assert usd(1_050_000) == "$0.53"  # the README's "about $0.53" per generation
    assert usd(0) == "$0.00" and usd(20 * 1_050_000) == "$10.50"


def test_credits_are_summed_from_rows_when_the_total_is_missing():
    page = Page(render_gallery({**CAMPAIGN, "credits_used": None}, title="t")).plain
    assert "3,150,000 credits" in page
    page = Page(render_gallery({"rows": "nonsense", "credits_used": "lots"}, title="t")).plain
    assert "0 videos delivered" in page and "0 credits ≈ $0.00" in page and "lists no videos" in page


def test_video_sources_are_relative_to_the_page():
    page = Page(render_gallery(CAMPAIGN, title="Spring", folder=FOLDER))
    videos = page.all("video")
    assert [v["src"] for v in videos] == ["SKU-1.mp4", "x%20y%231.mp4"]
    for video in videos:
        assert {"controls", "muted", "playsinline"} <= set(video) and video["preload"] == "metadata"


@pytest.mark.parametrize(("uri", "folder", "src"), [
    ("s3://shop/v/SKU-1.mp4", None, "SKU-1.mp4"),  # no folder known: the videos sit beside the page
    ("s3://shop/v/a/b.mp4", "s3://shop/v", "a/b.mp4"),
    ("file:///data/out/SKU-1.mp4", "file:///data/out", "SKU-1.mp4"),
    ("/data/out/SKU-1.mp4", "file:///data/out/", "SKU-1.mp4"),
    ("https://cdn.example/v/SKU-1.mp4?x=1", FOLDER, "https://cdn.example/v/SKU-1.mp4?x=1"),
    ("s3://other-bucket/videos/2026-12-03/SKU-1.mp4", FOLDER, None),  # stored elsewhere: not beside the page
    ("s3://shop/videos/SKU-1.mp4", FOLDER, None),  # the folder above
    ("s3://shop/videos/2026-12-03/../x.mp4", FOLDER, None),
    ("javascript:alert(1)", None, "javascript%3Aalert%281%29"),  # a relative file name, never a scheme
    ("javascript:alert(1)", FOLDER, None),
    ("data:video/mp4;base64,AAAA", None, "mp4%3Bbase64%2CAAAA"),  # a file name again
    ("https://user:secret@cdn.example/v.mp4", None, None),  # credentials never reach the page
    ("http:///no-host.mp4", None, None),
    ("", None, None), (None, None, None), (42, None, None),
])
def test_video_src(uri, folder, src):
    assert video_src(uri, folder) == src


def test_a_delivered_row_stored_elsewhere_says_where_instead_of_a_dead_link():
    rows = manifest(row("K", "delivered", uri="s3://elsewhere/K.mp4"))
    page = Page(render_gallery(rows, title="t", folder=FOLDER))
    assert not page.all("video") and "Stored at s3://elsewhere/K.mp4" in page.plain


def test_the_page_is_self_contained():
    text = render_gallery(CAMPAIGN, title="Spring", folder=FOLDER)
    page = Page(text)
    assert not page.all("link") and not page.all("script") and not page.all("iframe")
    assert "http://" not in text.replace(FOLDER, "") and "https://" not in text and "@import" not in text
    [csp] = [m["content"] for m in page.all("meta") if m.get("http-equiv") == "Content-Security-Policy"]
    assert "default-src 'none'" in (csp or "") and "script-src" not in (csp or "")


def test_write_gallery_to_a_local_folder(tmp_path: Path):
    folder = tmp_path / "videos" / "2026-12-03"  # not there yet: created
    rows = manifest(row("SKU-1", "delivered", uri=f"file://{folder}/SKU-1.mp4", credits_used=1_050_000))
    uri = write_gallery(str(folder) + "/", rows, title="Spring")
    assert uri == f"file://{folder}/index.html"
    page = Page((folder / "index.html").read_text(encoding="utf-8"))
    assert [v["src"] for v in page.all("video")] == ["SKU-1.mp4"]
    assert write_gallery(f"file://{folder}", rows, title="Spring") == uri  # a URI names the same page


def test_write_gallery_to_s3_as_html(s3_endpoint):  # noqa: F811
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    bucket = f"gallery-{uuid.uuid4().hex[:8]}"
    client = s3_client(s3_endpoint)
    client.create_bucket(Bucket=bucket)
    rows = manifest(row("SKU-1", "delivered", uri=f"s3://{bucket}/c/SKU-1.mp4", credits_used=1_050_000),
                    row("SKU-2", "failed", error="RenderError: boom"))
    uri = write_gallery(ObjectStoragePath(f"s3://{bucket}/c"), rows, title="Spring", conn_id="aws_test")
    assert uri == f"s3://{bucket}/c/index.html"
    obj = client.get_object(Bucket=bucket, Key="c/index.html")
    assert obj["ContentType"] == "text/html; charset=utf-8"  # a bucket website shows it instead of downloading
    page = Page(obj["Body"].read().decode("utf-8"))
    assert [v["src"] for v in page.all("video")] == ["SKU-1.mp4"] and "RenderError: boom" in page.plain


def test_write_gallery_to_a_missing_bucket_is_a_delivery_error(s3_endpoint):  # noqa: F811
    from airflow_provider_magicvideo.exceptions import PermanentDeliveryError

    with pytest.raises(PermanentDeliveryError, match=r"index\.html"):
        write_gallery(f"s3://no-such-bucket-{uuid.uuid4().hex[:6]}/c", CAMPAIGN, title="t", conn_id="aws_test")


@pytest.mark.parametrize(("manifest_uri", "page"), [
    ("s3://b/2026-12-03/manifest.json", "index.html"),
    ("file:///out/manifest-3.json", "index-3.html"),
    ("file:///out/spring.json", "spring.html"),
])
def test_the_page_beside_a_manifest_is_named_after_it(manifest_uri: str, page: str) -> None:
    from airflow_provider_magicvideo.gallery import page_name_for

    assert page_name_for(manifest_uri) == page
