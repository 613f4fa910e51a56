"""Issue 19 (items 1 and 3): the provider in the real Airflow 3.3 UI, driven by headless Chromium.

One LocalExecutor deployment with the shipped example DAGs (``dags/``) and the tier's fast emulator. The
tests do what a new user does in the browser: log in, add a ``magicvideo`` connection through the form,
press the connections list's Test action and read its toast; then run ``magicvideo_quickstart`` and watch
the ``wait`` task defer and the run succeed. Renders are held with the emulator's clock (paused before the
trigger, resumed once the UI shows the task deferred), so nothing races a clock.

The campaign gallery (``index.html`` beside the campaign's videos) is opened from disk and every video must load.

Screenshots go to ``.artefacts/browser/`` (gitignored). Needs Playwright for Python (the ``integration``
extra) and Debian's ``chromium`` on PATH (``apt-get install chromium``); Playwright's own browser download is
not used.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests

from tooling.deployment import Deployment

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page

    from tests.integration.conftest import Tier

pytestmark = pytest.mark.deployment

CHROMIUM = shutil.which("chromium")
try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    pytest.skip("browser tests need Playwright for Python: pip install '.[integration]'", allow_module_level=True)
if CHROMIUM is None:  # pragma: no cover - depends on the environment
    pytest.skip("browser tests need Debian's chromium on PATH: apt-get install -y chromium", allow_module_level=True)

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_DAGS = REPO / "dags"
ARTEFACTS = REPO / ".artefacts" / "browser"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
QUICKSTART = "magicvideo_quickstart"
CAMPAIGN = "magicvideo_campaign"
CONN_ID = "magicvideo_default"  # the quickstart's connection
UI_TIMEOUT_MS = 120_000  # the UI polls the API every few seconds; two busy cores can make that slow
RUN_TIMEOUT_MS = 300_000
TIMINGS: dict[str, float] = {}


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def ui(tier: Tier) -> Iterator[Deployment]:
    """A deployment without connections (the browser adds one) and the shipped example DAGs."""
    from tooling.deployment import deployment

    started = time.monotonic()
    # A try lost to a loaded machine (a missed heartbeat) is retried as in production; 5 s, not Airflow's default
    # 300 s, so such a retry (which reconnects, never pays twice) ends within the run's timeout.
    with deployment("LocalExecutor", {}, tier.api_key, tier.template, tier.user, EXAMPLE_DAGS, label="ui",
                    triggerers=1, extra_env={"MAGICVIDEO_POLL_SECONDS": "1",
                                             "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "5"}) as dep:
        dep.wait_dag(QUICKSTART)
        TIMINGS["deployment up"] = time.monotonic() - started
        yield dep
    _write_timings()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser, ui: Deployment, tier: Tier, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A logged-in page; on failure its last state is saved as ``<test>-failed.png``. The API key must never
    reach the browser from the server: every API response the page reads is checked for it."""
    context = browser.new_context(viewport={"width": 1280, "height": 760})
    tab = context.new_page()
    leaks: list[str] = []

    def check_response(response: Any) -> None:
        if "/api/v2/" in response.url or "/ui/" in response.url:
            with contextlib.suppress(Exception):  # bodies of redirects and aborted requests are unreadable
                if tier.api_key in response.text():
                    leaks.append(f"{response.request.method} {response.url}")

    tab.on("response", check_response)
    failures_before = request.session.testsfailed
    try:
        log_in(tab, ui)
        yield tab
        in_page = tier.api_key in tab.content()  # a bare bool: pytest would print both operands of `in`
        assert not in_page, "the API key is in the page"
        assert not leaks, f"the API key came back from the server in: {leaks}"
    finally:
        if request.session.testsfailed > failures_before:  # the call phase failed (reported before teardown)
            with contextlib.suppress(Exception):
                tab.screenshot(path=ARTEFACTS / f"{request.node.name}-failed.png")
        context.close()


# --------------------------------------------------------------------------- helpers (shared with later tests)
def log_in(page: Page, dep: Deployment) -> None:
    """The simple auth manager's sign-in form, as a user fills it."""
    page.goto(f"{dep.api}/", wait_until="load")
    page.locator("input[name=username]").fill("ci")
    page.locator("input[name=password]").fill(dep.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"^(?!.*/auth/login)"), timeout=UI_TIMEOUT_MS)


def state_badge(page: Page, heading: str) -> Locator:
    """The header of a run or task instance page: its ``<h2>`` (run id / task id) and the state badge."""
    return page.locator(f"xpath=//h2[normalize-space()='{heading}']/..")


