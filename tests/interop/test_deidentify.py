"""De-identification against PS3.15 Table E.1-1 on pydicom's bundled files."""

from __future__ import annotations

import copy
import datetime as dt
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom import config
from pydicom.data import get_testdata_file
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from cds.errors import InvalidInputError
from cds.interop.deid_profile import PATIENT_CHARACTERISTICS, action_for, listed_tags
from cds.interop.deidentify import DeidOptions, deidentify, remap_uid
from tests.support.dciodvfy import dciodvfy_errors, needs_dciodvfy

KEY = b"consortium-test-key-0123456789ab"
OTHER_KEY = b"another-secret-key-0123456789abc"
FILES = ["CT_small.dcm", "MR_small.dcm", "waveform_ecg.dcm", "rtplan.dcm", "rtstruct.dcm", "rtdose.dcm"]
pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR UI")  # rtdose.dcm's own references
UID_RE = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")


def _load(name: str) -> Dataset:
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"{name} is not bundled with this pydicom")
    return pydicom.dcmread(path, force=True)


def _walk(ds: Dataset) -> Iterator[DataElement]:
    yield from ds.iterall()


def _values(elem: DataElement) -> list[str]:
    if elem.VR == "SQ" or elem.VM == 0 or elem.value is None:
        return []
    raw = [elem.value] if elem.VM == 1 else list(elem.value)
    return [str(v) for v in raw if str(v).strip()]


def _listed_values(ds: Dataset) -> dict[int, set[str]]:
    found: dict[int, set[str]] = {}
    for elem in _walk(ds):
        if not elem.tag.is_private and action_for(elem.tag) is not None:
            found.setdefault(int(elem.tag), set()).update(_values(elem))
    return found


def test_the_table_is_ps3_15_e1_1() -> None:
    assert action_for(0x00100010) == "Z"  # Patient's Name
    assert action_for(0x00100020) == "Z/D"  # Patient ID
    assert action_for(0x00080018) == "U"  # SOP Instance UID
    assert action_for(0x00081155) == "U"  # Referenced SOP Instance UID
    assert action_for(0x00081140) == "X/Z/U*"  # Referenced Image Sequence
    assert action_for(0x60023000) == "X"  # Overlay Data, repeating group 60xx
    assert action_for(0x00080016) is None  # SOP Class UID is kept
    assert len(listed_tags()) > 500


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("retain", [True, False])
def test_no_listed_attribute_keeps_its_identifying_value(name: str, retain: bool) -> None:
    source = _load(name)
    options = DeidOptions(retain_modified_dates=retain, retain_patient_characteristics=retain)
    out = deidentify(source, key=KEY, options=options).dataset
    before = _listed_values(source)
    for elem in _walk(out):
        assert not elem.tag.is_private, f"private {elem.tag} kept"
        tag = int(elem.tag)
        if tag in (0x00100020, 0x00100010) or tag not in before:
            continue
        if retain and (tag in PATIENT_CHARACTERISTICS or elem.VR == "TM"):
            continue  # kept by the options
        kept = set(_values(elem)) & before[tag]
        assert not kept, f"{elem.keyword or elem.tag} kept {kept}"
    identifiers = {str(source.PatientID), str(source.get("PatientName", "")).strip()} - {""}
    for elem in _walk(out):
        for value in _values(elem):
            assert not any(ident in value for ident in identifiers), f"{elem.keyword} carries {value}"
    assert out.PatientIdentityRemoved == "YES"
    assert out.LongitudinalTemporalInformationModified == ("MODIFIED" if retain else "REMOVED")
    codes = [item.CodeValue for item in out.DeidentificationMethodCodeSequence]
    assert codes == (["113100", "113107", "113108"] if retain else ["113100"])
    assert all(item.CodingSchemeDesignator == "DCM" for item in out.DeidentificationMethodCodeSequence)


