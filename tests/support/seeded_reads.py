"""One patient's stored study with a finished pre-read, slide read, ECG read and cohort job, and what is kept about
them per patient (a risk result, an alert, an observation, a registry entry, a shared result), written straight into
the store (no model runs): what the scope tests call every route against."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

from pydicom import Dataset
from sqlalchemy.orm import Session

from cds.results.alerts import AlertLevel, Signal
from cds.store import jobs, registry
from cds.store.alerts import raise_alert
from cds.store.audit import Actor
from cds.store.dicom_index import STORED, index_dataset
from cds.store.results import release_result
from cds.store.tables import ObservationRow, SharedResultRow


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
             "outputs": ["result.json"], "finding": {"label": "tumour", "probability": 0.9, "threshold": 0.5,
                                                     "positive": True}}  # fmt: skip
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


def seed_records(session: Session, *, patient: str, site: str = "") -> dict[str, str]:
    """What is kept per patient rather than per job, for ``patient`` at ``site``: a risk result, an open alert, an
    observation (source ``Observation/hr-<patient>``), a hypertension registry entry and an imported shared result;
    their ids (``result``, ``alert``, ``shared``)."""
    now = dt.datetime.now(dt.UTC)
    subject, actor = f"Patient/{patient}", Actor("t", "clinician", site=site)
    result = release_result(session, kind="risk", subject=subject, method="pce@2013", input_sha256="0" * 64,
                            payload={}, actor=actor)  # fmt: skip
    alert, _ = raise_alert(session, patient=subject, family="news2", result_id=result, now=now, actor=actor,
                           signal=Signal(("news2_urgent",), AlertLevel.URGENT, "NEWS2 5"))  # fmt: skip
    session.add(ObservationRow(id=f"hr-{patient}", site=site, patient=subject, field="heart_rate", value=70.0,
                               effective=now, source=f"Observation/hr-{patient}", device="", received_at=now))
    registry.enroll(session, patient=subject, condition="hypertension", site=site or "default",
                    enrolled_on=now.date(), birth_date=None, source="test", enrolled_by="t")  # fmt: skip
    shared = str(uuid.uuid4())
    session.add(SharedResultRow(id=shared, content_sha256=hashlib.sha256(shared.encode()).hexdigest(),
                                origin_site="hub", kid="k", signed_at="2026-12-01T00:00:00+00:00",
                                report_identifier="urn:uuid:r", report_status="final", subject=subject, title="CXR",
                                bundle=json.dumps({"resourceType": "Bundle", "note": patient}), imported_by="t",
                                imported_at=now, site=site))  # fmt: skip
    return {"result": result, "alert": alert.id, "shared": shared}
