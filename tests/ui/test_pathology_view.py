"""The pathologist's view in a real browser: upload a generated slide with a tumour from the page, wait for the
read, see the heatmap, the slide score against the threshold, the tumour area and the model's caveat, zoom into
the slide by click and keys; a blank slide says "no tissue found"; the list keeps both; other roles are refused.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.pipelines.pathology.slides import tumour_layout
from tests.ui.conftest import LOW_CONTRAST, sign_in, tab_through
from training.data.he_slide import write_slide

pytestmark = [pytest.mark.ui, pytest.mark.browser, pytest.mark.slow]

READ_TIMEOUT_MS = 180_000
WIDTH, HEIGHT = 3072, 2048
MEAN_RGB = """(canvas) => {
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  const sum = [0, 0, 0];
  for (let i = 0; i < data.length; i += 4) { sum[0] += data[i]; sum[1] += data[i + 1]; sum[2] += data[i + 2]; }
  return sum.map((s) => s / (data.length / 4));
}"""


@pytest.fixture(scope="module")
def slides(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("ui-slides")
    tumour = write_slide(folder / "tumour-slide.tif", WIDTH, HEIGHT, seed=8, mpp=0.5, tile=256, factor=2,
                         layout=tumour_layout(WIDTH, HEIGHT))  # fmt: skip
    blank = write_slide(folder / "blank-slide.tif", 1024, 768, seed=6, mpp=0.5, tile=128, factor=2, blank=True)
    return {"tumour": tumour.path, "blank": blank.path}


def _upload(page: Any, path: Path, subject: str = "") -> str:
    if subject:
        page.get_by_label("Patient (optional)").fill(subject)
    page.locator("#slide-input").set_input_files(str(path))
    expect(page).to_have_url(re.compile(r"#/pathology/[0-9a-f-]{36}$"))
    return str(page.url.rsplit("/", 1)[-1])


def _region(page: Any) -> dict[str, int]:
    zoom = page.locator("#zoom-image")
    return {k: int(zoom.get_attribute(f"data-{k}")) for k in ("x", "y", "side", "zoom")}


def without_slide_viewer(page: Any) -> None:
    """Block the workspace bundle's slide viewer: the view falls back to the server-rendered zoom and says so."""
    page.route("**/ui/dist/slide.js", lambda route: route.abort())


