"""The study viewer on a CT series: slice navigation by buttons, keys and the wheel, segmentation outlines, presets,
the HU value under the cursor, the slice position and the orientation letters."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.ui.conftest import LOW_CONTRAST, sign_in, store_and_preread
from tests.ui.test_cs_viewer import needs_bundle
from training.data.ct_volumes import generate_case

pytestmark = [pytest.mark.ui, pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def ct_study(ct_server: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A generated abdominal CT series (34 slices of 128 x 128) stored and segmented."""
    files = generate_case(31, 0).write_dicom(tmp_path_factory.mktemp("ui-ct"))
    status = store_and_preread(ct_server, files)
    (outcome,) = status["result"]["outcomes"]
    assert outcome["kind"] == "ct"
    return {"job_id": status["id"], "uid": outcome["uid"], "slices": len(files)}


@needs_bundle  # the HU read-out, orientation letters and the wheel are the Cornerstone viewer's
def test_ct_slices_outlines_and_window_presets(page: Any, ct_server: str, ct_study: dict[str, Any],
                                               artifacts: Path) -> None:
    sign_in(page, ct_server)
    page.goto(f"{ct_server}/ui/#/viewer/{ct_study['job_id']}/{ct_study['uid']}")
    image, outline = page.locator("#image"), page.locator("#outline")
    expect(page.locator("#fact-image")).to_have_text(f"CT series, {ct_study['slices']} slices")
    expect(image).to_have_attribute("data-window", "400")  # the series' own soft-tissue window
    expect(outline).to_have_attribute("data-slice", re.compile(r"\d+"))
    start = int(outline.get_attribute("data-slice"))
    assert 0 < start < ct_study["slices"] - 1  # opens on the slice with the most segmented voxels
    expect(page.locator("#stage")).to_be_visible()
    expect(page.locator(".legend li")).to_have_text(["liver", "spleen", "kidney left", "kidney right"])
    page.screenshot(path=artifacts / "10-ct-viewer.png")

    page.get_by_role("button", name="Next slice").click()
    expect(image).to_have_attribute("data-slice", str(start + 1))
    expect(outline).to_have_attribute("data-slice", str(start + 1))
    page.locator("#stage").focus()
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")
    expect(image).to_have_attribute("data-slice", str(start - 1))
    expect(page.get_by_role("slider", name="Slice")).to_have_value(str(start))  # shown 1-based
    expect(page.locator("#image-caption")).to_contain_text(f"slice {start} of {ct_study['slices']}")

    expect(page.locator("#image-caption")).to_contain_text(re.compile(r"position z -?\d+\.\d mm"))
    # Orientation letters of an axial slice seen from the feet: patient's right on the viewer's left, anterior up.
    for edge, letter in (("left", "R"), ("right", "L"), ("top", "A"), ("bottom", "P")):
        expect(page.locator(f"#orientation-{edge}")).to_have_text(letter)
    box = page.locator("#image").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(page.locator("#readout")).to_contain_text(re.compile(r"-?\d+(\.\d)? HU"))
    side = min(box["width"], box["height"])  # the square slice fills the shorter side; its corner is air
    page.mouse.move(box["x"] + box["width"] / 2 - 0.46 * side, box["y"] + box["height"] / 2 - 0.46 * side)
    expect(page.locator("#readout")).to_contain_text(re.compile(r"-(9\d\d|10\d\d)(\.\d)? HU"))
    page.mouse.wheel(0, 120)  # the wheel scrolls through the slices
    expect(image).not_to_have_attribute("data-slice", str(start - 1))

    page.get_by_role("button", name="Lung").click()
    expect(image).to_have_attribute("data-window", "1500")
    expect(image).to_have_attribute("data-level", "-600")
    page.get_by_role("checkbox", name="Show segmentation outlines").uncheck()
    expect(outline).to_be_hidden()
    assert page.evaluate(LOW_CONTRAST) == []
    findings = page.locator("#findings-table tbody tr")
    expect(findings).to_have_count(4)
    page.get_by_role("button", name="Reject spleen").click()
    expect(page.locator('#findings-table tr[data-label="spleen"] .verdict')).to_have_attribute(
        "data-verdict", "rejected")
    page.screenshot(path=artifacts / "11-ct-lung-window.png")
