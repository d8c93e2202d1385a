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


def test_login_upload_and_see_the_result(
    browser_page, live_server, user, start_worker, face_image_path, tmp_path
):
    worker = start_worker()
    page = browser_page
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "alice-password-1")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/upload/$"))
    assert "MB" in page.inner_text("#size-limit")

    page.set_input_files("input[type=file]", str(face_image_path))
    assert "face.jpg" in page.inner_text("#chosen-files")
    page.click("#upload-button")
    page.wait_for_url(re.compile(r".*/items/[0-9a-f-]{36}/$"), timeout=60_000)

    try:
        # The page polls the status endpoint and reloads itself when the job ends, either way.
        page.wait_for_selector("#verdict, #live-status.status-failed", timeout=300_000)
    finally:
        page.screenshot(path=str(tmp_path / "item.png"), full_page=True)
    item = Item.objects.get()
    assert item.status == Item.Status.DONE, f"{item.error}\n{worker.log[-3000:]}"
    assert page.inner_text(".verdict-label") in ("REAL", "FAKE")
    assert "% fake probability" in page.inner_text("#verdict")
    thumbnail = page.locator("img.face-thumb").first
    assert thumbnail.is_visible()
    assert thumbnail.evaluate("img => img.complete && img.naturalWidth > 0"), "thumbnail did not load"
    assert item.model_version in page.inner_text("#model-version")
    print(f"screenshot: {tmp_path / 'item.png'}")
