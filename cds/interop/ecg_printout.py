"""The 12-lead ECG printout: one A4 landscape page at true scale, as a PNG (200 dpi) and a PDF.

True scale means 25 mm/s and 10 mm/mV on paper: the figure is sized in inches from millimetres and everything is
placed in page millimetres, so 1 mm of paper is 1 mm of data (the PNG says 200 dpi in its ``pHYs`` chunk, so it
prints at size too). On the standard grid (1 mm minor and 5 mm major lines, pale red) the page shows the
standard layout: three rows of four 2.5-s columns (I, aVR, V1, V4 / II, aVL, V2, V5 / III, aVF, V3, V6) and a
10-s lead II rhythm strip, each row starting with a 1 mV, 0.2 s calibration pulse. Each trace is clipped to its
row, so a huge signal cannot write over its neighbours. A lead with signal-quality problems is drawn and its
label says what is wrong with it; a record shorter than 10 s draws what there is.

The header gives the measurements, the rhythm twice (rules and classifier), every flag (critical first and in
red, e.g. ``POSSIBLE STEMI — URGENT REVIEW: leads II, III, aVF``), the caveats, and, for a model not for
diagnostic use, that this is an AI pre-read a physician reads and signs; the footer the scale and the model. No
file name is printed.

It is drawn for every ECG, so it is drawn cheaply. matplotlib (no pyplot, no Axes) draws the grid as two
``LineCollection``s and each row's traces as one more; a trace with more than two samples per output pixel column
is reduced to each column's minimum and maximum, so the peaks a reader measures stay. For the PNG the grid is
drawn once per process into a blank page that every page starts from, the words are set with Pillow in the same
DejaVu fonts (an order of magnitude faster than matplotlib's raster text) and imagecodecs encodes the page at low
compression. The PDF is all vectors: grid, traces and matplotlib's text.
"""

from __future__ import annotations

import functools
import io
import struct
import zlib
from dataclasses import dataclass

import imagecodecs
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.backends.backend_pdf import FigureCanvasPdf
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties, findfont
from matplotlib.patches import Rectangle
from matplotlib.transforms import Affine2D, Transform
from PIL import Image, ImageDraw, ImageFont

from cds.interop.fhir_ecg import flag_heading, measurement_words, ordered_flags, rhythm_words
from cds.pipelines.ecg.record import STANDARD_LEADS
from cds.results.ecg import EcgAnalysis, EcgResult, Severity

MM_PER_INCH, POINTS_PER_INCH = 25.4, 72.0
PAGE_MM = (297.0, 210.0)  # A4 landscape
DPI = 200
MM_PER_S, MM_PER_MV = 25.0, 10.0
GRID_X_MM = (14.0, 284.0)  # the grid's left and right edges
GRID_Y_MM = (8.0, 168.0)  # its bottom and top: four rows of 40 mm
ROW_MM = 40.0
BASELINE_MM = 16.0  # a row's 0 mV line above the row's bottom edge
TRACE_X_MM = 24.0  # where t = 0 is drawn (on a major line, 10 mm after the grid's edge)
PULSE_X_MM = (17.0, 22.0)  # the calibration pulse: 1 mV high, 0.2 s (5 mm) wide
STRIP_S, COLUMN_S = 10.0, 2.5
ROWS = (("I", "aVR", "V1", "V4"), ("II", "aVL", "V2", "V5"), ("III", "aVF", "V3", "V6"))
RHYTHM_LEAD = "II"
MINOR, MAJOR = "#f7cccc", "#ee9a9a"  # pale red grid
TRACE, CRITICAL, WARNING, MUTED = "#000000", "#c00000", "#b35900", "#555555"
DISCLAIMER = "AI pre-read, not a diagnosis — to be read and signed by a physician"
HEADER_TOP_MM, HEADER_LINE_MM, HEADER_LINES = 203.0, 4.3, 7
MAX_CHARS = 190  # a header line at 7.5 pt across the page

Segment = tuple[tuple[float, float], tuple[float, float]]


@dataclass(frozen=True)
class PageText:
    """One piece of text on the page: where (mm from the bottom left; ``y`` is its middle), what and how."""

    x: float
    y: float
    text: str
    size: float  # points
    colour: str = TRACE
    bold: bool = False
    right: bool = False  # aligned on its right end rather than its left


