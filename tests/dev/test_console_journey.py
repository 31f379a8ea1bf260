"""The dev console in a real browser: sign in → selfies → upload → train → generate → gallery.

Playwright drives Debian's Chromium (its own browser download cannot work here); `.ci/run`
installs Chromium when missing. Screenshots land in `.data/screenshots/`.
"""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dev.server import PROJECT_ROOT
from dev.stack import LocalStack, start_stack
from lib.settings import get_settings
from tests.helpers import jpeg

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = PROJECT_ROOT / ".data" / "screenshots"
# What `start_stack` simulates when unset; the suite's stack set them for its own simulators.
SIMULATED = (
    "REPLICATE_API_TOKEN",
    "REPLICATE_BASE_URL",
    "BLOB_READ_WRITE_TOKEN",
    "VERCEL_BLOB_API_URL",
    "AUTH_JWT_SECRET",
    "PUBLIC_BASE_URL",
)
WAIT_MS = 30_000


@pytest.fixture
def dev_stack(stack: LocalStack, tmp_path: Path) -> Iterator[LocalStack]:
    """A stack started as `make dev` starts it (trainings walk on their own), only faster."""
    saved = dict(os.environ)
    for name in SIMULATED:
        os.environ.pop(name, None)
    get_settings.cache_clear()
    local = start_stack(os.environ, data_dir=tmp_path, training_seconds=(0.5, 6.0))
    try:
        yield local
    finally:
        local.close()
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()


@pytest.fixture
def page() -> Iterator:
    """A page in headless Chromium."""
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM}: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 900, "height": 1000})
        finally:
            browser.close()


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def test_the_console_goes_from_selfies_to_a_gallery_of_generated_pictures(page, dev_stack):
    from playwright.sync_api import expect

    user = f"demo-{uuid.uuid4().hex[:8]}"
    page.goto(dev_stack.url + "/")
    page.fill("#user", user)
    page.click("#signin-button")
    expect(page.locator("#whoami")).to_have_text(f"signed in as {user}")

    page.click("#samples")
    expect(page.locator("#thumbs img")).to_have_count(5)
    page.click("#upload-button")
    expect(page.locator("#status")).to_have_text("5 selfies uploaded.")
    screenshot(page, "1-uploaded")

    page.click("#start-button")
    expect(page.locator("#status")).to_contain_text("training —", timeout=WAIT_MS)
    screenshot(page, "2-training")
    expect(page.locator("#status")).to_have_text("completed — 100%", timeout=WAIT_MS)
    expect(page.locator("#model")).to_contain_text("completed")
    screenshot(page, "3-trained")

    page.fill("#prompt", "a portrait in the mountains at golden hour")
    page.select_option("#num-outputs", "2")
    page.click("#generate-button")
    images = page.locator("#gallery img")
    expect(images).to_have_count(2, timeout=WAIT_MS)
    page.wait_for_function(
        "() => [...document.querySelectorAll('#gallery img')]"
        ".every((img) => img.complete && img.naturalWidth > 0)",
        timeout=WAIT_MS,
    )
    sources = [images.nth(i).get_attribute("src") for i in range(2)]
    screenshot(page, "4-gallery")

    assert all(src.startswith("/_dev/blob/users/") for src in sources), sources
    assert page.locator("#error").text_content() == ""
    expect(page.locator("#studio-status")).to_have_text("1 generation(s).")

    page.select_option("#pack", "studio-portrait")
    page.click("#pack-button")
    expect(page.locator("#pack-status")).to_contain_text("completed · 5/5", timeout=WAIT_MS)
    events = page.locator("#event-list dt")
    expect(events.filter(has_text="pack.completed")).to_have_count(1, timeout=WAIT_MS)
    expect(events.filter(has_text="training.completed")).to_have_count(1)
    expect(events.filter(has_text="generation.succeeded")).to_have_count(6)
    screenshot(page, "5-pack-and-events")


# Builds in the page what a drag from the desktop carries: a DataTransfer of image files.
DATA_TRANSFER = """(files) => {
    const transfer = new DataTransfer();
    for (const file of files) {
        const bytes = new Uint8Array(file.bytes);
        transfer.items.add(new File([bytes], file.name, { type: "image/jpeg" }));
    }
    return transfer;
}"""


@pytest.mark.parametrize("how", ["drop", "file input"])
def test_selfies_can_be_dropped_or_chosen(page, stack, how):
    from playwright.sync_api import expect

    page.goto(stack.url + "/")
    selfies = [(f"selfie{i}.jpg", jpeg(i)) for i in range(3)]

    if how == "file input":
        files = [{"name": name, "mimeType": "image/jpeg", "buffer": data} for name, data in selfies]
        page.set_input_files("#files", files)
    else:
        files = [{"name": name, "bytes": list(data)} for name, data in selfies]
        page.dispatch_event(
            "#drop", "drop", {"dataTransfer": page.evaluate_handle(DATA_TRANSFER, files)}
        )

    expect(page.locator("#thumbs img")).to_have_count(3)


def test_the_console_names_spoiled_photos_and_the_stranger_left_out(page, dev_stack):
    from playwright.sync_api import expect

    from tests import photos

    page.goto(dev_stack.url + "/")
    page.fill("#user", f"likeness-{uuid.uuid4().hex[:8]}")
    page.click("#signin-button")
    chosen = [(f"me{i}.jpg", jpeg(i)) for i in range(5)]
    chosen += [("blurred.jpg", photos.variant(jpeg(5), "blurred"))]
    chosen += [("biden.jpg", photos.package_photo("biden.jpg"))]
    files = [{"name": name, "mimeType": "image/jpeg", "buffer": data} for name, data in chosen]
    page.set_input_files("#files", files)
    page.click("#upload-button")
    expect(page.locator("#status")).to_contain_text(
        "Not usable: blurred.jpg (blurry: the face is not sharp enough to learn from)."
    )

    page.click("#start-button")
    expect(page.locator("#model")).to_contain_text(
        "biden.jpg (not the same person as the other photos)", timeout=WAIT_MS
    )
    expect(page.locator("#model")).to_contain_text("trainer version")
    screenshot(page, "5-likeness")