def _shift(before: Dataset, after: Dataset) -> dt.timedelta:
    """The offset of the first date present in both (Study Date when there is one)."""
    tag = next(e.tag for e in before if e.VR == "DA" and e.value and e.tag in after and after[e.tag].value)

    def day(ds: Dataset) -> dt.date:
        return dt.datetime.strptime(str(ds[tag].value), "%Y%m%d").date()

    return day(after) - day(before)


def test_dates_shift_by_one_offset_per_patient() -> None:
    first = _load("CT_small.dcm")
    second = copy.deepcopy(first)  # a later study of the same patient
    second.StudyInstanceUID = "1.2.3.4.5"
    second.StudyDate = "20060302"
    second.SeriesDate = "20060302"
    other = _load("MR_small.dcm")
    outs = [deidentify(ds, key=KEY).dataset for ds in (first, second, other)]
    shift = _shift(first, outs[0])
    assert shift.days < 0
    assert _shift(second, outs[1]) == shift
    assert _shift(other, outs[2]) != shift
    for elem in _walk(outs[0]):  # every date in the dataset moved by the same offset
        if elem.VR == "DA" and elem.value and elem.tag in first:
            original = dt.datetime.strptime(str(first[elem.tag].value), "%Y%m%d").date()
            assert dt.datetime.strptime(str(elem.value), "%Y%m%d").date() - original == shift
    assert outs[0].StudyTime == first.StudyTime  # times of day kept under Modified Dates
    assert not outs[0].PatientBirthDate  # never retained


def test_uids_are_consistent_and_valid() -> None:
    one = _load("CT_small.dcm")
    two = copy.deepcopy(one)  # the next image of the same series
    two.SOPInstanceUID = one.SOPInstanceUID + ".2"
    a, b = (deidentify(ds, key=KEY).dataset for ds in (one, two))
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
        assert a[keyword].value == b[keyword].value == remap_uid(one[keyword].value, key=KEY)
        assert a[keyword].value != one[keyword].value
    assert a.SOPInstanceUID != b.SOPInstanceUID
    assert a.file_meta.MediaStorageSOPInstanceUID == a.SOPInstanceUID
    assert a.SOPClassUID == one.SOPClassUID
    for ds in (a, b):
        for elem in _walk(ds):
            if elem.VR == "UI":
                assert all(len(v) <= 64 and UID_RE.match(v) for v in _values(elem)), elem


def test_references_follow_their_targets() -> None:
    struct = _load("rtstruct.dcm")
    plan = _load("rtplan.dcm")
    plan.PatientID = struct.PatientID
    plan.ReferencedStructureSetSequence[0].ReferencedSOPInstanceUID = struct.SOPInstanceUID
    s_out, p_out = (deidentify(ds, key=KEY).dataset for ds in (struct, plan))
    assert p_out.ReferencedStructureSetSequence[0].ReferencedSOPInstanceUID == s_out.SOPInstanceUID
    frame = s_out.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID
    assert frame == remap_uid(struct.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID, key=KEY)
    for roi, original in zip(s_out.StructureSetROISequence, struct.StructureSetROISequence, strict=True):
        assert roi.ReferencedFrameOfReferenceUID == remap_uid(original.ReferencedFrameOfReferenceUID, key=KEY)
    assert _shift(struct, s_out) == _shift(plan, p_out)  # one patient, one offset


def test_same_key_same_output_other_key_other_pseudonyms() -> None:
    source = _load("MR_small.dcm")
    first, again = deidentify(source, key=KEY), deidentify(source, key=KEY)
    other = deidentify(source, key=OTHER_KEY)
    assert first.dataset.to_json_dict() == again.dataset.to_json_dict()
    assert first.pseudonym == again.pseudonym == first.dataset.PatientID
    assert other.pseudonym != first.pseudonym
    assert other.dataset.StudyInstanceUID != first.dataset.StudyInstanceUID
    assert first.summary == again.summary


