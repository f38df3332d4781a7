"""Imaging: DICOMweb STOW-RS upload that queues a pre-read, the pre-read's status, and its outputs.

``POST /dicomweb/studies`` takes ``multipart/related; type="application/dicom"``. Each part is read by the
defensive DICOM reader; readable instances are stored and one durable ``preread`` job is queued for them, and the
answer is the STOW-RS DICOM JSON response (ReferencedSOPSequence, FailedSOPSequence with FailureReason and our
reason code as ErrorComment) with the job in ``Location``. Outputs are served by job, UID and file name, and every
read is audited.
"""

from __future__ import annotations

import json
import re
import uuid
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse

from cds.errors import CdsError, InvalidInputError, ModelNotFoundError
from cds.pipelines.dicom_reader import read_instance
from cds.serving.api.auth import Principal, Role
from cds.serving.api.deps import StateDep, require
from cds.serving.api.routes.jobs import JobPublic, public_job
from cds.serving.jobs import PREREAD
from cds.store import jobs
from cds.store.audit import AuditEvent, append_event
from cds.store.dicom_index import STORED, index_dataset, instance_uids

router = APIRouter(tags=["imaging"])
Radiology = Annotated[Principal, Depends(require(Role.RADIOLOGIST, Role.ADMIN))]
UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
CANNOT_UNDERSTAND = 0xC000  # STOW-RS FailureReason: cannot understand
OUT_OF_RESOURCES = 0xA700  # STOW-RS FailureReason: refused, out of resources (the instance is over the cap)
MEDIA_TYPES = {".json": "application/json", ".dcm": "application/dicom", ".png": "image/png"}


def _parts(content_type: str, body: bytes) -> list[bytes]:
    """The bodies of a multipart/related request whose parts are application/dicom."""
    if not content_type.lower().startswith("multipart/related") or "application/dicom" not in content_type.lower():
        raise InvalidInputError('send multipart/related; type="application/dicom"', code="unsupported_media_type")
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    if not message.is_multipart():
        raise InvalidInputError("the multipart body has no parts (boundary missing or wrong)", code="invalid_multipart")
    parts = []
    for part in message.iter_parts():
        if part.get_content_type() != "application/dicom":
            raise InvalidInputError(f"a part is {part.get_content_type()}, expected application/dicom",
                                    code="unsupported_media_type")
        payload = part.get_payload(decode=True)
        parts.append(payload if isinstance(payload, bytes) else b"")
    if not parts:
        raise InvalidInputError("the request holds no DICOM part", code="empty_input")
    return parts


def _item(tag_values: dict[str, tuple[str, Any]]) -> dict[str, Any]:
    return {tag: {"vr": vr, "Value": [value]} for tag, (vr, value) in tag_values.items()}


@router.post("/dicomweb/studies", status_code=202, openapi_extra={"requestBody": {"required": True, "content": {
    "multipart/related": {"schema": {"type": "string", "format": "binary"}}}}})  # fmt: skip
async def stow(request: Request, state: StateDep, principal: Radiology) -> JSONResponse:
    """Store DICOM instances and queue their pre-read (STOW-RS); 202 with the job in ``Location``, 409 if none."""
    parts = _parts(request.headers.get("content-type", ""), await request.body())
    folder = state.settings.data_dir / "dicom" / uuid.uuid4().hex
    stored, referenced, failed = [], [], []
    datasets = []
    for index, data in enumerate(parts):
        if len(data) > state.settings.max_instance_bytes:
            failed.append(_item({"00081197": ("US", OUT_OF_RESOURCES), "00000902": ("LO", "instance_too_large")}))
            continue
        try:
            instance = read_instance(data, name=f"part {index + 1}")
            instance_uids(instance.dataset)
        except CdsError as exc:
            failed.append(_item({"00081197": ("US", CANNOT_UNDERSTAND), "00000902": ("LO", exc.code)}))
            continue
        sop = str(instance.dataset.get("SOPInstanceUID", ""))
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / (f"{sop}.dcm" if UID.match(sop) else f"{uuid.uuid4().hex}.dcm")
        path.write_bytes(data)
        stored.append(str(path))
        datasets.append((instance.dataset, path))
        referenced.append(_item({"00081150": ("UI", str(instance.dataset.get("SOPClassUID", ""))),
                                 "00081155": ("UI", sop)}))
    document: dict[str, Any] = {}
    if referenced:
        document["00081199"] = {"vr": "SQ", "Value": referenced}
    if failed:
        document["00081198"] = {"vr": "SQ", "Value": failed}
    if not stored:
        return JSONResponse(document, status_code=409, media_type="application/dicom+json")
    payload = {"files": stored, "output": str(folder / "outputs"), "model": state.settings.preread_model,
               "ct_model": state.settings.ct_model or None, "actor": principal.subject, "role": principal.role_text}
    with state.database.session() as session:
        for dataset, path in datasets:
            index_dataset(session, dataset, path, origin=STORED)
        job_id = jobs.enqueue(session, kind=PREREAD, payload=payload, actor=principal.subject,
                              role=principal.role_text, max_pending=state.settings.max_pending_jobs)  # fmt: skip
    return JSONResponse(document, status_code=202, media_type="application/dicom+json",
                        headers={"Location": f"/v1/preread/{job_id}"})


def _preread_job(state: Any, job_id: str, *, done: bool = False) -> Any:
    with state.database.session() as session:
        return jobs.get_job(session, job_id, kind=PREREAD, done=done)


@router.get("/v1/preread/{job_id}")
def preread_status(job_id: str, state: StateDep, principal: Radiology) -> JobPublic:
    """The pre-read's state and, when done, each image's findings or each series' structures, and refusals."""
    job = public_job(_preread_job(state, job_id))
    with state.database.session() as session:
        append_event(session, AuditEvent(actor=principal.subject, role=principal.role_text,
                                         action="imaging.result.read", resource=f"Job/{job_id}", outcome="success"))
    return job


@router.get("/v1/preread/{job_id}/{uid}/{name}", response_class=FileResponse)
def preread_output(job_id: str, uid: str, name: str, state: StateDep, principal: Radiology) -> FileResponse:
    """One output file of a finished pre-read (the read is audited).

    ``result.json``, ``diagnostic-report.json``, ``report-sr.dcm``, ``segmentation-seg.dcm``, overlays (PNG,
    secondary capture).
    """
    job = _preread_job(state, job_id, done=True)
    outcomes = {o["uid"]: o for o in json.loads(job.result)["outcomes"]}
    folder = Path(json.loads(job.payload)["output"]) / uid
    files = {p.name: p for p in folder.iterdir()} if uid in outcomes and folder.is_dir() else {}
    if name not in files:
        raise ModelNotFoundError(f"no output {name!r} for {uid!r} in pre-read {job_id}; outputs: "
                                 f"{', '.join(sorted(files)) or 'none'}")
    outcome = outcomes[uid]
    with state.database.session() as session:
        append_event(session, AuditEvent(actor=principal.subject, role=principal.role_text,
                                         action="imaging.result.read", resource=f"ImagingStudy/{outcome['study_uid']}",
                                         outcome="success", model=outcome["model"],
                                         input_sha256=outcome["input_sha256"], detail={"file": name, "uid": uid}))
    return FileResponse(files[name], media_type=MEDIA_TYPES.get(files[name].suffix, "application/octet-stream"))
