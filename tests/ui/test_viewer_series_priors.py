"""The study viewer's series strip, DICOM tag view and comparison with a prior, in Chromium at two screen sizes.

One patient has a study of two series (a square 512 x 512 film and a 512 x 256 one, both with a white frame at
their edge) and an earlier study (a square framed film, 2023-01-15); another patient has a still earlier study
that must never be offered as a prior. What is on screen is measured from its pixels: the bounding box of the
white frame says which film is shown and whether it keeps its aspect. Screenshots go to ``$CDS_UI_ARTIFACTS``
(series-*.png).
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pydicom
import pytest
from playwright.sync_api import expect

from cds.serving.ui import STATIC
from tests.ui.conftest import LOW_CONTRAST, dev_headers, sign_in, sized_page, store_and_preread
from training.data.chest_xray import render
from training.data.dicom_files import write_radiograph

pytestmark = [pytest.mark.ui, pytest.mark.browser, pytest.mark.slow]

SIDE, FRAME = 512, 6
PATIENT, OTHER_PATIENT = "SYNTH-PRIORS-1", "SYNTH-PRIORS-9"
SIZES = [(1280, 800), (1080, 1920)]
ANY = re.compile(r".+")
needs_bundle = pytest.mark.skipif(not (STATIC / "dist" / "cornerstone.js").is_file(),
                                  reason="the workspace bundle is missing: make web (make test builds it)")


def _film(path: Path, rows: int, seed: int, patient: str, **attributes: Any) -> Path:
    """A framed chest film (only the frame reaches the stored maximum), restamped with ``attributes``."""
    pixels = render(SIDE, seed, 0)[0][:rows].astype(np.float32) * 0.9
    pixels[:FRAME, :] = pixels[-FRAME:, :] = pixels[:, :FRAME] = pixels[:, -FRAME:] = 1.0
    write_radiograph(path, pixels, patient_id=patient, study_uid=attributes.pop("StudyInstanceUID", None))
    dataset = pydicom.dcmread(path)
    for name, value in attributes.items():
        setattr(dataset, name, value)
    dataset.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture(scope="module")
def studies(server: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The four films stored in one STOW-RS request and pre-read; the outcomes and UIDs the tests open and expect."""
    folder = tmp_path_factory.mktemp("ui-series")
    current = pydicom.uid.generate_uid()
    files = {
        "square": _film(folder / "a.dcm", SIDE, 11, PATIENT, StudyInstanceUID=current, StudyDate="20240601",
                        StudyDescription="CHEST TWO VIEWS", SeriesNumber=1, SeriesDescription="PA"),
        "wide": _film(folder / "b.dcm", SIDE // 2, 12, PATIENT, StudyInstanceUID=current, StudyDate="20240601",
                      StudyDescription="CHEST TWO VIEWS", SeriesNumber=2, SeriesDescription="WIDE VIEW"),
        "prior": _film(folder / "c.dcm", SIDE, 13, PATIENT, StudyDate="20230115", StudyDescription="CHEST PA PRIOR"),
        "other": _film(folder / "d.dcm", SIDE, 14, OTHER_PATIENT, StudyDate="20220101",
                       StudyDescription="OTHER PATIENT STUDY"),
    }  # fmt: skip
    status = store_and_preread(server, list(files.values()))
    headers = {name: pydicom.dcmread(path, stop_before_pixels=True) for name, path in files.items()}
    outcomes = {o["uid"]: o for o in status["result"]["outcomes"]}
    for name in ("square", "prior"):
        assert headers[name].SOPInstanceUID in outcomes, (name, sorted(outcomes))
    return {"job_id": status["id"], "current": headers["square"].SOPInstanceUID,
            "prior": headers["prior"].SOPInstanceUID, "prior_study": headers["prior"].StudyInstanceUID,
            "other_study": headers["other"].StudyInstanceUID, "square_series": headers["square"].SeriesInstanceUID,
            "wide_series": headers["wide"].SeriesInstanceUID}  # fmt: skip


def _frame_box(page: Any, selector: str) -> tuple[int, int]:
    """Width and height of the white frame in a screenshot of ``selector`` (all channels above 200)."""
    from PIL import Image

    shot = np.asarray(Image.open(io.BytesIO(page.locator(selector).screenshot())).convert("RGB"))
    rows, cols = np.nonzero(shot.min(axis=2) > 200)
    assert rows.size, f"nothing white in {selector}"
    return int(cols.max() - cols.min() + 1), int(rows.max() - rows.min() + 1)


def _open(page: Any, server: str, job_id: str, uid: str) -> None:
    page.goto(f"{server}/ui/#/viewer/{job_id}/{uid}")
    expect(page.locator("#image")).to_have_attribute("data-window", ANY, timeout=60_000)