def open_task_instance(page: Page, dep: Deployment, dag_id: str, run_id: str, task_id: str,
                       map_index: int = -1, tab: str = "") -> Locator:
    """Open a task instance's page (its Logs; ``tab="details"``: the Details tab, which lists the extra links)
    and return its header (task id and state badge)."""
    url = f"{dep.api}/dags/{dag_id}/runs/{run_id}/tasks/{task_id}"
    if map_index >= 0:
        url += f"/mapped/{map_index}"
    if tab:
        url += f"/{tab}"
    page.goto(url, wait_until="load")
    header = state_badge(page, task_id)
    expect(header).to_be_visible(timeout=UI_TIMEOUT_MS)
    return header


def open_dag_run(page: Page, dep: Deployment, dag_id: str, run_id: str) -> Locator:
    """Open a DAG run's page (grid on the left, task instances on the right); returns its header."""
    page.goto(f"{dep.api}/dags/{dag_id}/runs/{run_id}", wait_until="load")
    header = state_badge(page, run_id)
    expect(header).to_be_visible(timeout=UI_TIMEOUT_MS)
    return header


def toast(page: Page, title: str) -> Locator:
    return page.locator("[data-scope=toast][data-part=root]").filter(has_text=title)


def absolute(dep: Deployment, href: str) -> str:
    """A link as the UI resolves it: relative links are on the api-server's own origin."""
    return href if href.startswith(("http://", "https://")) else f"{dep.api}{href}"


def shot(page: Page, name: str) -> Path:
    path = ARTEFACTS / f"{name}.png"
    page.screenshot(path=path)
    return path


def _write_timings() -> None:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    (ARTEFACTS / "timings.json").write_text(json.dumps({k: round(v, 1) for k, v in TIMINGS.items()}, indent=2))


# --------------------------------------------------------------------------- tests
def test_add_a_connection_in_the_form_and_test_it_from_the_list(page: Page, ui: Deployment, tier: Tier) -> None:
    started = time.monotonic()
    emulator = tier.emulators["fast"]
    tests_seen: list[tuple[int, str, str]] = []  # (status, request body, response body) of POST .../test

    def on_response(response: Any) -> None:
        if response.url.endswith("/api/v2/connections/test"):
            body = (response.request.post_data or "").replace(tier.api_key, "<api key>")
            tests_seen.append((response.status, body, response.text().replace(tier.api_key, "<api key>")))

    page.on("response", on_response)
    page.goto(f"{ui.api}/connections", wait_until="load")
    page.get_by_role("button", name="Add Connection").click()
    form = page.get_by_role("dialog")
    form.locator("input[name=connection_id]").fill(CONN_ID)
    form.get_by_role("combobox").fill("AI/ML")
    page.get_by_role("option", name="AI/ML API Magic Video").click()
    form.locator("input[name=host]").fill(emulator.base_url)
    form.locator("input[name=port]").fill(str(emulator.port))  # "API port": the list's Test action needs it
    form.locator("input[name=password]").fill(tier.api_key)
    form.get_by_role("button", name="Extra Fields", exact=True).click()
    form.locator("#switch\\:element_allow_insecure_video_urls").click()  # the emulator serves http:// URLs
    form.get_by_role("button", name="Save").click()
    expect(form).to_be_hidden(timeout=UI_TIMEOUT_MS)

    expect(page.get_by_role("row").filter(has_text=CONN_ID)).to_be_visible(timeout=UI_TIMEOUT_MS)
    page.reload(wait_until="load")  # the list as a later visit shows it (and without the "created" toast)
    row = page.get_by_role("row").filter(has_text=CONN_ID)
    expect(row).to_be_visible(timeout=UI_TIMEOUT_MS)
    before = emulator.stats()["total_posts"]
    row.get_by_role("button", name="Test Connection").click()
    result = toast(page, "Test Connection")
    expect(result).to_be_visible(timeout=UI_TIMEOUT_MS)
    result.hover()  # a hovered toast stays open
    expect(result).to_have_css("opacity", "1", timeout=UI_TIMEOUT_MS)  # fully faded in
    text = result.inner_text()
    shot(page, "connection-test-toast")
    in_toast = tier.api_key in text
    assert not in_toast, "the API key is in the toast"
    assert "Test Connection Successful" in text and "Connection OK" in text, (text, tests_seen)
    assert f"key accepted by {emulator.base_url}" in text and "credits" in text, text
    assert [status for status, _, _ in tests_seen] == [200], tests_seen
    sent = json.loads(tests_seen[0][1])
    assert sent["password"] == "***", "the UI sends the stored key's mask, not the key"
    assert sent["port"] == emulator.port
    assert emulator.stats()["total_posts"] == before  # the test spends no credits
    TIMINGS["connection form + Test"] = time.monotonic() - started


