"""The pixels behind the viewer: a pre-read outcome's source image or CT series, and a CT segmentation's labels.

Sources are the instances the STOW-RS request stored (the job's stored instances); they are read with the same defensive
reader and series builder as the pre-read, so slices are in the order the model saw them (along the slice normal)
and values are modality values (Hounsfield units for CT). A CT series and its label volume are kept in a small
cache, so scrolling through slices or changing the window does not rebuild them. What the viewer needs to know of a
radiograph before it fetches the pixels itself (size, value range, default window) is a summary, kept per file
version, whose decoding sends only four numbers back from the decoder process.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from cds.errors import InvalidInputError, OutputNotFoundError
from cds.pipelines.imaging.dicom_reader import DicomInstance, read_instance
from cds.pipelines.imaging.dicom_series import build_volume
from cds.pipelines.imaging.pixel_values import MODALITY_EXTENT, MODALITY_FLOAT32
from cds.results.jobs import StoredInstance

ISO_2022_ESCAPE = re.compile("\x1b[\x20-\x2f]+[\x30-\x7e]")  # ESC, intermediate bytes, a final byte
CT_DEFAULT_WINDOW = (400.0, 40.0)  # width, level: abdominal soft tissue (HU)


@dataclass(frozen=True)
class ViewerImage:
    """What the viewer shows: modality values [slices, rows, columns] and how to show them by default."""

    values: np.ndarray  # float32
    sop_instance_uids: tuple[str, ...]  # one per slice, in display order
    default_window: tuple[float, float]  # (width, level)
    invert: bool  # MONOCHROME1
    units: str  # "HU" for CT, "" otherwise

    @property
    def value_range(self) -> tuple[float, float]:
        """Lowest and highest value."""
        return float(self.values.min()), float(self.values.max())


@dataclass(frozen=True)
class ImageSummary:
    """What the viewer is told of its image before it loads the pixels: geometry, value range, default window."""

    slices: int
    rows: int
    columns: int
    value_range: tuple[float, float]  # lowest and highest modality value
    default_window: tuple[float, float]  # (width, level)
    units: str  # "HU" for CT, "" otherwise
    sop_instance_uids: tuple[str, ...]


def summary(image: ViewerImage) -> ImageSummary:
    """The summary of an image already decoded (a CT series)."""
    slices, rows, columns = image.values.shape
    return ImageSummary(slices, rows, columns, image.value_range, image.default_window, image.units,
                        image.sop_instance_uids)


@dataclass(frozen=True)
class ShownPatient:
    """Whose image it is, as its header says, for the viewer to show beside the image (never logged)."""

    name: str | None  # ideographic then alphabetic: "王芳 (WANG FANG)"; None when the header has none
    birth_date: str | None  # ISO 8601 (YYYY-MM-DD), or as the header gives it when it is not a valid date
    sex: str | None  # M, F, O


def person_name(value: object) -> str | None:
    """A DICOM Person Name as people read it, ``None`` when empty.

    The ideographic group (family and given name run together, as Chinese is written), then the alphabetic group in
    brackets with its ``^`` as spaces: ``Wang^Fang=王^芳`` -> ``王芳 (Wang Fang)``. ISO 2022 escape sequences that
    the decoder leaves in (ISO 2022 IR 58, GB2312, as some Chinese modalities write names) are dropped.
    """
    groups = ISO_2022_ESCAPE.sub("", str(value or "")).split("=")
    alphabetic = " ".join(part.strip() for part in groups[0].split("^") if part.strip())
    ideographic = "".join(part.strip() for part in groups[1].split("^")) if len(groups) > 1 else ""
    if ideographic and alphabetic:
        return f"{ideographic} ({alphabetic})"
    return ideographic or alphabetic or None


def _iso_date(value: object) -> str | None:
    text = str(value or "").strip()
    if len(text) == 8 and text.isdigit():
        return f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return text or None


def shown_patient(instances: Sequence[StoredInstance], sop_instance_uid: str) -> ShownPatient:
    """The patient of the stored instance ``sop_instance_uid``, from its header alone (cached per file version).

    Raises:
        OutputNotFoundError: ``source_missing`` (404).
        InvalidInputError: Any reason of the DICOM reader.
    """
    path = _find(instances, sop_instance_uid)
    stat = path.stat()
    return _shown_patient(str(path), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=256)
def _shown_patient(path: str, _size: int, _mtime_ns: int) -> ShownPatient:
    ds = read_instance(Path(path)).dataset
    sex = str(ds.get("PatientSex", "") or "").strip().upper()
    return ShownPatient(person_name(ds.get("PatientName")), _iso_date(ds.get("PatientBirthDate")),
                        sex if sex in ("M", "F", "O") else None)


def first_number(value: object) -> float | None:
    """The first value of a DICOM number (one value or several) as a float; ``None`` when there is none."""
    try:
        return float(value[0] if isinstance(value, Sequence) and not isinstance(value, str) else value)  # type: ignore[arg-type]
    except (TypeError, ValueError, IndexError):
        return None


def _file_window(instance: DicomInstance) -> tuple[float, float] | None:
    width = first_number(instance.dataset.get("WindowWidth"))
    centre = first_number(instance.dataset.get("WindowCenter"))
    return (width, centre) if width is not None and centre is not None and width > 0 else None


def _find(instances: Sequence[StoredInstance], uid: str) -> Path:
    for stored in instances:
        if stored.sop_instance_uid == uid and stored.path.is_file():
            return stored.path
    raise OutputNotFoundError(f"the source image {uid} is no longer stored", code="source_missing")


def radiograph_image(instances: Sequence[StoredInstance], uid: str) -> ViewerImage:
    """The radiograph whose SOP Instance UID is ``uid``, among the stored ``instances``.

    Raises:
        OutputNotFoundError: ``source_missing`` (404).
        InvalidInputError: Any reason of the DICOM reader, or ``not_greyscale``.
    """
    instance = read_instance(_find(instances, uid))
    values = instance.pixels(conversion=MODALITY_FLOAT32)
    if values.ndim != 2:
        raise InvalidInputError(f"expected one grey-level frame, got shape {values.shape}", code="not_greyscale")
    values = values[None]
    low, high = float(values.min()), float(values.max())
    window = _file_window(instance) or (max(high - low, 1.0), (high + low) / 2.0)
    invert = str(instance.dataset.get("PhotometricInterpretation", "")) == "MONOCHROME1"
    return ViewerImage(values, (uid,), window, invert, "")


def radiograph_summary(instances: Sequence[StoredInstance], uid: str) -> ImageSummary:
    """The summary of the radiograph ``uid`` among the stored ``instances`` (cached per file version).

    Raises:
        OutputNotFoundError: ``source_missing`` (404).
        InvalidInputError: Any reason of the DICOM reader, or ``not_greyscale``.
    """
    path = _find(instances, uid)
    stat = path.stat()
    return _radiograph_summary(str(path), stat.st_size, stat.st_mtime_ns, uid)


@lru_cache(maxsize=256)  # a few numbers each
def _radiograph_summary(path: str, _size: int, _mtime_ns: int, uid: str) -> ImageSummary:
    instance = read_instance(Path(path))
    rows, columns, low, high = (float(v) for v in instance.pixels(conversion=MODALITY_EXTENT))
    window = _file_window(instance) or (max(high - low, 1.0), (high + low) / 2.0)
    return ImageSummary(1, int(rows), int(columns), (low, high), window, "", (uid,))


@lru_cache(maxsize=2)  # a 512 x 512 x 300 series is 300 MiB of float32
def ct_series(stored: tuple[StoredInstance, ...], uid: str) -> ViewerImage:
    """The CT series ``uid`` among the ``stored`` instances, slices along the normal (cached).

    Raises:
        OutputNotFoundError: ``source_missing`` (404).
        InvalidInputError: Any reason of the reader or the series builder.
    """
    instances = [instance for entry in stored if entry.path.is_file()
                 if str((instance := read_instance(entry.path)).dataset.get("SeriesInstanceUID", "")) == uid]
    if not instances:
        raise OutputNotFoundError(f"the source series {uid} is no longer stored", code="source_missing")
    volume = build_volume(instances)
    window = _file_window(instances[0]) or CT_DEFAULT_WINDOW
    return ViewerImage(volume.voxels, volume.sop_instance_uids, window, False, "HU")


@dataclass(frozen=True)
class Segmentation:
    """A label volume on the source slices and the name of each label value."""

    labels: np.ndarray  # uint8 [slices, rows, columns]; 0 is background
    segments: tuple[tuple[int, str], ...]  # (label value = segment number, segment label)

    def busiest_slice(self) -> int:
        """The slice with the most labelled pixels (where the pre-read's own overlay was drawn)."""
        return int(np.argmax((self.labels > 0).reshape(len(self.labels), -1).sum(axis=1)))


@lru_cache(maxsize=4)
def segmentation(seg_file: str, sop_instance_uids: tuple[str, ...]) -> Segmentation:
    """The DICOM SEG at ``seg_file`` as labels on the slices ``sop_instance_uids`` (cached).

    Raises:
        InvalidInputError: ``unreadable_segmentation`` (not a SEG of these slices).
    """
    import highdicom as hd

    try:
        seg = hd.seg.segread(seg_file)
        labels = seg.get_pixels_by_source_instance(source_sop_instance_uids=list(sop_instance_uids),
                                                   combine_segments=True, skip_overlap_checks=True)
    except (ValueError, KeyError, AttributeError, TypeError, OSError) as exc:
        raise InvalidInputError(f"the segmentation cannot be read onto its series: {exc}",
                                code="unreadable_segmentation") from exc
    segments = tuple((int(s.SegmentNumber), str(s.SegmentLabel)) for s in seg.SegmentSequence)
    return Segmentation(np.asarray(labels, dtype=np.uint8), segments)