def test_pathologist_uploads_a_slide_sees_the_heatmap_and_zooms(page: Any, server: str, slides: dict[str, Path],
                                                                artifacts: Path) -> None:
    without_slide_viewer(page)  # the fallback; tests/ui/test_slide_viewer.py drives OpenSeadragon
    sign_in(page, server, "pathologist")
    expect(page.get_by_role("heading", name="Pathology", exact=True)).to_be_visible()
    expect(page.get_by_role("navigation", name="Main").get_by_role("link")).to_have_text(["Pathology", "Referrals"])
    job = _upload(page, slides["tumour"], subject="Patient/ui-7")
    call = page.locator("#slide-call")
    expect(call).to_have_text("Tumour suspected", timeout=READ_TIMEOUT_MS)
    expect(call).to_have_class(re.compile("sev-top"))
    expect(page.locator("#slide-patient")).to_have_text("Patient/ui-7")  # whose slide it is
    expect(page.locator("#slide-score")).to_have_text(re.compile(r"^[01]\.\d{3} vs threshold 0\.490$"))
    expect(page.locator("#tumour-area")).to_have_text(re.compile(r"^\d+\.\d % \(\d+ of \d+ tissue patches"))
    expect(page.locator("#nfdu")).to_contain_text("Not for diagnostic use.")
    expect(page.locator("#bundle-missing")).to_contain_text("make web")
    expect(page.locator("#slide-model")).to_have_text("pathology-demo 1.0.0")
    expect(page.locator("#slide-heatmap")).to_have_attribute("data-loaded", "true")
    expect(page.locator("#zoom-image")).to_have_attribute("data-zoom", "4")
    start = _region(page)
    assert start == {"x": 1152, "y": 640, "side": 768, "zoom": 4}  # the centre, a quarter of the longer side
    page.screenshot(path=artifacts / "40-pathology-read.png")

    heatmap = page.locator("#slide-heatmap")
    box = heatmap.bounding_box()
    heatmap.click(position={"x": box["width"] * 0.32, "y": box["height"] * 0.5})  # the tumour's centre
    expect(page.locator("#zoom-image")).not_to_have_attribute("data-x", str(start["x"]))
    moved = _region(page)
    assert abs(moved["x"] + 384 - 0.32 * WIDTH) < 30 and abs(moved["y"] + 384 - 0.5 * HEIGHT) < 30, moved
    tumour_red = page.locator("#zoom-heat").evaluate(MEAN_RGB)
    assert tumour_red[0] > tumour_red[2]  # the heatmap's crop over the tumour is red, not blue
    page.screenshot(path=artifacts / "41-pathology-zoom-tumour.png")

    page.locator("#slide-stage").focus()
    page.keyboard.press("+")
    expect(page.locator("#zoom-image")).to_have_attribute("data-zoom", "8")
    expect(page.get_by_label("Zoom", exact=True)).to_have_value("8")
    centre = _region(page)["x"] + 192
    page.keyboard.press("ArrowRight")
    expect(page.locator("#zoom-image")).to_have_attribute("data-x", str(centre + 96 - 192))
    expect(page.locator("#zoom-caption")).to_contain_text("8× · region 384 × 384 px")
    expect(page.locator("#zoom-caption")).to_contain_text("0.19 × 0.19 mm")
    page.get_by_label("Heatmap on the zoom").uncheck()
    expect(page.locator("#zoom-heat")).to_be_hidden()
    assert page.evaluate(LOW_CONTRAST) == []
    page.screenshot(path=artifacts / "42-pathology-zoom-8x.png")

    reached = tab_through(page)
    assert [f for f in reached if not f["name"]] == []
    assert {"zoom-level", "zoom-heat-toggle", "slide-stage"} <= {f["id"] for f in reached}
    assert {"Download FHIR report", "Back to pathology"} <= {f["name"] for f in reached}

    page.get_by_role("link", name="Back to pathology").click()
    row = page.locator(f'#slides-table tr[data-job="{job}"]')
    expect(row.locator(".state")).to_have_text("done")
    expect(row.locator(".result")).to_have_text("Tumour suspected")
    expect(row).to_contain_text("Patient/ui-7")


def test_a_blank_slide_says_no_tissue_found(page: Any, server: str, slides: dict[str, Path], artifacts: Path) -> None:
    sign_in(page, server, "pathologist")
    expect(page.locator("#slides-updated")).to_contain_text("updated")
    reached = tab_through(page)
    assert [f for f in reached if not f["name"]] == []
    assert {"Patient (optional)", "Upload slide or tile…"} <= {f["name"] for f in reached}
    assert page.evaluate(LOW_CONTRAST) == []
    _upload(page, slides["blank"])
    expect(page.locator("#slide-call")).to_have_text("No tissue found", timeout=READ_TIMEOUT_MS)
    expect(page.locator("#slide-patient")).to_have_text("not given with the upload")  # never the previous one's
    expect(page.locator("#no-tissue")).to_contain_text("Nothing was scored")
    # the slide viewer without a heatmap, or (no bundle) the thumbnail
    expect(page.locator("#slide-scalebar[data-px], #slide-thumbnail[data-loaded='true']")).to_have_count(1)
    expect(page.locator("#slide-heatmap, #slide-heat")).to_have_count(0)
    expect(page.locator("#slide-score")).to_have_count(0)
    assert page.evaluate(LOW_CONTRAST) == []
    page.screenshot(path=artifacts / "43-pathology-no-tissue.png")
    page.get_by_role("link", name="Back to pathology").click()
    expect(page.locator("#slides-table tbody tr .result").first).to_have_text("No tissue found")
    page.screenshot(path=artifacts / "44-pathology-list.png")

