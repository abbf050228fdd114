"""The web page and the API docs in headless Chromium, as a first-time user meets them: offline,
by keyboard, on a phone, with bad files and a failing proxy. Screenshots go to
$GENADAPT_SCREENSHOTS (CI keeps them; .ci/run prints where) or to the test's temporary folder."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from PIL import Image

from serve_helpers import start, stop

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)"
)
KEY = "page-test-key"


@pytest.fixture(scope="module")
def service(model_path_module):
    url, proc = start(model_path_module, api_key=KEY)
    yield url
    stop(proc)


@pytest.fixture(scope="module")
def model_path_module(tmp_path_factory):
    from genadapt.checkpoint import save_checkpoint

    from serve_helpers import varied_checkpoint

    return save_checkpoint(varied_checkpoint(), tmp_path_factory.mktemp("page") / "model.pt")


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, service, request, tmp_path):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.goto(service + "/")
    yield page
    shot = screenshot_dir(tmp_path) / f"{request.node.name}.png"
    page.screenshot(path=str(shot), full_page=True)
    context.close()


def screenshot_dir(tmp_path: Path) -> Path:
    folder = os.environ.get("GENADAPT_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path
    path.mkdir(parents=True, exist_ok=True)
    return path


def image_file(folder: Path, name: str, size: tuple[int, int], seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    path = folder / name
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def upload(page, path: Path, key: str = KEY) -> None:
    page.fill("#key", key)
    page.set_input_files("#file", str(path))


def wait_result(page) -> None:
    page.wait_for_function(
        "!document.getElementById('result').hidden && "
        "document.getElementById('overlay').complete && "
        "document.getElementById('overlay').naturalWidth > 0",
        timeout=30000,
    )


def test_offline_docs_render_with_no_request_leaving_the_machine(browser, service, tmp_path):
    context = browser.new_context()
    page = context.new_page()
    hosts = set()
    page.on("request", lambda r: hosts.add(urlparse(r.url).hostname))
    page.goto(service + "/docs")
    page.wait_for_selector(".swagger-ui .info .title", timeout=30000)
    assert "genadapt segmentation service" in page.inner_text(".swagger-ui .info .title")
    page.screenshot(path=str(screenshot_dir(tmp_path) / "docs.png"))
    page.goto(service + "/redoc")
    page.wait_for_selector("h1", timeout=30000)
    assert "genadapt segmentation service" in page.inner_text("h1")
    page.screenshot(path=str(screenshot_dir(tmp_path) / "redoc.png"))
    context.close()
    assert hosts - {None} == {"127.0.0.1"}, hosts  # None: data: URLs, inside the page


def test_a_result_keeps_the_uploads_aspect_ratio_and_names_the_file(page, tmp_path):
    upload(page, image_file(tmp_path, "square.png", (200, 200)))
    wait_result(page)
    size = page.evaluate(
        "[document.getElementById('overlay').naturalWidth,"
        " document.getElementById('overlay').naturalHeight]"
    )
    assert size == [200, 200]  # the square upload, not the network's 2:1
    box = page.locator("#overlay").bounding_box()
    assert abs(box["width"] - box["height"]) < 2 and box["width"] > 300
    assert "square.png" in page.inner_text("#status")
    assert page.inner_text("#latency").startswith("Total ")
    assert "(model " in page.inner_text("#latency")
    assert "0.0%" not in page.inner_text("#legend")
    assert page.errors == []


def test_a_bad_file_after_a_good_one_leaves_no_stale_result(page, tmp_path):
    upload(page, image_file(tmp_path, "street.png", (120, 60)))
    wait_result(page)
    text = tmp_path / "notes.png"
    text.write_text("this is not an image")
    upload(page, text)
    page.wait_for_function("document.getElementById('status').className === 'error'")
    assert page.locator("#result").is_hidden()
    assert "notes.png" in page.inner_text("#status")
    assert "could not be read as an image" in page.inner_text("#status")


def test_a_truncated_file_is_explained_in_peoples_words_not_the_decoders(page, tmp_path):
    whole = tmp_path / "whole.jpg"
    Image.fromarray(np.full((60, 120, 3), 90, np.uint8)).save(whole, quality=90)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(whole.read_bytes()[:300])
    upload(page, cut)
    page.wait_for_function("document.getElementById('status').className === 'error'")
    message = page.inner_text("#status")
    assert "damaged or cut short" in message and "cut.jpg" in message
    assert "truncated" not in message and "bytes not processed" not in message


@pytest.mark.parametrize(
    ("status", "code", "words"),
    [(413, "too_many_pixels", "up to 20 MB and 40 megapixels"),
     (503, "busy", "busy or still starting"),
     (504, "timeout", "took too long to answer")],
)  # fmt: skip
def test_each_refusal_says_what_to_do(page, tmp_path, status, code, words):
    body = f'{{"error": {{"status": {status}, "code": "{code}", "message": "x"}}}}'
    page.route("**/v1/segment*", lambda route: route.fulfill(
        status=status, content_type="application/json", body=body))  # fmt: skip
    upload(page, image_file(tmp_path, "any.png", (64, 32)))
    page.wait_for_function("document.getElementById('status').className === 'error'")
    assert words in page.inner_text("#status")


def test_the_page_states_its_formats_and_the_services_own_limits(browser, model_path_module):
    url, proc = start(model_path_module, max_upload_bytes=5 * 2**20, max_pixels=12_000_000)
    try:
        context = browser.new_context()
        page = context.new_page()
        page.goto(url + "/")
        help_text = page.locator("#drop-help")
        assert help_text.is_visible()
        assert "TIFF or GIF, up to 5 MB and 12 megapixels" in help_text.inner_text()
        assert "{{" not in page.content()
        context.close()
    finally:
        stop(proc)


def test_the_api_key_placeholder_is_not_cut_off(page):
    fits = page.evaluate(
        "(() => { const input = document.getElementById('key');"
        "  const style = getComputedStyle(input);"
        "  const ctx = document.createElement('canvas').getContext('2d');"
        "  ctx.font = `${style.fontSize} ${style.fontFamily}`;"
        "  const room = input.clientWidth - parseFloat(style.paddingLeft)"
        "    - parseFloat(style.paddingRight);"
        "  return ctx.measureText(input.placeholder).width <= room; })()"
    )
    assert fits


def test_a_tiff_is_shown_from_the_services_decode_and_nothing_spills(page, tmp_path):
    path = tmp_path / "street.tif"
    Image.fromarray(np.full((100, 200, 3), (30, 160, 40), np.uint8)).save(path)
    upload(page, path)
    wait_result(page)
    page.wait_for_function("document.getElementById('original').naturalWidth > 0")
    assert page.evaluate("document.getElementById('original').src").startswith("data:image/jpeg")
    stack, over = page.locator("#stack").bounding_box(), page.locator("#overlay").bounding_box()
    original = page.locator("#original").bounding_box()
    assert abs(stack["width"] / stack["height"] - 2.0) < 0.05  # the photo's 2:1, not 22 px
    assert original["height"] > 100 and abs(original["height"] - stack["height"]) < 2
    assert over["y"] + over["height"] <= stack["y"] + stack["height"] + 1
    slider = page.locator("#opacity").bounding_box()
    assert slider["y"] >= stack["y"] + stack["height"]  # under the picture, not beneath it
    assert page.errors == []


def test_the_figures_name_is_its_caption_not_the_slider(page, tmp_path):
    upload(page, image_file(tmp_path, "named.png", (64, 32)))
    wait_result(page)
    page.fill("#opacity", "30")
    caption = page.evaluate("document.querySelector('figure figcaption').textContent")
    assert "30" not in caption and page.locator("figure input").count() == 0
    assert page.locator("#opacity").input_value() == "30"


def test_the_legend_states_the_cutoff_it_uses(page, tmp_path):
    overlay = Image.new("RGB", (8, 4))
    buffer = io.BytesIO()
    overlay.save(buffer, format="JPEG")
    body = json.dumps({
        "width": 8, "height": 4,
        "overlay_jpeg_base64": base64.b64encode(buffer.getvalue()).decode(),
        "timing_ms": {"decode": 1, "queue": 0, "inference": 2, "encode": 1, "total": 4},
        "classes": [
            {"id": 0, "name": "road", "color": [128, 64, 128], "fraction": 0.9994},
            {"id": 5, "name": "pole", "color": [153, 153, 153], "fraction": 0.0004},
            {"id": 6, "name": "traffic light", "color": [250, 170, 30], "fraction": 0.0002},
        ],
    })  # fmt: skip
    page.route("**/v1/segment*", lambda route: route.fulfill(
        status=200, content_type="application/json", body=body))  # fmt: skip
    upload(page, image_file(tmp_path, "rare.png", (8, 4)))
    wait_result(page)
    assert page.inner_text("#rare") == "2 more classes under 0.05% of the pixels."
    assert "pole" not in page.inner_text("#legend")


def test_picking_the_same_file_again_after_a_wrong_key_sends_it_again(page, tmp_path):
    photo = image_file(tmp_path, "again.png", (90, 60))
    upload(page, photo, key="wrong")
    page.wait_for_function("document.getElementById('status').className === 'error'")
    assert "API key field" in page.inner_text("#status")
    assert "X-API-Key" not in page.inner_text("#status")
    upload(page, photo, key=KEY)  # the very same file
    wait_result(page)
    assert page.locator("#status").get_attribute("class") == ""


def test_a_slow_request_shows_segmenting_and_disables_the_drop_zone(page, tmp_path):
    # A CPU model takes a second or two: hold every request back for one second in the page.
    page.evaluate(
        "const real = window.fetch;"
        "window.fetch = async (...args) => {"
        "  await new Promise((done) => setTimeout(done, 1000)); return real(...args); };"
    )
    upload(page, image_file(tmp_path, "slow.png", (64, 32)))
    page.wait_for_function("document.getElementById('drop').getAttribute('aria-busy') === 'true'")
    assert page.inner_text("#drop-text") == "Segmenting…"
    assert page.get_attribute("#drop", "aria-disabled") == "true"
    wait_result(page)
    assert page.get_attribute("#drop", "aria-busy") == "false"


def test_a_non_json_error_from_a_proxy_is_shown_not_thrown(page, tmp_path):
    page.route(
        "**/v1/segment*",
        lambda route: route.fulfill(status=502, content_type="text/html",
                                    body="<html><body>Bad Gateway</body></html>"),
    )  # fmt: skip
    upload(page, image_file(tmp_path, "proxied.png", (64, 32)))
    page.wait_for_function("document.getElementById('status').className === 'error'")
    message = page.inner_text("#status")
    assert "502" in message and "proxy" in message
    assert page.errors == []


def test_a_keyboard_user_can_upload(page, tmp_path):
    page.fill("#key", KEY)
    page.focus("#key")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "drop"
    # Enter opens the file picker: the drop zone clicks the file input, which is what opens it.
    # (Playwright's own file-chooser event stops firing once another test set files directly.)
    page.evaluate(
        "window.opened = 0;"
        "document.getElementById('file').addEventListener('click', () => window.opened++)"
    )
    page.keyboard.press("Enter")
    page.keyboard.press(" ")
    assert page.evaluate("window.opened") == 2
    page.set_input_files("#file", str(image_file(tmp_path, "keyboard.png", (80, 40))))
    wait_result(page)


def test_the_phone_layout_fits_the_screen(browser, service, tmp_path):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    page.goto(service + "/")
    upload(page, image_file(tmp_path, "phone.png", (160, 120)))
    wait_result(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing sideways
    assert page.locator("h1").bounding_box()["x"] >= 8  # text off the screen's edge
    heights = page.evaluate(
        "[...document.querySelectorAll('#legend li')]"
        ".map((li) => li.getBoundingClientRect().height)"
    )
    line = page.evaluate("parseFloat(getComputedStyle(document.body).lineHeight)")
    assert heights and max(heights) < 1.6 * line  # "62.3%" stays on its class's line
    page.screenshot(path=str(screenshot_dir(tmp_path) / "phone.png"), full_page=True)
    context.close()


def test_the_favicon_is_served(service):
    import httpx

    response = httpx.get(service + "/favicon.ico", timeout=5)
    assert response.status_code == 200 and response.headers["content-type"] == "image/svg+xml"
    assert b"<svg" in response.content[:200]
