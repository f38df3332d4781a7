"""The slide on OpenSeadragon in a real browser: Deep Zoom tiles fetched with the session's token, zoom down to the
slide's own pixels, a scale bar that measures what it says, the heatmap as a layer whose opacity changes the
picture, the keys, contrast, and screenshots at four screen sizes. Skipped without the workspace bundle.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.pipelines.pathology.slides import tumour_layout
from tests.ui.conftest import LOW_CONTRAST, dev_headers, sign_in
from training.data.he_slide import write_slide

pytestmark = [pytest.mark.ui, pytest.mark.browser, pytest.mark.slow]

BUNDLE = Path(__file__).parents[2] / "cds" / "serving" / "ui" / "static" / "dist" / "slide.js"
WIDTH, HEIGHT, MPP = 3072, 2048, 0.5
MAX_LEVEL = 12  # ceil(log2(3072)): the Deep Zoom level of the slide's own pixels
READ_TIMEOUT_S = 180
SIZES = [(1280, 800), (1920, 1080), (1280, 1024), (1080, 1920)]
OSD = "document.getElementById('slide-viewer').osd"


@pytest.fixture(scope="module")
def job(server: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    if not BUNDLE.is_file():
        pytest.skip("the slide viewer needs the workspace bundle: run `make web`")
    folder = tmp_path_factory.mktemp("ui-osd-slide")
    slide = write_slide(folder / "osd-slide.tif", WIDTH, HEIGHT, seed=8, mpp=MPP, tile=256, factor=2,
                        layout=tumour_layout(WIDTH, HEIGHT))  # fmt: skip
    headers = dev_headers(server, "pathologist", subject="dev-pathologist")
    queued = httpx.post(f"{server}/v1/pathology/jobs", params={"filename": slide.path.name},
                        content=slide.path.read_bytes(), timeout=60,
                        headers=headers | {"Content-Type": "application/octet-stream"})  # fmt: skip
    queued.raise_for_status()
    location = f"{server}{queued.headers['Location']}"
    deadline = time.monotonic() + READ_TIMEOUT_S
    while time.monotonic() < deadline:
        if httpx.get(location, headers=headers, timeout=30).json()["state"] == "done":
            return str(queued.json()["job_id"])
        time.sleep(0.25)
    raise AssertionError("slide read not finished")


def _ratio(page: Any) -> float:
    """Screen pixels between two neighbouring slide pixels at the centre, as the viewer maps them now."""
    return float(page.evaluate(f"""() => {{ const v = {OSD}.viewport; const p = v.getCenter(true);
      const i = v.viewportToImageCoordinates(p);
      const a = v.imageToViewerElementCoordinates(i);
      const j = i.clone(); j.x += 1;
      const b = v.imageToViewerElementCoordinates(j);
      return b.x - a.x; }}"""))


def _settle(page: Any) -> None:
    page.wait_for_function(f"""() => {{ const v = {OSD}; if (!v || !v.world.getItemCount()) return false;
      const [now, target] = [v.viewport.getZoom(true), v.viewport.getZoom(false)];
      return Math.abs(now - target) <= 1e-6 * target && v.world.getItemAt(0).getFullyLoaded(); }}""",
                           timeout=60_000)  # fmt: skip
    page.wait_for_timeout(300)


def _viewer_pixels(page: Any) -> np.ndarray:
    shot = page.locator("#slide-viewer").screenshot()
    return np.asarray(Image.open(io.BytesIO(shot)).convert("RGB")).astype(np.int32)


def test_the_slide_viewer_zooms_to_native_pixels_with_a_true_scale_bar_and_a_heatmap_layer(
        page: Any, server: str, job: str, artifacts: Path) -> None:  # fmt: skip
    tiles: list[dict[str, str]] = []
    page.on("request", lambda request: tiles.append({"url": request.url, **request.headers})
            if "/tiles_files/" in request.url else None)  # fmt: skip
    sign_in(page, server, "pathologist")
    page.goto(f"{server}/ui/#/pathology/{job}")
    expect(page.locator("#slide-call")).to_have_text("Tumour suspected", timeout=60_000)
    expect(page.locator("#bundle-missing")).to_have_count(0)
    page.wait_for_function(f"() => !!{OSD}", timeout=30_000)
    _settle(page)
    assert tiles and all(t["authorization"].startswith("Bearer ") for t in tiles)  # every tile with the token
    unauthenticated = httpx.get(tiles[0]["url"], timeout=30)
    assert unauthenticated.status_code == 401
    expect(page.locator("#slide-heat")).to_have_attribute("data-loaded", "true")
    home = _ratio(page)
    assert home < 1  # the whole slide fits: coarser than native
    assert page.evaluate(LOW_CONTRAST) == []
    page.screenshot(path=artifacts / "60-slide-osd-home.png")

    page.locator("#slide-native").click()  # 1:1
    _settle(page)
    assert abs(_ratio(page) - 1) < 0.02
    page.evaluate(f"() => {{ const v = {OSD}.viewport; v.zoomTo(v.getMaxZoom(), null, true); }}")
    _settle(page)
    deepest = _ratio(page)
    assert deepest >= 1, deepest  # at the deepest zoom one slide pixel covers at least one screen pixel
    assert any(f"/tiles_files/{MAX_LEVEL}/" in t["url"] for t in tiles)  # the slide's own pixels were fetched

    scale = page.locator("#slide-scalebar")
    microns, px = float(scale.get_attribute("data-microns")), float(scale.get_attribute("data-px"))
    assert abs(px * MPP / deepest - microns) / microns < 0.01  # the bar's screen length × µm per screen pixel
    bar = page.locator("#slide-scalebar .scalebar-line").bounding_box()
    assert abs(bar["width"] - px) <= 1.0
    label = scale.locator(".scalebar-text").inner_text()
    assert label.endswith(("µm", "mm")) and float(label.split()[0]) * (1000 if label.endswith("mm") else 1) == microns

    page.locator("#slide-home").click()
    _settle(page)
    opacity = page.get_by_label("Heatmap opacity")
    opacity.fill("0")
    page.wait_for_timeout(200)
    without = _viewer_pixels(page)
    opacity.fill("100")
    expect(page.locator("#heat-opacity-value")).to_have_text("100 %")
    page.wait_for_timeout(200)
    full = _viewer_pixels(page)
    assert np.abs(full - without).mean() > 5  # the heatmap layer changes what is on screen
    page.screenshot(path=artifacts / "61-slide-osd-heat-100.png")
    opacity.fill("45")

    page.locator("#slide-viewer .openseadragon-canvas").focus()
    page.keyboard.down("+")  # OpenSeadragon zooms while the key is held
    page.wait_for_timeout(500)
    page.keyboard.up("+")
    _settle(page)
    assert _ratio(page) > home * 1.2
    before = page.evaluate(f"() => {OSD}.viewport.getCenter(true).x")
    page.keyboard.press("ArrowRight")
    _settle(page)
    assert page.evaluate(f"() => {OSD}.viewport.getCenter(true).x") > before
    page.keyboard.press("0")
    _settle(page)
    assert abs(_ratio(page) - home) / home < 0.02
    page.keyboard.press("-")
    _settle(page)

    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        page.locator("#slide-native").click()
        _settle(page)
        assert abs(_ratio(page) - 1) < 0.02
        assert page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth") <= 0
        assert page.evaluate(LOW_CONTRAST) == []
        page.screenshot(path=artifacts / f"62-slide-osd-{width}x{height}.png")
    page.set_viewport_size({"width": 1280, "height": 800})