def test_burned_in_annotation_is_refused_unless_flagged() -> None:
    capture = _load("SC_rgb_small_odd.dcm")
    with pytest.raises(InvalidInputError) as caught:
        deidentify(capture, key=KEY)
    assert caught.value.code == "burned_in_annotation"
    flagged = deidentify(capture, key=KEY, options=DeidOptions(allow_burned_in=True))
    assert flagged.flags == ("burned_in_annotation",)
    ct = _load("CT_small.dcm")
    ct.BurnedInAnnotation = "YES"
    with pytest.raises(InvalidInputError, match="burned_in_annotation"):
        deidentify(ct, key=KEY)
    assert deidentify(_load("CT_small.dcm"), key=KEY).flags == ()


def test_patient_characteristics_option() -> None:
    source = _load("CT_small.dcm")
    source.PatientSize = "1.8"
    kept = deidentify(source, key=KEY, options=DeidOptions(retain_patient_characteristics=True)).dataset
    for keyword in ("PatientSex", "PatientAge", "PatientWeight", "PatientSize"):
        assert kept[keyword].value == source[keyword].value
    gone = deidentify(source, key=KEY, options=DeidOptions(retain_patient_characteristics=False)).dataset
    assert not gone.PatientSex  # Z: zero length
    for keyword in ("PatientAge", "PatientWeight", "PatientSize"):
        assert keyword not in gone  # X: removed


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "waveform_ecg.dcm"])
def test_pixels_unchanged_and_output_reads_back(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    source = _load(name)
    snapshot = source.to_json_dict()
    result = deidentify(source, key=KEY)
    assert source.to_json_dict() == snapshot  # the input is left alone
    out = result.dataset
    if "PixelData" in source:
        assert out.PixelData == source.PixelData
    else:
        assert out.WaveformSequence[0].WaveformData == source.WaveformSequence[0].WaveformData
    monkeypatch.setattr(config.settings, "writing_validation_mode", config.RAISE)
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, out, enforce_file_format=True)
    back = pydicom.dcmread(io.BytesIO(buffer.getvalue()))
    assert back.PatientID == result.pseudonym
    assert back.SOPInstanceUID == out.SOPInstanceUID
    assert back.DeidentificationMethodCodeSequence[0].CodeValue == "113100"


def test_summary_states_what_was_done() -> None:
    summary = deidentify(_load("CT_small.dcm"), key=KEY).summary
    assert "PatientID" in summary.replaced
    assert "InstitutionName" in summary.removed
    assert "StudyDate" in summary.dates_shifted
    assert summary.uids_remapped >= 4
    assert summary.private_removed > 0


def test_free_text_in_content_sequence_does_not_survive() -> None:
    source = _load("CT_small.dcm")
    item = Dataset()
    item.ValueType = "TEXT"
    item.TextValue = f"seen by Dr. Who for {source.PatientName}"
    source.ContentSequence = [item]
    out = deidentify(source, key=KEY).dataset
    assert len(out.ContentSequence) == 0
    assert all("Dr. Who" not in v for e in _walk(out) for v in _values(e))


def test_errors_carry_reason_codes() -> None:
    source = _load("CT_small.dcm")
    with pytest.raises(InvalidInputError) as short:
        deidentify(source, key=b"short")
    assert short.value.code == "invalid_key"
    del source.PatientID
    with pytest.raises(InvalidInputError) as missing:
        deidentify(source, key=KEY)
    assert missing.value.code == "missing_patient_id"


@needs_dciodvfy
def test_dciodvfy_reports_no_new_errors(tmp_path: Path) -> None:
    source = _load("CT_small.dcm")
    before, after = tmp_path / "in.dcm", tmp_path / "out.dcm"
    source.save_as(before)
    deidentify(source, key=KEY).dataset.save_as(after, enforce_file_format=True)
    assert dciodvfy_errors(after) <= dciodvfy_errors(before)