def test_the_server_lists_only_the_same_patients_earlier_study(server: str, studies: dict[str, str]) -> None:
    headers = dev_headers(server, "radiologist")
    current = httpx.get(f"{server}/v1/preread/{studies['job_id']}/{studies['current']}/priors", headers=headers,
                        timeout=30).json()  # fmt: skip
    assert [p["study_uid"] for p in current] == [studies["prior_study"]]
    prior = httpx.get(f"{server}/v1/preread/{studies['job_id']}/{studies['prior']}/priors", headers=headers,
                      timeout=30).json()  # fmt: skip
    assert prior == []  # the other patient's older study is not this patient's prior


def _check_tags(page: Any) -> None:
    """The tag view of the film shown: identity, modality and size; pixel data as a length; the filter."""
    page.locator("#stage").focus()
    page.keyboard.press("t")
    dialog = page.locator("#tag-view")
    expect(dialog).to_be_visible()
    expect(page.locator("#tag-count")).to_contain_text("attributes")
    row = lambda keyword: dialog.locator("tr", has=page.locator("td.tag-keyword", has_text=re.compile(f"^{keyword}$")))  # noqa: E731
    expect(row("PatientID").locator(".tag-value")).to_have_text(PATIENT)
    expect(row("Modality").locator(".tag-value")).to_have_text("CR")
    expect(row("Rows").locator(".tag-tag")).to_have_text("(0028,0010)")
    expect(row("Rows").locator(".tag-vr")).to_have_text("US")
    pixel = row("PixelData").locator(".tag-value")
    expect(pixel).to_contain_text("bytes")
    assert re.sub(r"\D", "", pixel.inner_text()) == str(SIDE * SIDE * 2)  # 16-bit pixels, the length only
    total = dialog.locator("tbody tr").count()
    page.locator("#tag-filter").fill("0028,001")
    expect(dialog.locator("tbody tr")).not_to_have_count(total)
    keywords = dialog.locator("tbody td.tag-keyword").all_inner_texts()
    assert {"Rows", "Columns"} <= set(keywords) and "PatientID" not in keywords, keywords
    assert page.evaluate(LOW_CONTRAST) == []
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)


@needs_bundle
@pytest.mark.parametrize(("width", "height"), SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_series_tags_and_prior_side_by_side(browser: Any, server: str, studies: dict[str, str], artifacts: Path,
                                           width: int, height: int) -> None:
    context, page, errors = sized_page(browser, width, height)
    tag = f"{width}x{height}"
    try:
        sign_in(page, server)
        _open(page, server, studies["job_id"], studies["current"])

        # The strip: the study's two acquired series (not the AI's own results), the analysed one pressed.
        thumbs = page.locator("#series-strip .series-thumb")
        expect(thumbs).to_have_count(2)
        expect(thumbs.locator("img[data-loaded]")).to_have_count(2)
        expect(page.locator(f'.series-thumb[data-series="{studies["square_series"]}"]')).to_have_attribute(
            "aria-pressed", "true")
        expect(thumbs.nth(1)).to_contain_text("WIDE VIEW")
        expect(thumbs.nth(1)).to_contain_text("1 image")
        film_w, film_h = _frame_box(page, "#image")
        assert abs(film_w - film_h) <= max(2, 0.01 * film_w), (film_w, film_h)
        page.screenshot(path=artifacts / f"series-{tag}-1-opened.png")

        # Another series replaces the film on the stage: the frame becomes twice as wide as tall.
        thumbs.nth(1).click()
        expect(page.locator("#current-pane")).to_have_attribute("data-series", studies["wide_series"])
        expect(page.locator("#image")).to_have_attribute("data-window", ANY)
        expect(thumbs.nth(1)).to_have_attribute("aria-pressed", "true")
        wide_w, wide_h = _frame_box(page, "#image")
        assert abs(wide_w / wide_h - 2) < 0.05, (wide_w, wide_h)
        expect(page.locator("#overlay-toggle")).to_be_disabled()  # the heatmap belongs to the analysed film
        page.locator("#stage").focus()
        page.keyboard.press("s")  # and back, by the keyboard
        expect(page.locator("#current-pane")).to_have_attribute("data-series", studies["square_series"])
        expect(page.locator("#heatmap")).to_have_attribute("data-label", ANY)

        _check_tags(page)

        # Compare with the prior: only the same patient's earlier study is offered.
        options = page.locator("#prior-choice option").all_inner_texts()
        assert len(options) == 1 and "CHEST PA PRIOR" in options[0] and "OTHER" not in options[0], options
        page.locator("#stage").focus()
        page.keyboard.press("v")
        prior = page.locator("#prior-pane")
        expect(prior).to_have_attribute("data-study", studies["prior_study"])
        expect(page.locator("#prior-image")).to_have_attribute("data-window", ANY, timeout=60_000)
        expect(page.locator("#prior-label")).to_contain_text("CHEST PA PRIOR")
        expect(page.locator("#prior-label")).to_contain_text("2023")
        expect(page.locator("#current-label")).to_contain_text("CHEST TWO VIEWS")
        expect(page.locator("#current-label")).to_contain_text("2024")
        expect(page.locator("#compare-prior")).to_have_attribute("aria-pressed", "true")
        here, there = page.locator("#image").bounding_box(), page.locator("#prior-image").bounding_box()
        if width > height:  # side by side
            assert there["x"] >= here["x"] + here["width"] - 1 and abs(there["y"] - here["y"]) < 60, (here, there)
        else:  # stacked
            assert there["y"] >= here["y"] + here["height"] - 1 and abs(there["x"] - here["x"]) < 2, (here, there)
        assert there["y"] + there["height"] <= height + 1 or width > height, (there, height)  # both on screen
        prior_w, prior_h = _frame_box(page, "#prior-image")
        assert abs(prior_w - prior_h) <= max(2, 0.015 * prior_w), (prior_w, prior_h)
        now_w, now_h = _frame_box(page, "#image")  # the current film, fitted again into its half of the room
        assert abs(now_w - prior_w) <= max(3, 0.03 * prior_w) and abs(now_w - now_h) <= max(2, 0.015 * now_w), (
            now_w, now_h, prior_w)
        page.screenshot(path=artifacts / f"series-{tag}-2-prior.png")

        # Its own window/level: dragging on the prior changes the prior's, not the current film's.
        current_window = page.locator("#image").get_attribute("data-window")
        prior_window = page.locator("#prior-image").get_attribute("data-window")
        box = page.locator("#prior-image").bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] / 2 + 80, box["y"] + box["height"] / 2 + 40, steps=8)
        page.mouse.up()
        expect(page.locator("#prior-image")).not_to_have_attribute("data-window", prior_window)
        expect(page.locator("#prior-caption")).to_contain_text("Window")
        assert page.locator("#image").get_attribute("data-window") == current_window

        page.locator("#stage").focus()
        page.keyboard.press("v")
        expect(prior).to_have_count(0)
        expect(page.locator("#current-label")).to_be_hidden()

        # The shortcuts are listed.
        page.locator("#shortcuts summary").click()
        for key in ("T", "S", "V"):
            expect(page.locator("#shortcuts th", has_text=re.compile(f"^{key}$"))).to_have_count(1)
    finally:
        context.close()
    assert errors == [], errors