def test_quickstart_run_defers_then_succeeds_in_the_ui(page: Page, ui: Deployment, tier: Tier) -> None:
    started = time.monotonic()
    emulator = tier.emulators["fast"]
    if not any(c["connection_id"] == CONN_ID for c in ui.rest("GET", "/connections")["connections"]):
        # The form test failed: add the connection as the CLI would, so this test checks the run on its own.
        ui.airflow("connections", "add", CONN_ID, "--conn-type", "magicvideo", "--conn-host", emulator.base_url,
                   "--conn-password", tier.api_key, "--conn-extra", '{"allow_insecure_video_urls": true}')
    emulator.pause_clock()  # the render cannot finish until the UI has shown the wait task deferred
    try:
        run_id = ui.trigger(QUICKSTART, {"output_dir": str(ui.out)})
        wait = open_task_instance(page, ui, QUICKSTART, run_id, "wait")
        expect(wait).to_contain_text("Deferred", timeout=RUN_TIMEOUT_MS)
        shot(page, "wait-task-deferred")
        assert {t["task_id"]: t["state"] for t in ui.task_instances(QUICKSTART, run_id)}["wait"] == "deferred"
        deferred_links = ui.rest("GET", f"/dags/{QUICKSTART}/dagRuns/{run_id}/taskInstances/wait/links")
        assert deferred_links["extra_links"]["AI/ML API video"], deferred_links  # there while deferred, not null
    finally:
        emulator.resume_clock()
    run = open_dag_run(page, ui, QUICKSTART, run_id)
    expect(run).to_contain_text("Success", timeout=RUN_TIMEOUT_MS)
    for task_id in ("submit", "wait", "deliver", "where_is_it"):
        task_row = page.get_by_role("row").filter(has=page.get_by_role("link", name=task_id, exact=True))
        expect(task_row).to_contain_text("Success", timeout=UI_TIMEOUT_MS)
    shot(page, "dag-run-success")
    assert ui.run_state(QUICKSTART, run_id) == "success"
    video = ui.out / f"{run_id.replace(':', '-')}.mp4"
    assert video.is_file() and video.read_bytes()[4:8] == b"ftyp", f"no MP4 delivered at {video.name}"
    TIMINGS["quickstart run in the UI"] = time.monotonic() - started


def test_each_task_extra_link_opens_the_video(page: Page, ui: Deployment, tier: Tier) -> None:
    """Issue 19 item 3: on every task of a finished quickstart run, the "AI/ML API video" link the UI shows
    leads, with the browser's own login, to the MP4 bytes, and is refused without it; the file:// delivery
    shows no dead link. (The links module, tests/operators/test_extra_links.py, checks the values themselves.)"""
    started = time.monotonic()
    emulator = tier.emulators["fast"]
    if not any(c["connection_id"] == CONN_ID for c in ui.rest("GET", "/connections")["connections"]):
        ui.airflow("connections", "add", CONN_ID, "--conn-type", "magicvideo", "--conn-host", emulator.base_url,
                   "--conn-password", tier.api_key, "--conn-extra", '{"allow_insecure_video_urls": true}')
    run_id = ui.trigger(QUICKSTART, {"output_dir": str(ui.out)})
    assert ui.wait_run(QUICKSTART, run_id, timeout=RUN_TIMEOUT_MS / 1000) == "success"
    hrefs: dict[str, str] = {}
    for task_id in ("submit", "wait", "deliver"):
        open_task_instance(page, ui, QUICKSTART, run_id, task_id, tab="details")
        link = page.get_by_role("link", name="AI/ML API video")
        expect(link).to_be_visible(timeout=UI_TIMEOUT_MS)
        hrefs[task_id] = link.get_attribute("href") or ""
        if task_id == "deliver":
            shot(page, "deliver-task-extra-links")
            # a file:// destination has no page a browser could open: the link is hidden, not empty
            expect(page.get_by_role("link", name="Delivered video")).to_have_count(0)
        # the same request a click makes: the page's cookies, the redirect to a fresh presigned URL followed
        redirect = page.request.get(hrefs[task_id], max_redirects=0)
        assert redirect.status == 302, (task_id, redirect.status, redirect.text()[:200])
        key_in_location = tier.api_key in redirect.headers["location"]
        assert not key_in_location, "the API key is in the redirect"
        video = page.request.get(hrefs[task_id])
        assert video.ok and video.body()[4:8] == b"ftyp", (task_id, video.status, video.headers)
        # without the login: refused, and no presigned URL handed out
        refused = requests.get(absolute(ui, hrefs[task_id]), allow_redirects=False, timeout=30)
        assert refused.status_code == 401 and "location" not in refused.headers, (task_id, refused.status_code)
    assert all(f"/tasks/{task}/video" in href for task, href in hrefs.items()), hrefs
    log = (ui.logs / "api-server.log").read_text(errors="replace")
    assert tier.api_key not in log and "X-Amz-Signature" not in log, "the api-server logged a secret"
    TIMINGS["extra links in the UI"] = time.monotonic() - started


