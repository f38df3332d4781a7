"""Fuzz the ECG readers and everything before the model: a file as a clinic or cart sends it, to the rhythm rules.

Each input is written as a DICOM, HL7 aECG or CSV file (its first byte picks which, so the mutations reach every
reader) and read by :func:`~cds.pipelines.ecg.readers.read_ecg`; what is read goes through lead quality,
measurements, the rule-based rhythm and the flags, as a read does before the classifier. A finding is any exception
other than an :class:`~cds.errors.InvalidInputError` (``invalid_ecg``, ``not_ecg``, ``truncated``,
``wrong_lead_set``, ``wrong_sample_rate``, ``too_short``, ``unreadable_ecg`` and the readers' other reasons), or a
hang. Seeds: pydicom's real 12-lead ECG, and generated ECGs written as CSV and aECG.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

INSTRUMENT = ("cds",)
SUFFIXES = (".dcm", ".xml", ".csv")
SCRATCH = Path(tempfile.mkdtemp(prefix="cds-fuzz-ecg-"))


def prepare() -> None:
    """Import the readers and the measurement code (instrumented, when atheris calls this)."""
    import cds.pipelines.ecg.flags
    import cds.pipelines.ecg.measurements
    import cds.pipelines.ecg.readers
    import cds.pipelines.ecg.rhythm  # noqa: F401


def one_input(data: bytes) -> None:
    """Read ``data`` as an ECG file and measure it."""
    from cds.errors import InvalidInputError
    from cds.pipelines.ecg.flags import ecg_flags
    from cds.pipelines.ecg.measurements import measure
    from cds.pipelines.ecg.quality import record_quality
    from cds.pipelines.ecg.readers import read_ecg
    from cds.pipelines.ecg.rhythm import classify_rhythm

    if not data:
        return
    path = SCRATCH / f"input{SUFFIXES[data[0] % len(SUFFIXES)]}"
    path.write_bytes(data[1:])
    with contextlib.suppress(InvalidInputError):
        record = read_ecg(path)
        quality = record_quality(record)
        beats = measure(record, quality)
        ecg_flags(beats.measurements, classify_rhythm(beats, record.sampling_hz), quality, sex=None, age_years=None)


def _csv(signals: object, fs: float) -> bytes:
    import numpy as np

    from cds.pipelines.ecg.record import STANDARD_LEADS

    values = np.asarray(signals)
    rows = [f"# sampling_hz: {fs:g}", "# unit: uV", ",".join(STANDARD_LEADS)]
    rows += [",".join(f"{v * 1000:.0f}" for v in sample) for sample in values.T]
    return "\n".join(rows).encode()


def _aecg(signals: object, fs: float) -> bytes:
    import numpy as np

    from cds.pipelines.ecg.record import STANDARD_LEADS

    values = np.asarray(signals)
    codes = {"aVR": "AVR", "aVL": "AVL", "aVF": "AVF"}
    sequences = [f'<sequence><code code="TIME_ABSOLUTE"/><value><head value="0"/><increment value="{1 / fs:g}" '
                 'unit="s"/></value></sequence>']  # fmt: skip
    for i, lead in enumerate(STANDARD_LEADS):
        digits = " ".join(f"{v * 1000:.0f}" for v in values[i])
        sequences.append(f'<sequence><code code="MDC_ECG_LEAD_{codes.get(lead, lead)}"/><value><origin value="0" '
                         f'unit="uV"/><scale value="1" unit="uV"/><digits>{digits}</digits></value></sequence>')
    return ('<AnnotatedECG xmlns="urn:hl7-org:v3"><component><series><component><sequenceSet>'
            + "".join(f"<component>{s}</component>" for s in sequences)
            + "</sequenceSet></component></series></component></AnnotatedECG>").encode()


def seeds() -> Iterator[tuple[str, bytes]]:
    """The seeds: pydicom's real ECG, and generated ECGs (250 Hz, 8 s, to keep inputs small) as CSV and aECG."""
    import numpy as np
    from pydicom.data import get_testdata_file

    from training.data.ecg_signals import generate_ecg

    real = Path(str(get_testdata_file("waveform_ecg.dcm", download=False)))
    yield "real.dcm", bytes([SUFFIXES.index(".dcm")]) + real.read_bytes()
    for index, rhythm in enumerate(("sinus_rhythm", "atrial_fibrillation", "frequent_ectopy")):
        ecg = generate_ecg(np.random.default_rng([950_000, index]), rhythm, sampling_hz=250, duration_s=8)
        yield f"{rhythm}.csv", bytes([SUFFIXES.index(".csv")]) + _csv(ecg.signals, 250)
        yield f"{rhythm}.xml", bytes([SUFFIXES.index(".xml")]) + _aecg(ecg.signals, 250)


if __name__ == "__main__":
    from fuzz.harness import main

    main("fuzz.ecg_reader", INSTRUMENT)
