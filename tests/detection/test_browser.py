"""The site in headless Chromium, at a desktop width and at a phone's 390 px: every test runs at both.

One real journey (log in, upload a face photo, a real worker analyses it, see the verdict) and the page
behaviour that only a browser shows: the upload selection, self-updating history, a deleted item, layout
widths, the chart seeking the video, error pages, and no console errors (so nothing breaks the CSP).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from django.test import Client
from playwright.sync_api import expect

from detection.models import Item

from .conftest import write_video

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


@pytest.fixture(scope="module")
def chromium():
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (scripts/test installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread for the whole module; the ORM calls
    # the tests (and the database teardown) make between browser steps are still plain synchronous code.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(params=list(VIEWPORTS))
def viewport(request) -> dict:
    return VIEWPORTS[request.param]


@pytest.fixture
def browser_page(chromium, viewport):
    context = chromium.new_context(viewport=viewport)
    page = context.new_page()
    page.console_errors = []
    page.on("console", lambda message: message.type == "error" and page.console_errors.append(message.text))
    page.on("pageerror", lambda error: page.console_errors.append(str(error)))
    yield page
    context.close()


def sign_in(page, live_server, user) -> None:
    """Give the browser a session for `user` without going through the form (log_in does that)."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies["sessionid"]
    page.context.add_cookies([{"name": "sessionid", "value": cookie.value, "url": live_server.url}])


