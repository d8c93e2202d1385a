"""One real user journey in headless Chromium: log in, upload a face photo, see the verdict and face."""

import os
import re
import shutil

import pytest

from detection.models import Item

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def browser_page(monkeypatch):
    # Playwright's sync API keeps an event loop running in this thread; the ORM calls this test makes
    # between browser steps are still plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (scripts/test installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1200, "height": 1000})
        yield page
        browser.close()


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
    browser_page, live_server, user, start_worker, face_image_path, tmp_path
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
    assert "% fake probability" in page.inner_text("#verdict")
    thumbnail = page.locator("img.face-thumb").first
    assert thumbnail.is_visible()
    assert thumbnail.evaluate("img => img.complete && img.naturalWidth > 0"), "thumbnail did not load"
    assert item.model_version in page.inner_text("#model-version")
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


def test_review_queue_columns_fit_at_1400_px(
    browser_page, live_server, django_user_model, make_item, tmp_path
):
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
    page = browser_page
    page.set_viewport_size({"width": 1400, "height": 900})
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
