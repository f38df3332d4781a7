"""One patient's stored study with a finished pre-read, slide read, ECG read and cohort job, written straight into
the store (no model runs): what the scope tests call every route against."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydicom import Dataset
from sqlalchemy.orm import Session

from cds.store import jobs
from cds.store.dicom_index import STORED, index_dataset


def _job(session: Session, kind: str, payload: dict[str, Any], outcome: dict[str, Any], *, subject: str = "",
         site: str = "") -> str:  # fmt: skip
    job_id = jobs.enqueue(session, kind=kind, payload=payload, actor="t", role="admin", subject=subject, site=site)
    row = jobs.get_job(session, job_id)
    row.state, row.result = "done", json.dumps(outcome)
    return job_id


def seed_reads(session: Session, folder: Path, *, patient: str, study: str, site: str = "") -> dict[str, str]:
    """Study ``study`` (instance ``<study>.1``, series ``<study>.2``) of ``patient`` and its four finished jobs,
    held for ``site``; the job ids by kind (``preread``, ``pathology``, ``ecg``, ``cohort``)."""
    sop, series = f"{study}.1", f"{study}.2"
    ds = Dataset()
    ds.SOPInstanceUID, ds.SOPClassUID, ds.StudyInstanceUID = sop, "1.2.840.10008.5.1.4.1.1.1", study
    ds.SeriesInstanceUID, ds.PatientID, ds.Modality = series, patient, "CR"
    finding = {"label": "Mass", "probability": 0.9, "threshold": 0.5, "positive": True}
    outcome = {"kind": "radiograph", "study_uid": study, "series_uid": series, "uid": sop,
               "model": "chest-xray-demo:1.0.0", "input_sha256": "0" * 64, "summary": [finding]}
    slide = {"status": "scored", "label": "tumour", "model": "pathology-demo:1.0.0", "input_sha256": "0" * 64,
             "outputs": ["result.json"]}
    ecg = {"rhythm": {"label": "sinus_rhythm", "evidence": "P waves"}, "measurements": {"heart_rate_bpm": 70.0},
           "model": "ecg-rhythm:1.0.1", "input_sha256": "0" * 64, "outputs": ["result.json"]}
    index_dataset(session, ds, folder / f"{sop}.dcm", origin=STORED, site=site)
    subject = f"Patient/{patient}"
    return {
        "preread": _job(session, "preread", {"instances": [{"path": f"/x/{sop}.dcm", "sop_instance_uid": sop,
                                                            "study_uid": study}], "output": "/x/o",
                                             "model": "chest-xray-demo"}, {"outcomes": [outcome], "refusals": []},
                        site=site),
        "pathology": _job(session, "pathology", {"file": "/x/s.tif", "output": "/x/p", "model": "pathology-demo"},
                          slide, subject=subject, site=site),
        "ecg": _job(session, "ecg", {"file": "/x/e.csv", "output": "/x/e", "model": "ecg-rhythm"}, ecg,
                    subject=subject, site=site),
        "cohort": _job(session, "risk_file", {"method": "pce", "input": "/x/c.csv", "output": "/x/c.parquet"},
                       {"rows": 1, "scored": 1, "out_of_range": 0, "errors": 0, "output": "c.parquet"}, site=site),
    }  # fmt: skip