def wait_for_js(page, predicate: str, timeout: float = 15) -> None:
    """Poll a JS function until it returns true (page.wait_for_function evaluates strings, which the CSP
    forbids, as it should)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(predicate):
        assert time.monotonic() < deadline, f"not true within {timeout}s: {predicate}"
        page.wait_for_timeout(200)


def page_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def log_in(page, live_server, username: str, password: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")


def upload_and_wait(page, path, screenshot) -> None:
    """Upload one file from the upload page and wait on its item page until the job has ended."""
    page.set_input_files("input[type=file]", str(path))
    assert path.name in page.inner_text("#chosen-files")
    page.click("#upload-button")
    page.wait_for_url(re.compile(r".*/items/[0-9a-f-]{36}/$"), timeout=60_000)
    try:
        # The page polls the status endpoint and reloads itself when the job ends, either way.
        page.wait_for_selector("#verdict, #live-status.status-failed", timeout=300_000)
    finally:
        page.screenshot(path=str(screenshot), full_page=True)


def test_login_upload_and_see_the_result(
    browser_page, live_server, user, start_worker, face_image_path, tmp_path, viewport
):
    worker = start_worker()
    page = browser_page
    log_in(page, live_server, "alice", "alice-password-1")
    page.wait_for_url(re.compile(r".*/upload/$"))
    assert "MB" in page.inner_text("#size-limit")

    upload_and_wait(page, face_image_path, tmp_path / "item.png")
    item = Item.objects.get()
    assert item.status == Item.Status.DONE, f"{item.error}\n{worker.log[-3000:]}"
    assert page.inner_text(".verdict-label") in ("REAL", "FAKE")
    thumbnail = page.locator("img.face-thumb").first
    assert thumbnail.is_visible()
    assert thumbnail.evaluate("img => img.complete && img.naturalWidth > 0"), "thumbnail did not load"
    assert item.model_version in page.inner_text("#model-version")
    assert page_width(page) <= viewport["width"]
    assert not page.console_errors, page.console_errors
    print(f"screenshot: {tmp_path / 'item.png'}")


def test_an_uncertain_photo_says_why(
    browser_page, live_server, user, start_worker, face_image_path, tmp_path
):
    """A photo whose face is ~35 px across: the model's score is a guess, and the page must say so."""
    from PIL import Image

    photo = Image.open(face_image_path)
    tiny = tmp_path / "tiny-face.jpg"
    photo.resize((photo.width * 35 // 100, photo.height * 35 // 100), Image.Resampling.LANCZOS).save(tiny)
    worker = start_worker()
    page = browser_page
    log_in(page, live_server, "alice", "alice-password-1")
    page.wait_for_url(re.compile(r".*/upload/$"))
    upload_and_wait(page, tiny, tmp_path / "uncertain.png")
    item = Item.objects.get()
    assert item.status == Item.Status.DONE, f"{item.error}\n{worker.log[-3000:]}"
    assert page.inner_text("#verdict .verdict-label") == "UNCERTAIN"
    assert "The model cannot tell" in page.inner_text("#verdict-meaning")
    reasons = page.locator("#uncertain-reasons li[data-code=face_too_small]")
    assert reasons.is_visible() and "pixels across" in reasons.inner_text()
    assert page.locator(".scale-marker").is_visible()
    page.click("#known-limits summary")  # what the deciding model's card says it misses
    assert item.known_limits and item.known_limits[0]["what"] in page.inner_text("#known-limits")
    # history says so too
    page.goto(f"{live_server.url}/items/")
    assert page.inner_text(".verdict-pill") == "UNCERTAIN"
    print(f"screenshot: {tmp_path / 'uncertain.png'}")


def test_review_queue_columns_fit_at_1400_px(chromium, live_server, django_user_model, make_item, tmp_path):
    """The admin's queue, with faces, reasons and long names, is not clipped at 1,400 px."""
    django_user_model.objects.create_superuser("boss", "boss@example.com", "boss-password-1")
    reasons = [{"code": "face_too_small", "text": "t"}, {"code": "out_of_distribution", "text": "t"}]
    for n in range(3):
        make_item(
            name=f"a-rather-long-file-name-from-a-phone-camera-{n:04d}-IMG_20261129_183000.jpg",
            status=Item.Status.DONE,
            verdict="uncertain",
            fake_probability=0.5,
            uncertain_reasons=reasons,
            faces=6,
        )
    # A width of its own, not the desktop/phone pair: the admin is a desktop tool.
    page = chromium.new_context(viewport={"width": 1400, "height": 900}).new_page()
    log_in(page, live_server, "boss", "boss-password-1")
    page.goto(f"{live_server.url}/admin/detection/flaggeditem/")
    table = page.locator("#result_list")
    assert table.is_visible()
    page.screenshot(path=str(tmp_path / "queue-1400.png"), full_page=True)
    # Django's admin puts the table in a horizontally scrolling box: what does not fit is hidden there.
    hidden = page.evaluate(
        "() => { const r = document.querySelector('.results'); return r.scrollWidth - r.clientWidth; }"
    )
    assert hidden <= 0, f"{hidden} px of the queue's columns are hidden at 1,400 px"
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 1400
    print(f"screenshot: {tmp_path / 'queue-1400.png'}")


def test_an_empty_file_is_set_aside_and_the_rest_of_the_batch_is_sent(
    browser_page, live_server, user, redis_broker, tmp_path, image_bytes
):
    page = browser_page
    sign_in(page, live_server, user)
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    good, other = tmp_path / "good.png", tmp_path / "other.png"
    good.write_bytes(image_bytes("PNG", (64, 48), (200, 10, 10)))
    other.write_bytes(image_bytes("PNG", (64, 48), (10, 200, 10)))
    page.goto(f"{live_server.url}/upload/")

    page.set_input_files("input[type=file]", [str(empty), str(good)])
    page.set_input_files("input[type=file]", str(other))  # a second choice adds to the selection
    chosen = page.locator("#chosen-files li")
    assert chosen.count() == 3 and "empty" in chosen.nth(0).inner_text()
    page.click("#chosen-files li:has-text('other.png') button.remove-file")
    assert chosen.count() == 2

    page.click("#upload-button")
    page.wait_for_url(re.compile(r".*/items/[0-9a-f-]{36}/$"), timeout=30_000)
    assert list(Item.objects.values_list("original_name", flat=True)) == ["good.png"]


def test_dropping_files_adds_to_the_selection(browser_page, live_server, user):
    page = browser_page
    sign_in(page, live_server, user)
    page.goto(f"{live_server.url}/upload/")

    def drop(name: str) -> None:
        transfer = page.evaluate_handle(
            """name => { const dt = new DataTransfer();
                dt.items.add(new File([new Uint8Array([1, 2, 3])], name, { type: "image/png" }));
                return dt; }""",
            name,
        )
        page.dispatch_event("#drop-zone", "drop", {"dataTransfer": transfer})

    drop("first.png")
    drop("second.png")
    text = page.inner_text("#chosen-files")
    assert "first.png" in text and "second.png" in text


def test_history_rows_update_themselves_and_fit_the_screen(
    browser_page, live_server, user, make_item, viewport, tmp_path
):
    page = browser_page
    sign_in(page, live_server, user)
    long_name = "a" * 180 + ".png"
    for i in range(12):
        make_item(name=f"done-{i}.png", status=Item.Status.DONE, verdict="real", fake_probability=0.1)
    queued = make_item(name=long_name)
    page.goto(f"{live_server.url}/items/")
    row = page.locator(f'tr[data-id="{queued.pk}"]')
    assert row.locator(".status-pill").inner_text() == "Queued"
    assert page_width(page) <= viewport["width"], "the history table widens the page"
    assert page.evaluate("document.querySelector('table.history').scrollWidth") <= page.evaluate(
        "document.querySelector('.table-wrap').clientWidth"
    ), "the table needs sideways scrolling"

    Item.objects.filter(pk=queued.pk).update(
        status=Item.Status.DONE, verdict=Item.Verdict.FAKE, fake_probability=0.93
    )
    expect(row.locator(".status-pill")).to_have_text("Done", timeout=15_000)
    assert row.locator(".verdict-pill").inner_text() == "FAKE"
    assert "93" in row.locator(".col-fake").inner_text()
    page.screenshot(path=str(tmp_path / "history.png"), full_page=True)

    page.goto(f"{live_server.url}/items/?q=zzz-no-such-name")
    assert "No uploads match these filters" in page.inner_text("main")
    assert not page.console_errors, page.console_errors


def test_an_item_deleted_while_running_says_so(browser_page, live_server, user, make_item):
    page = browser_page
    sign_in(page, live_server, user)
    item = make_item(status=Item.Status.RUNNING, stage="detecting faces", progress=7)
    page.goto(f"{live_server.url}{item.get_absolute_url()}")
    assert "finding faces" in page.inner_text("#stage-text")
    item.delete()
    page.wait_for_selector("#deleted-notice", state="visible", timeout=15_000)
    assert page.locator("#live-status").is_hidden()


def test_a_result_in_a_background_tab_changes_the_title(browser_page, live_server, user, make_item):
    page = browser_page
    sign_in(page, live_server, user)
    page.add_init_script("Object.defineProperty(document, 'hidden', { get: () => true });")
    item = make_item(name="waiting.png", status=Item.Status.RUNNING, progress=50)
    page.goto(f"{live_server.url}{item.get_absolute_url()}")
    Item.objects.filter(pk=item.pk).update(status=Item.Status.DONE, verdict="real", fake_probability=0.1)
    expect(page).to_have_title(re.compile(r"^● Ready"), timeout=15_000)
    assert "waiting.png" in page.title()


@pytest.fixture
def video_item(make_item, tmp_path):
    """A finished video item with a per-frame timeline and a WebM original Chromium can play and seek."""
    frame = np.zeros((120, 160, 3), np.uint8)
    frame[:, :80] = (200, 30, 30)
    path = write_video(tmp_path / "clip.webm", frame, frames=60, fps=10.0, fourcc="VP80")
    timeline = [{"frame": i * 5, "time": i * 0.5, "fake_probability": 0.1 + 0.07 * i} for i in range(12)]
    return make_item(
        name="clip.webm",
        kind="video",
        content=Path(path).read_bytes(),
        status=Item.Status.DONE,
        verdict="fake",
        fake_probability=0.87,
        duration=6.0,
        result={"timeline": timeline, "threshold": 0.5},
    )


def test_chart_is_readable_and_clicking_a_point_seeks_the_video(
    browser_page, live_server, user, video_item, tmp_path
):
    page = browser_page
    sign_in(page, live_server, user)
    page.goto(f"{live_server.url}{video_item.get_absolute_url()}")
    chart = page.locator("#timeline-chart svg")
    svg_box = chart.bounding_box()
    labels = page.locator("#timeline-chart text.axis")
    for i in range(labels.count()):
        box = labels.nth(i).bounding_box()
        assert box["height"] >= 10, "axis labels too small to read"
        assert box["x"] >= svg_box["x"] - 1 and box["x"] + box["width"] <= svg_box["x"] + svg_box["width"] + 1
    assert page.locator("#timeline-chart text.axis-title").count() == 2

    page.locator('#timeline-chart circle[data-time="4.000"]').click()
    # Seeking needs the server to answer byte ranges; without them Chromium snaps back to the start.
    wait_for_js(
        page,
        "() => { const v = document.getElementById('original-video');"
        " return v.readyState >= 1 && Math.abs(v.currentTime - 4) < 0.3 && v.seekable.length > 0; }",
    )
    page.screenshot(path=str(tmp_path / "chart.png"), full_page=True)
    assert page_width(page) <= page.viewport_size["width"]
    assert not page.console_errors, page.console_errors


def test_error_pages_and_logout_by_link_are_pages_of_the_site(browser_page, live_server, user):
    page = browser_page
    sign_in(page, live_server, user)
    response = page.goto(f"{live_server.url}/items/00000000-0000-0000-0000-000000000000/")
    assert response.status == 404 and "Page not found" in page.inner_text("main")
    assert page.locator("header.topbar a[href='/items/']").count() == 1
    page.console_errors.clear()  # Chromium logs the 404 of the document itself
    response = page.goto(f"{live_server.url}/accounts/logout/")
    assert response.status == 200 and "Log out?" in page.inner_text("main")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    assert "What it does not do" in page.inner_text("main")
    for link in ("How it works", "Limits", "Privacy", "Terms"):
        assert page.locator("footer").get_by_role("link", name=link).count() == 1
    assert page.evaluate("document.querySelector('link[rel=icon]') !== null")
    assert not page.console_errors, page.console_errors


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_api_docs_work_under_the_content_security_policy(browser_page, live_server, user, path):
    page = browser_page
    sign_in(page, live_server, user)
    page.goto(f"{live_server.url}{path}")
    page.wait_for_selector(".swagger-ui .info, .api-info, [class*=api-info]", timeout=20_000)
    # Redoc asks for Google fonts and a CDN logo: blocking those is the policy working (no third-party
    # origin); anything else the policy blocks (its own scripts, styles, worker) would break the page.
    blocked = [e for e in page.console_errors if "Content Security Policy" in e and "'https://" not in e]
    assert not blocked, blocked
