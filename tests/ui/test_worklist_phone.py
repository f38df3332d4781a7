"""The worklist on a phone (390x844) and a tablet (768x1024): nothing scrolls sideways; the rows stack as cards.

A few pre-read studies fill the table; the page's width and the table's own scroll area must both fit the screen.
Screenshots: ``worklist-390x844.png`` and ``worklist-768x1024.png`` in ``$CDS_UI_ARTIFACTS``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.ui.conftest import sign_in, store_and_preread
from training.data.chest_xray import render
from training.data.dicom_files import write_radiograph

pytestmark = pytest.mark.ui

# Anything wider than the screen: the page itself, or a box that scrolls sideways inside it (the table's wrapper).
OVERFLOW = """() => ({
  page: document.documentElement.scrollWidth, width: window.innerWidth,
  inner: Array.from(document.querySelectorAll("#main *")).filter((el) => el.scrollWidth > el.clientWidth + 1
    && ["auto", "scroll"].includes(getComputedStyle(el).overflowX)).map((el) => el.className || el.tagName),
})"""


@pytest.fixture(scope="module")
def studies(server: str, radiograph: Path, tmp_path_factory: pytest.TempPathFactory) -> int:
    """Three pre-read radiographs: the UI fixture's and two more patients."""
    folder = tmp_path_factory.mktemp("ui-phone")
    files = [radiograph] + [write_radiograph(folder / f"chest-{i}.dcm", render(256, 7 + i, 0, findings=set())[0],
                                             patient_id=f"SYNTH-PHONE-{i}") for i in range(2)]
    for file in files:
        store_and_preread(server, [file])
    return len(files)


@pytest.mark.parametrize(("width", "height"), [(390, 844), (768, 1024)])
def test_the_worklist_fits_the_screen(page: Any, server: str, studies: int, artifacts: Path, width: int,
                                      height: int) -> None:
    page.set_viewport_size({"width": width, "height": height})
    sign_in(page, server)
    rows = page.locator("#worklist-table tbody tr")
    expect(rows).to_have_count(studies)
    expect(rows.locator("td.state")).to_have_text(["done"] * studies)
    overflow = page.evaluate(OVERFLOW)
    assert overflow["page"] <= overflow["width"], overflow
    assert overflow["inner"] == [], overflow
    for button in (page.locator("#upload-button"), rows.first.locator("button.open")):  # reachable, on screen
        box = button.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, box
    page.screenshot(path=artifacts / f"worklist-{width}x{height}.png", full_page=True)