def test_campaign_gallery_plays_every_delivered_video(browser: Browser, ui: Deployment, tier: Tier) -> None:
    """Issue 19 item 6: the campaign DAG run in the deployment leaves ``index.html`` beside its videos; opened
    from disk (``file://``, as a colleague double-clicks it) every ``<video>`` loads its MP4's metadata and
    knows its duration, the page breaks no rule of its own Content-Security-Policy, and it holds no API key."""
    started = time.monotonic()
    emulator = tier.emulators["fast"]
    if not any(c["connection_id"] == CONN_ID for c in ui.rest("GET", "/connections")["connections"]):
        ui.airflow("connections", "add", CONN_ID, "--conn-type", "magicvideo", "--conn-host", emulator.base_url,
                   "--conn-password", tier.api_key, "--conn-extra", '{"allow_insecure_video_urls": true}')
    ui.wait_dag(CAMPAIGN)
    out = ui.out / "campaign"
    run_id = ui.trigger(CAMPAIGN, {"destination": str(out), "dest_conn_id": ""})

    def only_ours(_: Any) -> None:
        # Unpausing the @daily DAG makes the scheduler start today's run (to the default bucket); with
        # max_active_runs=1 ours would queue behind it, so it is ended as soon as it appears.
        for other in ui.rest("GET", f"/dags/{CAMPAIGN}/dagRuns")["dag_runs"]:
            if other["dag_run_id"] != run_id and other["state"] in ("queued", "running"):
                ui.rest("PATCH", f"/dags/{CAMPAIGN}/dagRuns/{other['dag_run_id']}", json={"state": "failed"})

    try:
        state = ui.wait_run(CAMPAIGN, run_id, timeout=RUN_TIMEOUT_MS / 1000, on_sample=only_ours)
    except TimeoutError:
        state = "not finished"
    if state != "success":
        tis = ui.task_instances(CAMPAIGN, run_id)
        logs = {(t["task_id"], t["map_index"]): ui.task_log(CAMPAIGN, run_id, t["task_id"], t["map_index"])[-3000:]
                for t in tis if t["state"] in ("failed", "up_for_retry")}
        pytest.fail(f"the campaign run ended {state}: {[(t['task_id'], t['map_index'], t['state']) for t in tis]}"
                    f"\n{logs}")
    [gallery] = out.glob("*/index.html")
    assert sorted(p.name for p in gallery.parent.glob("*.mp4")) == ["SKU-1001.mp4", "SKU-1002.mp4", "SKU-1003.mp4"]

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    problems: list[str] = []  # console errors: a CSP violation or a video the page could not load
    tab.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    tab.on("pageerror", lambda error: problems.append(str(error)))
    try:
        tab.goto(gallery.as_uri(), wait_until="load")
        expect(tab.locator("h1")).to_contain_text("campaign")
        expect(tab.locator("video")).to_have_count(3)
        tab.wait_for_function("() => [...document.querySelectorAll('video')].every(v => v.readyState >= 1)",
                              timeout=UI_TIMEOUT_MS)
        videos = tab.evaluate("() => [...document.querySelectorAll('video')].map(v => ({src: v.getAttribute('src'),"
                              " ready: v.readyState, duration: v.duration, error: v.error && v.error.code}))")
        assert [v["src"] for v in videos] == ["SKU-1001.mp4", "SKU-1002.mp4", "SKU-1003.mp4"], videos
        for video in videos:
            assert video["ready"] >= 1 and video["error"] is None, video
            assert math.isfinite(video["duration"]) and video["duration"] > 0, video
        # Only for the picture: metadata alone may leave a card black, so show each video's middle frame.
        tab.evaluate("() => Promise.all([...document.querySelectorAll('video')].map(v => new Promise(done => {"
                     " v.addEventListener('seeked', done, {once: true}); v.currentTime = v.duration / 2; })))")
        expect(tab.locator("header")).to_contain_text("3 videos delivered")
        picture = ARTEFACTS / "campaign-gallery.png"
        tab.screenshot(path=picture, full_page=True)
        in_page = tier.api_key in tab.content() or tier.api_key in gallery.read_text()
        assert not in_page, "the API key is in the gallery"
        assert not problems, problems
    finally:
        context.close()
    # The README's copy (docs/images/campaign-gallery.png) is replaced by hand from this one: a test run never
    # changes the checkout.
    _reduce(picture, ARTEFACTS / "campaign-gallery-small.png")
    TIMINGS["campaign gallery"] = time.monotonic() - started


def _reduce(picture: Path, target: Path) -> None:
    """The docs' copy of a screenshot: 960 px wide and 96 colours, as the other images in docs/images, to keep
    the repository small."""
    from PIL import Image

    with Image.open(picture) as image:
        small = image.convert("RGB").resize((960, round(image.height * 960 / image.width)), Image.Resampling.LANCZOS)
        small.quantize(colors=96).save(target, optimize=True)
