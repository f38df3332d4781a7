"""Reading a 12-lead ECG from what clinics and carts send, defensively, into an :class:`EcgRecord`.

Formats, told apart by content (not only by name):

- **DICOM** 12-Lead ECG and General ECG Waveform Storage (pydicom's waveform support; the rhythm multiplex group,
  not the median beat; channel sensitivity and units applied);
- **WFDB** records (``.hea`` + signal file, through ``wfdb``; the header read first, so an overlong record is
  refused before its samples are);
- **HL7 aECG** (HL7 v3 AnnotatedECG XML; parsed with ``defusedxml``: no entities, no external references);
- **CSV**, one documented layout: optional ``# sampling_hz: 500`` and ``# unit: uV`` comment lines (unit mV, µV
  or V; default µV), a header row naming the leads (``I, II, V1`` ... or ``aVR``-style names), then one row per
  sample; or a first column ``time_s`` from which the sampling rate is taken.

Every refusal is an :class:`~cds.errors.InvalidInputError` with a reason code: ``input_too_large``,
``unsupported_format``, ``not_ecg``, ``truncated``, ``invalid_ecg``, ``missing_sampling_rate``,
``unsupported_unit``, ``wrong_lead_set``, and the contract's ``wrong_sample_rate``, ``too_short``, ``too_long``.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

from cds.errors import InvalidInputError
from cds.pipelines.ecg.record import (
    RESTING_12_LEAD,
    EcgContract,
    EcgRecord,
    check_contract,
    lead_name,
    standardise,
    to_millivolts,
)

MAX_ECG_BYTES = 64 * 2**20  # a 12-lead resting ECG is kilobytes to a few megabytes
MAX_TEXT_ECG_BYTES = 24 * 2**20  # parsed text takes several times its size in memory: a tighter cap
ECG_SOP_CLASSES = {"1.2.840.10008.5.1.4.1.1.9.1.1": "12-lead ECG", "1.2.840.10008.5.1.4.1.1.9.1.2": "General ECG"}


def read_ecg(path: Path, *, contract: EcgContract = RESTING_12_LEAD, name: str | None = None) -> EcgRecord:
    """Read, standardise and check one ECG file (for WFDB, the ``.hea`` or the signal file beside it).

    Raises:
        InvalidInputError: The reason code of the first problem found (see the module docstring).
    """
    source = name or path.name
    try:
        size = path.stat().st_size
    except OSError:
        raise InvalidInputError(f"{source}: cannot be read", code="input_missing") from None
    if size > MAX_ECG_BYTES:
        raise InvalidInputError(f"{source}: {size} bytes; an ECG file of at most {MAX_ECG_BYTES} is read",
                                code="input_too_large")  # fmt: skip
    if path.suffix.lower() in (".hea", ".dat") or path.with_suffix(".hea").exists():
        record = replace(_wfdb(path.with_suffix(""), source, contract), format="wfdb")
    else:
        data = path.read_bytes()
        if not data:
            raise InvalidInputError(f"{source}: the file is empty", code="invalid_ecg")
        if data[128:132] == b"DICM" or path.suffix.lower() == ".dcm":
            record = replace(_dicom(data, source), format="dicom")
        elif data.lstrip()[:1] == b"<":
            record = replace(_aecg(_text_sized(data, source), source), format="aecg")
        elif path.suffix.lower() in (".csv", ".txt"):
            record = replace(_csv(_text_sized(data, source), source), format="csv")
        else:
            raise InvalidInputError(f"{source}: not DICOM, WFDB, HL7 aECG or the CSV layout",
                                    code="unsupported_format")  # fmt: skip
    check_contract(record, contract)
    return record


def _text_sized(data: bytes, source: str) -> bytes:
    """``data``, if a text ECG (aECG, CSV) of its size can be parsed without memory to spare going into it.

    Raises:
        InvalidInputError: ``input_too_large``.
    """
    if len(data) > MAX_TEXT_ECG_BYTES:
        raise InvalidInputError(f"{source}: {len(data)} bytes of text; an XML or CSV ECG of at most "
                                f"{MAX_TEXT_ECG_BYTES} bytes is read (60 s of 12 leads at 2000 Hz is about 12 MB)",
                                code="input_too_large")  # fmt: skip
    return data


def _dicom(data: bytes, source: str) -> EcgRecord:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(io.BytesIO(data))
        for _element in ds.iterall():  # pydicom converts values when first touched: touch them all here
            pass
        for _element in ds.file_meta.iterall():
            pass
    except (EOFError, OSError) as exc:  # the data ended inside an element
        raise InvalidInputError(f"{source}: the DICOM file ends early ({type(exc).__name__})",
                                code="truncated") from None  # fmt: skip
    except InvalidDicomError as exc:
        raise InvalidInputError(f"{source}: not a DICOM file ({type(exc).__name__})", code="invalid_ecg") from None
    except Exception as exc:  # noqa: BLE001 - only pydicom's parser runs on the untrusted bytes here, and it raises
        # many kinds on a malformed file (BytesLengthException for a value of the wrong length, RecursionError for
        # endless nesting, struct.error, ...): all of them mean "unreadable"
        raise InvalidInputError(f"{source}: not a readable DICOM file ({type(exc).__name__})",
                                code="invalid_ecg") from None  # fmt: skip
    sop_class = str(ds.get("SOPClassUID", ""))
    if sop_class not in ECG_SOP_CLASSES or "WaveformSequence" not in ds:
        raise InvalidInputError(f"{source}: DICOM {sop_class or 'without a SOP class'} is not an ECG waveform",
                                code="not_ecg")  # fmt: skip
    groups = list(ds.WaveformSequence)
    index = next((i for i, g in enumerate(groups) if str(g.get("MultiplexGroupLabel", "")).upper() == "RHYTHM"), 0)
    group = groups[index]
    try:
        samples = ds.waveform_array(index)  # [samples, channels], sensitivity and baseline applied
        leads: dict[str, np.ndarray] = {}
        for channel, definition in enumerate(group.ChannelDefinitionSequence):
            label = lead_name(str(definition.ChannelSourceSequence[0].CodeMeaning))
            unit_sequence = definition.get("ChannelSensitivityUnitsSequence")
            unit = str(unit_sequence[0].CodeValue) if unit_sequence else "uV"
            if label is not None and label not in leads:
                leads[label] = to_millivolts(samples[:, channel], unit, source)
        sampling = float(group.SamplingFrequency)
    except InvalidInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - pydicom and NumPy on malformed waveform attributes, as above
        raise InvalidInputError(f"{source}: the waveform cannot be read ({type(exc).__name__})",
                                code="truncated") from None  # fmt: skip
    metadata = {key: str(ds.get(key)) for key in ("AcquisitionDateTime", "Manufacturer", "PatientSex", "PatientAge",
                                                  "StudyInstanceUID", "SOPInstanceUID") if ds.get(key)}  # fmt: skip
    age = _age_years(ds)
    if age is not None:
        metadata["age_years"] = f"{age:g}"
    return standardise(leads, sampling, source, metadata=metadata)


def _age_years(ds: object) -> float | None:
    """The patient's age at acquisition: Patient's Age (``045Y``, ``006M``) or birth date to acquisition date."""
    import datetime as dt

    text = str(getattr(ds, "PatientAge", "") or "")
    match = re.fullmatch(r"(\d{3})([DWMY])", text.strip())
    if match:
        return round(int(match.group(1)) / {"D": 365.25, "W": 52.18, "M": 12.0, "Y": 1.0}[match.group(2)], 2)
    born = str(getattr(ds, "PatientBirthDate", "") or "")
    taken = str(getattr(ds, "AcquisitionDateTime", "") or getattr(ds, "StudyDate", "") or "")[:8]
    try:
        start, end = dt.datetime.strptime(born, "%Y%m%d"), dt.datetime.strptime(taken, "%Y%m%d")
    except ValueError:
        return None
    years = (end - start).days / 365.25
    return round(years, 2) if 0 <= years < 130 else None


def _wfdb(record: Path, source: str, contract: EcgContract) -> EcgRecord:
    import wfdb

    try:
        header = wfdb.rdheader(str(record))
    except (OSError, ValueError, TypeError, IndexError) as exc:
        raise InvalidInputError(f"{source}: no readable WFDB header ({type(exc).__name__})",
                                code="invalid_ecg") from None  # fmt: skip
    if not header.fs or header.fs <= 0:
        raise InvalidInputError(f"{source}: the WFDB header gives no sampling rate", code="missing_sampling_rate")
    if header.sig_len and header.sig_len / header.fs > contract.max_s:
        raise InvalidInputError(f"{source}: {header.sig_len / header.fs:.0f} s long; a resting ECG of at most "
                                f"{contract.max_s:g} s is read", code="too_long")  # fmt: skip
    for name in set(header.file_name or ()):  # the signal files the header names, before any is read
        signal_file = record.parent / str(name)
        if signal_file.is_file() and signal_file.stat().st_size > MAX_ECG_BYTES:
            raise InvalidInputError(f"{source}: signal file of {signal_file.stat().st_size} bytes; at most "
                                    f"{MAX_ECG_BYTES} are read", code="input_too_large")  # fmt: skip
    try:
        signal = wfdb.rdrecord(str(record), physical=True)
    except (OSError, ValueError, TypeError, IndexError) as exc:
        raise InvalidInputError(f"{source}: the WFDB signal cannot be read whole ({type(exc).__name__})",
                                code="truncated") from None  # fmt: skip
    values = signal.p_signal
    if values is None or values.shape[0] != (header.sig_len or values.shape[0]):
        raise InvalidInputError(f"{source}: the signal file is shorter than its header says", code="truncated")
    leads: dict[str, np.ndarray] = {}
    for channel, (label, unit) in enumerate(zip(signal.sig_name, signal.units, strict=True)):
        name = lead_name(str(label))
        if name is not None and name not in leads:
            leads[name] = to_millivolts(values[:, channel], str(unit), source)
    return standardise(leads, float(header.fs), source)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _aecg(data: bytes, source: str) -> EcgRecord:
    from xml.etree.ElementTree import ParseError  # noqa: S405 - parsing is done by defusedxml below

    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    try:
        root = fromstring(data)
    except (ParseError, DefusedXmlException, ValueError) as exc:
        raise InvalidInputError(f"{source}: not well-formed XML, or XML with entities ({type(exc).__name__})",
                                code="invalid_ecg") from None  # fmt: skip
    if _local(root.tag) != "AnnotatedECG":
        raise InvalidInputError(f"{source}: XML {_local(root.tag)!r} is not an HL7 AnnotatedECG", code="not_ecg")
    sets = [element for element in root.iter() if _local(element.tag) == "sequenceSet"]
    if not sets:
        raise InvalidInputError(f"{source}: an AnnotatedECG without a sequenceSet", code="invalid_ecg")
    sampling: float | None = None
    leads: dict[str, np.ndarray] = {}
    for sequence in (e for e in sets[0].iter() if _local(e.tag) == "sequence"):
        code = next((e.get("code", "") for e in sequence if _local(e.tag) == "code"), "")
        value = next((e for e in sequence if _local(e.tag) == "value"), None)
        if value is None:
            continue
        parts = {_local(e.tag): e for e in value}
        if code.startswith("TIME_") and "increment" in parts:
            try:
                increment = float(parts["increment"].get("value", "0"))
            except ValueError:
                raise InvalidInputError(f"{source}: the time increment is not a number",
                                        code="missing_sampling_rate") from None  # fmt: skip
            unit = parts["increment"].get("unit", "s")
            seconds = increment / 1000 if unit == "ms" else increment
            sampling = 1.0 / seconds if seconds > 0 else None
            continue
        name = lead_name(code)
        if name is None or "digits" not in parts or name in leads:
            continue
        try:
            digits = np.array((parts["digits"].text or "").split(), dtype=np.float64)
            origin = float(parts["origin"].get("value", "0")) if "origin" in parts else 0.0
            scale = parts.get("scale")
            factor = float(scale.get("value", "1")) if scale is not None else 1.0
            unit = scale.get("unit", "uV") if scale is not None else "uV"
        except ValueError:
            raise InvalidInputError(f"{source}: lead {name} has samples that are not numbers",
                                    code="invalid_ecg") from None  # fmt: skip
        leads[name] = to_millivolts(origin + factor * digits, unit, source)
    if sampling is None:
        raise InvalidInputError(f"{source}: no time sequence with an increment: sampling rate unknown",
                                code="missing_sampling_rate")  # fmt: skip
    return standardise(leads, sampling, source)


_SETTING = re.compile(r"^#\s*(\w+)\s*[:=]\s*(\S+)")


def _csv(data: bytes, source: str) -> EcgRecord:
    settings, lines = _csv_lines(data)
    try:
        header = [cell.strip() for cell in next(csv.reader([next(lines)]))]
        first = next(lines)
    except StopIteration:
        raise InvalidInputError(f"{source}: a header row and samples are needed", code="invalid_ecg") from None
    try:  # NumPy's own parser, row by row: no list of strings the size of the file
        values = np.loadtxt(itertools.chain([first], lines), delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError:
        raise InvalidInputError(f"{source}: a row that is not {len(header)} numbers separated by commas",
                                code="invalid_ecg") from None  # fmt: skip
    if values.shape[1] != len(header):
        raise InvalidInputError(f"{source}: rows with a different number of columns than the header",
                                code="invalid_ecg")  # fmt: skip
    sampling = _csv_sampling(settings, header, values)
    if sampling is None:
        raise InvalidInputError(f"{source}: give '# sampling_hz: 500' or a first column time_s",
                                code="missing_sampling_rate")  # fmt: skip
    unit = settings.get("unit", "uV")
    leads: dict[str, np.ndarray] = {}
    for column, label in enumerate(header):
        name = lead_name(label)
        if name is not None and name not in leads:
            leads[name] = to_millivolts(values[:, column], unit, source)
    return standardise(leads, sampling, source)


def _csv_lines(data: bytes) -> tuple[dict[str, str], Iterator[str]]:
    """The ``# key: value`` settings of a CSV ECG, and its other non-empty lines (the header row first)."""
    text = data.decode("utf-8-sig", errors="replace")
    settings: dict[str, str] = {}
    for line in text.splitlines():
        if not line.lstrip().startswith("#"):
            if line.strip():
                break  # settings come before the header row
            continue
        match = _SETTING.match(line)
        if match:
            settings[match.group(1).lower()] = match.group(2)
    lines = (line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))
    return settings, lines


def _csv_sampling(settings: dict[str, str], header: list[str], values: np.ndarray) -> float | None:
    """The sampling rate a CSV ECG states, or that its ``time_s`` column implies."""
    if "sampling_hz" in settings:
        try:
            rate = float(settings["sampling_hz"])
        except ValueError:
            return None
        return rate if rate > 0 else None
    if header[0].lower() == "time_s" and len(values) > 1:
        step = float(np.median(np.diff(values[:, 0])))
        return 1.0 / step if step > 0 else None
    return None
