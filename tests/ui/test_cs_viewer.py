"""The study viewer on Cornerstone3D, measured from the pixels it puts on screen, at four screen sizes.

A generated 1024 x 1024 chest film (0.7 mm pixels) carries a white frame around its edge and a white 64 x 64 square
at its centre. With the window narrowed so that only those are white, a screenshot of the viewport shows where the
film and the square are: the film must be square on every screen (no stretching), "actual pixels" must give at
least one screen pixel per image pixel, panning must move the square by the drag, a length drawn across the
square must read 64 x 0.7 = 44.8 mm, and dragging window/level must change the pixels. Without the workspace
bundle the viewer says how to build it and shows the server-rendered picture. Screenshots go to
``$CDS_UI_ARTIFACTS`` (cs-*.png).
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import expect

from cds.serving.ui import STATIC
from tests.ui.conftest import LOW_CONTRAST, sign_in, sized_page, store_and_preread
from training.data.chest_xray import render
from training.data.dicom_files import write_radiograph

pytestmark = [pytest.mark.ui, pytest.mark.browser, pytest.mark.slow]

SIDE, FRAME, SQUARE, SPACING_MM = 1024, 8, 64, 0.7
SIZES = [(1280, 800), (1920, 1080), (1280, 1024), (1080, 1920)]
ANY = re.compile(r".+")
needs_bundle = pytest.mark.skipif(not (STATIC / "dist" / "cornerstone.js").is_file(),
                                  reason="the workspace bundle is missing: make web (make test builds it)")


@pytest.fixture(scope="module")
def framed_study(server: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The framed film stored and pre-read."""
    pixels = render(SIDE, 7, 0, findings={"Cardiomegaly"})[0].astype(np.float32) * 0.9  # nothing else reaches white
    pixels[:FRAME, :] = pixels[-FRAME:, :] = pixels[:, :FRAME] = pixels[:, -FRAME:] = 1.0
    centre = slice(SIDE // 2 - SQUARE // 2, SIDE // 2 + SQUARE // 2)
    pixels[centre, centre] = 1.0
    path = write_radiograph(tmp_path_factory.mktemp("ui-cs") / "framed.dcm", pixels, patient_id="SYNTH-FRAME",
                            pixel_spacing_mm=SPACING_MM)
    status = store_and_preread(server, [path])
    (outcome,) = status["result"]["outcomes"]
    return {"job_id": status["id"], "uid": outcome["uid"]}


@pytest.fixture(scope="module")
def landscape_study(server: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A framed 1024 x 768 film (wider than tall) stored and pre-read."""
    pixels = render(SIDE, 8, 0)[0][128:896].astype(np.float32) * 0.9
    pixels[:FRAME, :] = pixels[-FRAME:, :] = pixels[:, :FRAME] = pixels[:, -FRAME:] = 1.0
    path = write_radiograph(tmp_path_factory.mktemp("ui-cs") / "wide.dcm", pixels, patient_id="SYNTH-WIDE")
    status = store_and_preread(server, [path])
    (outcome,) = status["result"]["outcomes"]
    return {"job_id": status["id"], "uid": outcome["uid"]}


def _white(page: Any) -> tuple[np.ndarray, dict[str, float]]:
    """The viewport's white pixels (all channels above 200) and where the viewport is on the page."""
    from PIL import Image

    viewport = page.locator("#image")
    box = viewport.bounding_box()
    shot = np.asarray(Image.open(io.BytesIO(viewport.screenshot())).convert("RGB"))
    return shot.min(axis=2) > 200, box


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the true pixels, inclusive."""
    rows, cols = np.nonzero(mask)
    assert rows.size, "nothing white on screen"
    return int(cols.min()), int(rows.min()), int(cols.max()), int(rows.max())


def _square(mask: np.ndarray) -> tuple[int, int, int, int]:
    """The centre square's bbox: the white blob around the viewport's middle (the frame is far from it)."""
    height, width = mask.shape
    labels = np.zeros_like(mask)
    cy, cx = height // 2, width // 2
    reach = min(height, width) // 3
    labels[cy - reach:cy + reach, cx - reach:cx + reach] = mask[cy - reach:cy + reach, cx - reach:cx + reach]
    return _bbox(labels)


def _open(page: Any, server: str, study: dict[str, str]) -> None:
    page.goto(f"{server}/ui/#/viewer/{study['job_id']}/{study['uid']}")
    expect(page.locator("#image")).to_have_attribute("data-window", ANY, timeout=60_000)
    expect(page.locator("#heatmap")).to_have_attribute("data-label", ANY)


def _only_white(page: Any) -> None:
    """Window 2 at level 4094: only the stored maximum (the frame and the square) is white."""
    page.get_by_role("checkbox", name="Show AI heatmap").uncheck()
    for name, value in (("Window width value", "2"), ("Window level value", "4094")):
        page.get_by_role("spinbutton", name=name).fill(value)
        page.get_by_role("spinbutton", name=name).press("Enter")
    expect(page.locator("#image")).to_have_attribute("data-window", "2")
    expect(page.locator("#image")).to_have_attribute("data-level", "4094")
    page.locator("#stage").focus()  # shortcuts act when no text field has the focus


@needs_bundle
@pytest.mark.parametrize(("width", "height"), SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_geometry_zoom_pan_length_and_window(browser: Any, server: str, framed_study: dict[str, str],
                                             artifacts: Path, width: int, height: int) -> None:
    context, page, errors = sized_page(browser, width, height)
    try:
        sign_in(page, server)
        _open(page, server, framed_study)
        tag = f"{width}x{height}"
        page.screenshot(path=artifacts / f"cs-{tag}-1-opened.png")
        assert page.evaluate(LOW_CONTRAST) == []

        # Square film, square on screen: the frame's bounding box in the viewport's own pixels.
        _only_white(page)
        white, _ = _white(page)
        left, top, right, bottom = _bbox(white)
        film_w, film_h = right - left + 1, bottom - top + 1
        assert abs(film_w - film_h) <= max(2, 0.01 * film_w), (film_w, film_h)
        fit_scale = film_w / SIDE

        # Actual pixels: the 64-pixel square spans at least 64 screen pixels; zooming in goes further.
        page.keyboard.press("1")
        expect(page.locator("#image")).to_have_attribute("data-zoom", re.compile(r"^(1\.0\d\d|0\.99\d)$"))
        sq = _square(_white(page)[0])
        side = sq[2] - sq[0] + 1
        assert side >= SQUARE - 1 and abs((sq[3] - sq[1] + 1) - side) <= 2, (sq, fit_scale)
        page.keyboard.press("+")
        sq_zoomed = _square(_white(page)[0])
        assert sq_zoomed[2] - sq_zoomed[0] + 1 > side * 1.15
        page.keyboard.press("1")
        page.screenshot(path=artifacts / f"cs-{tag}-2-actual-pixels.png")

        # Pan: the square follows a drag of the left button with the pan tool.
        white, box = _white(page)
        before = _square(white)
        page.keyboard.press("p")
        expect(page.locator("#tool-pan")).to_have_attribute("aria-pressed", "true")
        x0, y0 = box["x"] + box["width"] / 2 + 120, box["y"] + box["height"] / 2 + 90
        page.mouse.move(x0, y0)
        page.mouse.down()
        page.mouse.move(x0 + 30, y0 + 20, steps=5)
        page.mouse.move(x0 + 60, y0 + 40, steps=5)
        page.mouse.up()
        white, box = _white(page)
        mask = np.zeros_like(white)
        mask[before[1] + 20:before[3] + 60, before[0] + 40:before[2] + 80] = True
        after = _bbox(white & mask)
        assert abs(after[0] - before[0] - 60) <= 2 and abs(after[1] - before[1] - 40) <= 2, (before, after)

        # Length across the square (its left edge to its right edge) reads 64 x 0.7 mm.
        page.keyboard.press("l")
        row = box["y"] + (after[1] + after[3]) / 2
        page.mouse.move(box["x"] + after[0], row)
        page.mouse.down()
        page.mouse.move(box["x"] + (after[0] + after[2] + 1) / 2, row, steps=5)
        page.mouse.move(box["x"] + after[2] + 1, row, steps=5)
        page.mouse.up()
        measured = page.locator('#measurements li[data-kind="Length"]')
        expect(measured).to_have_count(1)
        expect(measured).to_contain_text("mm")
        expected = SQUARE * SPACING_MM
        settled = f"() => Math.abs(Number(document.querySelector('#measurements li')?.dataset.value) - {expected}) <= 1.5"
        try:  # the value is recomputed as the line is drawn: wait for the drawn line's
            page.wait_for_function(settled, timeout=5_000)
        except Exception as error:
            raise AssertionError((measured.get_attribute("data-value"), measured.get_attribute("data-points"),
                                  after, page.locator("#image").get_attribute("data-zoom"))) from error
        page.screenshot(path=artifacts / f"cs-{tag}-3-length.png")

        # Drag window/level: the film's own window back, then a drag changes it and the pixels.
        page.keyboard.press("c")
        page.keyboard.press("f")
        page.get_by_role("button", name="Reset window").click()
        expect(page.locator("#image")).to_have_attribute("data-window", "4096")
        page.keyboard.press("w")
        shot = np.asarray(_grey(page.locator("#image").screenshot()), dtype=np.float32)
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] / 2 - 60, box["y"] + box["height"] / 2 + 80, steps=8)
        page.mouse.up()
        expect(page.locator("#image")).not_to_have_attribute("data-window", "4096")
        changed = np.asarray(_grey(page.locator("#image").screenshot()), dtype=np.float32)
        assert float(np.abs(changed - shot).mean()) > 5, "window/level drag left the pixels as they were"
        expect(page.locator("#image-caption")).to_contain_text("Window ")
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        expect(page.locator("#readout")).to_contain_text("value")
        assert page.evaluate(LOW_CONTRAST) == []
        page.screenshot(path=artifacts / f"cs-{tag}-4-window-level.png")
        timings = page.evaluate("() => window.cdsViewerTimings")
        assert timings["firstImage"] is not None and timings["windowLevel"]
    finally:
        context.close()
    assert errors == [], f"errors in the page: {errors}"


def _grey(png: bytes) -> Any:
    from PIL import Image

    return Image.open(io.BytesIO(png)).convert("L")


def test_without_the_bundle_the_viewer_says_how_to_build_it(page: Any, server: str, framed_study: dict[str, str],
                                                            artifacts: Path) -> None:
    page.route("**/ui/dist/**", lambda route: route.fulfill(status=404, body="not built"))
    sign_in(page, server)
    page.goto(f"{server}/ui/#/viewer/{framed_study['job_id']}/{framed_study['uid']}")
    expect(page.locator("#bundle-missing")).to_contain_text("make web")
    expect(page.locator("img#image")).to_have_attribute("data-window", ANY)  # the server-rendered picture
    box = page.locator("img#image").bounding_box()
    assert abs(box["width"] - box["height"]) <= 2, box  # square there too
    assert page.evaluate(LOW_CONTRAST) == []
    page.screenshot(path=artifacts / "cs-no-bundle.png")


@needs_bundle
@pytest.mark.parametrize(("width", "height"), [(1280, 800), (1080, 1920)], ids=["1280x800", "1080x1920"])
def test_a_wide_film_keeps_its_aspect(browser: Any, server: str, landscape_study: dict[str, str], artifacts: Path,
                                      width: int, height: int) -> None:
    context = browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=1)
    page = context.new_page()
    try:
        sign_in(page, server)
        page.goto(f"{server}/ui/#/viewer/{landscape_study['job_id']}/{landscape_study['uid']}")
        expect(page.locator("#image")).to_have_attribute("data-window", ANY, timeout=60_000)
        if page.locator("#overlay-toggle").count():  # a film without positive findings has no heatmap
            page.get_by_role("checkbox", name="Show AI heatmap").uncheck()
        for name, value in (("Window width value", "2"), ("Window level value", "4094")):
            page.get_by_role("spinbutton", name=name).fill(value)
            page.get_by_role("spinbutton", name=name).press("Enter")
        expect(page.locator("#image")).to_have_attribute("data-level", "4094")
        left, top, right, bottom = _bbox(_white(page)[0])
        ratio = (right - left + 1) / (bottom - top + 1)
        assert abs(ratio - 1024 / 768) <= 0.015, ratio
        page.screenshot(path=artifacts / f"cs-{width}x{height}-wide-film.png")
    finally:
        context.close()


@needs_bundle
def test_shortcuts_are_listed_and_move_between_studies(page: Any, server: str, framed_study: dict[str, str],
                                                       study: dict[str, str]) -> None:
    sign_in(page, server)
    _open(page, server, framed_study)
    page.get_by_text("Keyboard shortcuts").click()
    listed = page.locator("#shortcuts")
    for text in ("Actual pixels", "Length", "Angle", "Pan", "Previous / next study"):
        expect(listed).to_contain_text(text)
    assert page.evaluate(LOW_CONTRAST) == []
    page.locator("#stage").focus()
    page.keyboard.press("a")
    expect(page.locator("#tool-angle")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#tool-window-level")).to_have_attribute("aria-pressed", "false")
    enabled = page.locator("#previous-study:not([disabled]), #next-study:not([disabled])")
    expect(enabled).to_have_count(1)  # two studies: the other one is before or after this one
    key = "[" if enabled.get_attribute("id") == "previous-study" else "]"
    page.keyboard.press(key)
    expect(page).to_have_url(re.compile(f"#/viewer/{study['job_id']}/"))
    expect(page.locator("#image")).to_have_attribute("data-window", ANY)