@needs_bundle
def test_a_single_series_film_has_no_strip_and_no_other_patients_prior(browser: Any, server: str,
                                                                       studies: dict[str, str]) -> None:
    context, page, errors = sized_page(browser, 1280, 800)
    try:
        sign_in(page, server)
        with page.expect_response(lambda r: "/series?includefield" in r.url and r.ok):  # the study's series listed
            _open(page, server, studies["job_id"], studies["prior"])
        expect(page.locator("#no-priors")).to_be_visible()  # the other patient's older study is not offered
        # One series: nothing to choose, so no strip takes the film's room.
        page.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
        expect(page.locator("#series-strip")).to_have_count(0)
        assert page.locator("#series-holder").evaluate("(e) => e.getBoundingClientRect().height") == 0
        expect(page.locator("#prior-choice")).to_have_count(0)
    finally:
        context.close()
    assert errors == [], errors


def test_without_the_bundle_thumbnails_tags_and_the_prior_still_show(page: Any, server: str,
                                                                     studies: dict[str, str], artifacts: Path) -> None:
    page.route("**/ui/dist/**", lambda route: route.fulfill(status=404, body="not built"))
    sign_in(page, server)
    page.goto(f"{server}/ui/#/viewer/{studies['job_id']}/{studies['current']}")
    expect(page.locator("#bundle-missing")).to_be_visible(timeout=60_000)
    expect(page.locator("#image")).to_have_attribute("data-window", ANY)
    thumbs = page.locator("#series-strip .series-thumb")
    expect(thumbs).to_have_count(2)
    aspect = "() => { const i = document.querySelector('#image'); return i.naturalWidth / i.naturalHeight; }"
    assert page.evaluate(aspect) == pytest.approx(1.0, abs=0.02)
    thumbs.nth(1).click()
    expect(page.locator("#current-pane")).to_have_attribute("data-series", studies["wide_series"])
    page.wait_for_function(f"() => Math.abs(({aspect})() - 2) < 0.05")
    thumbs.nth(0).click()
    expect(page.locator("#current-pane")).to_have_attribute("data-series", studies["square_series"])
    expect(page.locator("#image")).to_have_attribute("data-window", ANY)
    _check_tags(page)
    page.locator("#compare-prior").click()
    expect(page.locator("#prior-image")).to_have_attribute("data-window", ANY, timeout=60_000)
    expect(page.locator("#prior-label")).to_contain_text("CHEST PA PRIOR")
    page.screenshot(path=artifacts / "series-no-bundle.png")
