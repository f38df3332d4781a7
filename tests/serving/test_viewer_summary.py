"""What the viewer is told of a radiograph before it loads the pixels: the same numbers as decoding the whole film,
without the film's pixels coming back from the decoder process, and read again when the file changes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataelem import DataElement

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


@pytest.mark.parametrize(("stored", "shown"), [
    ("Wang^Fang=王^芳", "王芳 (Wang Fang)"), ("=王^芳", "王芳"), ("DOE^JANE^^DR", "DOE JANE DR"), ("", None),
    ("^", None)])
def test_a_person_name_reads_as_people_write_it(stored: str, shown: str | None) -> None:
    assert sources.person_name(stored) == shown


G1_GB2312 = b"\x1b$)A"  # ISO 2022 IR 58 designated to G1


@pytest.mark.parametrize(("charset", "raw"), [
    ("GB18030", "Wang^Fang=王^芳".encode("gb18030")),
    (["", "ISO 2022 IR 58"], b"Wang^Fang=" + G1_GB2312 + "王".encode("gb2312") + b"^" + G1_GB2312
     + "芳".encode("gb2312")),
    ("ISO_IR 192", "Wang^Fang=王^芳".encode())], ids=["GB18030", "ISO 2022 IR 58", "UTF-8"])
def test_the_patient_shown_comes_from_the_films_header(tmp_path: Path, charset: object, raw: bytes) -> None:
    film = write_radiograph(tmp_path / "film.dcm", np.zeros((32, 32)))
    ds = pydicom.dcmread(film)
    ds.SpecificCharacterSet = charset  # as Chinese modalities write names
    ds["PatientName"] = DataElement(0x00100010, "PN", raw)
    ds.PatientBirthDate, ds.PatientSex = "19660412", "F"
    ds.save_as(film)
    stored = _stored(film)
    patient = sources.shown_patient([stored], stored.sop_instance_uid)
    assert (patient.name, patient.birth_date, patient.sex) == ("王芳 (Wang Fang)", "1966-04-12", "F")
    ds.SpecificCharacterSet, ds.PatientName, ds.PatientSex = "ISO_IR 100", "Li^Lei", "X"
    del ds.PatientBirthDate
    ds.save_as(film)
    os.utime(film, ns=(0, os.stat(film).st_mtime_ns + 1_000_000))
    again = sources.shown_patient([stored], stored.sop_instance_uid)
    assert (again.name, again.birth_date, again.sex) == ("Li Lei", None, None)  # re-read; an unknown sex is left out