def row_baseline_mm(row: int) -> float:
    """The 0 mV line of row ``row`` (0 = top row, 3 = rhythm strip), in mm from the page's bottom."""
    return GRID_Y_MM[1] - ROW_MM * (row + 1) + BASELINE_MM


def _grid(transform: Transform) -> list[LineCollection]:
    (x0, x1), (y0, y1) = GRID_X_MM, GRID_Y_MM
    lines: dict[bool, list[Segment]] = {True: [], False: []}  # major (every 5 mm from the grid's edge) or minor
    for x in np.arange(x0, x1 + 0.5):
        lines[round(x - x0) % 5 == 0].append(((x, y0), (x, y1)))
    for y in np.arange(y0, y1 + 0.5):
        lines[round(y - y0) % 5 == 0].append(((x0, y), (x1, y)))
    return [LineCollection(lines[False], colors=MINOR, linewidths=0.3, zorder=1, transform=transform),
            LineCollection(lines[True], colors=MAJOR, linewidths=0.7, zorder=2, transform=transform)]  # fmt: skip


def _envelope(y: np.ndarray, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample indices and values of ``y`` reduced to each pixel column's minimum and maximum, in time order."""
    n = y.size
    if n <= 2 * columns:
        return np.arange(n), y
    per = -(-n // columns)
    columns = -(-n // per)
    padded = np.concatenate([y, np.full(per * columns - n, y[-1], y.dtype)]).reshape(columns, per)
    base = np.arange(columns) * per
    low, high = base + padded.argmin(axis=1), base + padded.argmax(axis=1)
    index = np.minimum(np.sort(np.stack([low, high], axis=1), axis=1).ravel(), n - 1)
    return index, y[index]


def _trace(signal: np.ndarray, fs: float, start_s: float, stop_s: float, baseline: float) -> np.ndarray | None:
    """One lead's samples in [start_s, stop_s) as an (N, 2) polyline in page mm, or None when there are none."""
    first, last = round(start_s * fs), min(round(stop_s * fs), signal.size)
    if last - first < 2:
        return None
    columns = max(2, round((stop_s - start_s) * MM_PER_S * DPI / MM_PER_INCH))
    index, values = _envelope(signal[first:last], columns)
    x = TRACE_X_MM + (first + index) / fs * MM_PER_S
    y = baseline + np.clip(values.astype(np.float64), -ROW_MM, ROW_MM) * MM_PER_MV  # the clip path cuts the rest
    return np.column_stack([x, y])


def _pulse(baseline: float) -> np.ndarray:
    (a, b), top = PULSE_X_MM, baseline + MM_PER_MV
    return np.array([(a - 1.5, baseline), (a, baseline), (a, top), (b, top), (b, baseline), (TRACE_X_MM, baseline)])


def _rows(analysis: EcgAnalysis) -> list[list[np.ndarray]]:
    """Each row's polylines: its calibration pulse, its traces and the marks between columns."""
    rows = []
    for row, leads in enumerate((*ROWS, (RHYTHM_LEAD,))):
        baseline, span = row_baseline_mm(row), STRIP_S if len(leads) == 1 else COLUMN_S
        lines = [_pulse(baseline)]
        for column, lead in enumerate(leads):
            start = column * span
            signal = analysis.signals[STANDARD_LEADS.index(lead)]
            trace = _trace(signal, analysis.sampling_hz, start, start + span, baseline)
            lines += [trace] if trace is not None else []
            if column:
                x = TRACE_X_MM + start * MM_PER_S
                lines.append(np.array([(x, baseline - 3.0), (x, baseline + 3.0)]))
        rows.append(lines)
    return rows


def lead_labels(result: EcgResult) -> dict[str, str]:
    """Each lead's label on the page: its name, and what is wrong with it when its quality check found problems."""
    problems = {q.lead: ", ".join(q.problems).replace("_", " ") for q in result.quality if q.problems}
    return {lead: f"{lead} — {problems[lead]}" if lead in problems else lead for lead in STANDARD_LEADS}


def _header(analysis: EcgAnalysis, title: str) -> list[tuple[str, str, bool]]:
    """The header's lines, top down: (text, colour, bold); flags past the room left are counted, not listed."""
    result = analysis.result
    lines = [(title, TRACE, True), ("   ".join(measurement_words(result.measurements)), TRACE, False),
             (f"Rhythm: {rhythm_words(result)} — {result.rhythm.evidence}", TRACE, False)]  # fmt: skip
    style = {Severity.CRITICAL: (CRITICAL, True), Severity.WARNING: (WARNING, True), Severity.INFO: (MUTED, False)}
    flags = [(f"{flag_heading(f)} — {f.text}", *style[f.severity]) for f in ordered_flags(result.flags)]
    room = HEADER_LINES - len(lines) - bool(result.warnings)
    if len(flags) > room:  # the most urgent first; the report lists them all
        flags = [*flags[: room - 1], (f"… and {len(flags) - room + 1} more flags (see the report)", MUTED, True)]
    lines += flags
    if result.warnings:
        lines.append(("Caveats: " + "; ".join(result.warnings), MUTED, False))
    return [(text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1] + "…", c, b) for text, c, b in lines]


def page_texts(analysis: EcgAnalysis, title: str) -> list[PageText]:
    """Every piece of text on the page: header, disclaimer, lead labels and footer."""
    result = analysis.result
    texts = [PageText(GRID_X_MM[0], HEADER_TOP_MM - i * HEADER_LINE_MM, text, 10.0 if i == 0 else 7.5, colour, bold)
             for i, (text, colour, bold) in enumerate(_header(analysis, title))]  # fmt: skip
    if analysis.not_for_diagnostic_use:
        texts.append(PageText(GRID_X_MM[1], HEADER_TOP_MM, DISCLAIMER, 8.5, CRITICAL, bold=True, right=True))
    labels = lead_labels(result)
    for row, leads in enumerate((*ROWS, (RHYTHM_LEAD,))):
        top = GRID_Y_MM[1] - ROW_MM * row
        for column, lead in enumerate(leads):
            x = TRACE_X_MM + column * COLUMN_S * MM_PER_S + 1.0
            texts.append(PageText(x, top - 4.0, labels[lead], 8.0, WARNING if labels[lead] != lead else TRACE, True))
    duration = analysis.signals.shape[1] / analysis.sampling_hz
    footer = (f"25 mm/s   10 mm/mV   {analysis.sampling_hz:g} Hz   {duration:.1f} s   "
              f"{result.measurements.beats} beats   model {result.model.key}")
    texts.append(PageText(GRID_X_MM[0], 4.0, footer, 7.0, MUTED))
    return texts


def _empty_figure(facecolor: str) -> tuple[Figure, Transform]:
    """An A4 landscape figure and the transform from page mm to it."""
    width, height = PAGE_MM
    figure = Figure(figsize=(width / MM_PER_INCH, height / MM_PER_INCH), dpi=DPI, facecolor=facecolor)
    return figure, Affine2D().scale(1.0 / width, 1.0 / height) + figure.transFigure


def _agg_rgba(figure: Figure, background: np.ndarray | None = None) -> np.ndarray:
    """``figure`` drawn by Agg (over ``background``, an (H, W, 4) page, when given) as a writable (H, W, 4) view."""
    renderer = FigureCanvasAgg(figure).get_renderer()  # type: ignore[no-untyped-call]
    rgba: np.ndarray = np.asarray(renderer.buffer_rgba())
    if background is None:
        rgba[...] = 255
    else:
        rgba[...] = background
    figure.draw(renderer)
    return rgba


@functools.lru_cache(maxsize=1)
def _blank_page() -> np.ndarray:
    """The page's grid on white at the PNG's size, drawn once (read-only): every page's PNG starts from it."""
    figure, mm = _empty_figure("white")
    for collection in _grid(mm):
        figure.add_artist(collection)
    page = _agg_rgba(figure).copy()
    page.flags.writeable = False
    return page


def _figure(analysis: EcgAnalysis) -> tuple[Figure, Transform]:
    """The page's traces (no grid, no words) on a transparent figure, and its page-mm transform."""
    figure, mm = _empty_figure("none")
    for row, lines in enumerate(_rows(analysis)):
        top = GRID_Y_MM[1] - ROW_MM * row
        collection = LineCollection(lines, colors=TRACE, linewidths=0.8, zorder=3, transform=mm)
        collection.set_clip_path(Rectangle((GRID_X_MM[0], top - ROW_MM), GRID_X_MM[1] - GRID_X_MM[0], ROW_MM,
                                           transform=mm))  # fmt: skip
        figure.add_artist(collection)
    return figure, mm


@functools.lru_cache(maxsize=16)
def _font(bold: bool, pixels: int) -> ImageFont.FreeTypeFont:
    """The TrueType font matplotlib uses for this weight, at ``pixels`` em size."""
    path = findfont(FontProperties(family="DejaVu Sans", weight="bold" if bold else "normal"))
    return ImageFont.truetype(path, pixels)


def _set_texts(rgba: np.ndarray, texts: list[PageText]) -> None:
    """Draw ``texts`` into the rendered page (H, W, 4) in place, each within its own box."""
    height, width = rgba.shape[:2]
    scale_x, scale_y = width / PAGE_MM[0], height / PAGE_MM[1]
    for item in texts:
        font = _font(item.bold, round(item.size * DPI / POINTS_PER_INCH))
        anchor = "rm" if item.right else "lm"
        x, y = item.x * scale_x, height - item.y * scale_y
        left, top, right, bottom = font.getbbox(item.text, anchor=anchor)
        x0, y0 = max(0, int(x + left) - 2), max(0, int(y + top) - 2)
        x1, y1 = min(width, int(x + right) + 3), min(height, int(y + bottom) + 3)
        if x1 <= x0 or y1 <= y0:
            continue
        box = Image.fromarray(rgba[y0:y1, x0:x1])
        ImageDraw.Draw(box).text((x - x0, y - y0), item.text, fill=item.colour, font=font, anchor=anchor)
        rgba[y0:y1, x0:x1] = np.asarray(box)


def _with_dpi(png: bytes, dpi: float) -> bytes:
    """``png`` with a ``pHYs`` chunk saying ``dpi`` (right after IHDR), so it prints at its true size."""
    if png[12:16] != b"IHDR":
        raise ValueError("not a PNG starting with its IHDR chunk")
    per_metre = round(dpi / MM_PER_INCH * 1000)
    body = b"pHYs" + struct.pack(">IIB", per_metre, per_metre, 1)
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    return png[:33] + chunk + png[33:]


def _png(figure: Figure, texts: list[PageText]) -> bytes:
    rgba = _agg_rgba(figure, _blank_page())
    _set_texts(rgba, texts)
    encoded = imagecodecs.png_encode(rgba, level=1, filter=imagecodecs.PNG.FILTER.NONE)
    return _with_dpi(bytes(encoded), DPI)


def _pdf(figure: Figure, mm: Transform, texts: list[PageText], title: str) -> bytes:
    """The page as a PDF: ``figure``'s traces with the grid and the words added as vectors."""
    width, height = PAGE_MM
    for collection in _grid(mm):
        figure.add_artist(collection)
    for item in texts:
        figure.text(item.x / width, item.y / height, item.text, fontsize=item.size, color=item.colour,
                    fontweight="bold" if item.bold else "normal", va="center", ha="right" if item.right else "left",
                    family="DejaVu Sans")  # fmt: skip
    buffer = io.BytesIO()
    FigureCanvasPdf(figure)
    figure.savefig(buffer, format="pdf", facecolor="white",
                   metadata={"Title": title, "Creator": "cds", "Producer": "cds", "CreationDate": None})
    return buffer.getvalue()


def render_printout(analysis: EcgAnalysis, *, title: str) -> tuple[bytes, bytes]:
    """The printout page as (PNG at 200 dpi, PDF), both A4 landscape at 25 mm/s and 10 mm/mV.

    Args:
        analysis: The read and its signals (float32 [12, samples] mV in standard lead order).
        title: The page's title (it must not name the file or the patient).
    """
    texts = page_texts(analysis, title)
    figure, mm = _figure(analysis)
    png = _png(figure, texts)
    return png, _pdf(figure, mm, texts, title)
