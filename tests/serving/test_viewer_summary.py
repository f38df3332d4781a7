"""What the viewer is told of a radiograph before it loads the pixels: the same numbers as decoding the whole film,
without the film's pixels coming back from the decoder process, and read again when the file changes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pydicom
import pytest

from cds.errors import InvalidInputError, OutputNotFoundError
from cds.results.jobs import StoredInstance
from cds.serving.ui import sources
from training.data.dicom_files import write_radiograph


def _stored(path: Path) -> StoredInstance:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return StoredInstance(path=path, sop_instance_uid=str(ds.SOPInstanceUID), study_uid=str(ds.StudyInstanceUID))


def test_the_summary_equals_what_the_decoded_film_gives(tmp_path: Path) -> None:
    film = write_radiograph(tmp_path / "film.dcm", np.random.default_rng(4).random((96, 160)))
    stored = _stored(film)
    full = sources.radiograph_image([stored], stored.sop_instance_uid)
    summary = sources.radiograph_summary([stored], stored.sop_instance_uid)
    assert (summary.slices, summary.rows, summary.columns) == full.values.shape == (1, 96, 160)
    assert summary.value_range == full.value_range and summary.default_window == full.default_window
    assert summary.sop_instance_uids == (stored.sop_instance_uid,) and summary.units == ""


def test_the_file_window_is_the_default_and_a_rewritten_file_is_read_again(tmp_path: Path) -> None:
    film = write_radiograph(tmp_path / "film.dcm", np.linspace(0, 1, 64 * 64).reshape(64, 64))
    stored = _stored(film)
    first = sources.radiograph_summary([stored], stored.sop_instance_uid)
    assert first.value_range == (0.0, 4095.0)
    ds = pydicom.dcmread(film)
    ds.WindowWidth, ds.WindowCenter = 1000, 700
    ds.PixelData = (np.asarray(ds.pixel_array) // 2).astype(np.uint16).tobytes()
    ds.save_as(film)
    os.utime(film, ns=(0, os.stat(film).st_mtime_ns + 1_000_000))  # a new version even within the clock's tick
    second = sources.radiograph_summary([stored], stored.sop_instance_uid)
    assert second.value_range == (0.0, 2047.0) and second.default_window == (1000.0, 700.0)


def test_a_missing_or_colour_source_is_refused(tmp_path: Path) -> None:
    film = write_radiograph(tmp_path / "film.dcm", np.zeros((32, 32)))
    stored = _stored(film)
    with pytest.raises(OutputNotFoundError) as missing:
        sources.radiograph_summary([stored], "1.2.3.4")
    assert missing.value.code == "source_missing"
    ds = pydicom.dcmread(film)
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = np.zeros((32, 32, 3), np.uint8).tobytes()
    ds.save_as(film)
    with pytest.raises(InvalidInputError) as colour:
        sources.radiograph_summary([stored], stored.sop_instance_uid)
    assert colour.value.code == "not_greyscale", colour.value.message
