"""``/dicomweb``: STOW-RS storage that queues a pre-read; QIDO-RS searches and WADO-RS retrieval.

Stored instances and AI results (SR, SEG, captures) alike are searched and retrieved.

``POST /dicomweb/studies`` takes ``multipart/related; type="application/dicom"``, split into files while it arrives;
readable parts are stored and one durable ``preread`` job is queued for them
(:func:`cds.services.stow.accept_instances`), and the answer is the STOW-RS DICOM JSON response (ReferencedSOPSequence
with RetrieveURLs, FailedSOPSequence with FailureReason and our reason code as ErrorComment) with the job in
``Location``: 200 when all parts were stored, 202 when some were, 409 when none was, 415 for another media type.
Searches answer DICOM JSON (``application/dicom+json``) at study, series and instance level, with match keys by
keyword (``PatientID``, ``StudyDate``, ``ModalitiesInStudy`` ...), ``limit`` and ``offset``; keys the service does
not match on are ignored with a ``Warning: 299`` header, as PS3.18 prescribes. Retrieval streams
``multipart/related; type="application/dicom"`` in the stored transfer syntax, one file at a time, so a large study
never sits in memory; ``.../metadata`` (study, series or instance) answers the DICOM JSON (bulk data as BulkDataURI)
extracted when the instance was stored, without reading the file again; a series' ``thumbnail`` is its middle
instance rendered small. A patient-scoped token sees only its patient's studies (its
``Patient/<id>`` is matched against PatientID) and is refused, audited, anything else. Every search and retrieval is
audited.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, Response, StreamingResponse
from sqlalchemy import update

from cds.errors import InvalidInputError, NotAcceptableError, NotFoundError
from cds.pipelines.imaging.dicom_reader import read_instance
from cds.services.stow import StowReceipt, accept_instances, audit_refused_parts
from cds.serving.api.auth import Principal, Role
from cds.serving.api.deps import EngineDep, StateDep, enforce_patient_scope, require, scoped_patient_id
from cds.serving.api.state import AppState
from cds.serving.api.uploads import discarded_on_failure, save_parts
from cds.serving.dicom_rendered import bulk_data, chosen_media_type, frames, rendered
from cds.store.audit import AuditAction, record_event
from cds.store.dicom_index import (
    InstanceQuery,
    dicom_json,
    find_instances,
    find_series,
    find_studies,
    representative_metadata,
)
from cds.store.referrals import referred_studies
from cds.store.sites import visible_sites
from cds.store.tables import DicomInstanceRow

router = APIRouter(prefix="/dicomweb", tags=["imaging"])
Radiology = Annotated[Principal, Depends(require(Role.RADIOLOGIST, Role.ADMIN))]
Sender = Annotated[Principal, Depends(require(Role.RADIOLOGIST, Role.CARDIOLOGIST, Role.ADMIN))]  # images, ECGs
DICOM_JSON = "application/dicom+json"
IGNORED_QUIETLY = {"includefield", "fuzzymatching"}  # read by _included and _answer, not query keys
CHUNK = 1 << 20
UidPath = Annotated[str, PathParam(pattern=r"^[0-9]+(\.[0-9]+)*$", max_length=64)]
QIDO_RESPONSES: dict[int | str, dict[str, Any]] = {200: {"content": {DICOM_JSON: {}}}}
STOW_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Every instance stored; the pre-read job is in Location", "content": {DICOM_JSON: {}}},
    202: {"description": "Some instances stored; FailedSOPSequence says why the others were not",
          "content": {DICOM_JSON: {}}},
    409: {"description": "No instance stored; FailedSOPSequence says why", "content": {DICOM_JSON: {}}}}
WADO_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {'multipart/related; type="application/dicom"': {"schema": {"type": "string",
                                                                                 "format": "binary"}}}}}


def _query(
    request: Request,
    state: StateDep,
    principal: Radiology,
    patient_id: Annotated[str, Query(alias="PatientID", max_length=64)] = "",
    accession_number: Annotated[str, Query(alias="AccessionNumber", max_length=16)] = "",
    study_date: Annotated[str, Query(alias="StudyDate", pattern=r"^(\d{8}|\d{8}-|-\d{8}|\d{8}-\d{8})?$",
                                     description="YYYYMMDD, or a range with either end open")] = "",
    study_uid: Annotated[str, Query(alias="StudyInstanceUID", max_length=64)] = "",
    modalities: Annotated[str, Query(alias="ModalitiesInStudy", max_length=16)] = "",
    modality: Annotated[str, Query(alias="Modality", max_length=16)] = "",
    series_uid: Annotated[str, Query(alias="SeriesInstanceUID", max_length=64)] = "",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> InstanceQuery:
    known = {"PatientID", "AccessionNumber", "StudyDate", "StudyInstanceUID", "ModalitiesInStudy", "Modality",
             "SeriesInstanceUID", "limit", "offset"}  # fmt: skip
    unsupported = sorted(k for k in request.query_params if k not in known and k.lower() not in IGNORED_QUIETLY)
    return InstanceQuery(study_uid=study_uid, series_uid=series_uid, patient_id=patient_id,
                         accession_number=accession_number, study_date=study_date, modality=modalities or modality,
                         only_patient=scoped_patient_id(principal),
                         only_site=visible_sites(principal.site, state.settings.site),
                         also_studies=_referred(state, principal), limit=limit,
                         offset=offset, unsupported=unsupported)  # fmt: skip


QidoQuery = Annotated[InstanceQuery, Depends(_query)]


def _referred(state: AppState, principal: Principal) -> tuple[str, ...]:
    """The studies other sites referred to the caller's site."""
    with state.database.session() as session:
        return tuple(referred_studies(session, principal.site))


def _attr(vr: str, *values: Any) -> dict[str, Any]:
    present = [v for v in values if v not in (None, "")]
    return {"vr": vr, "Value": present} if present else {"vr": vr}


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/dicomweb"


def _answer(request: Request, state: AppState, principal: Principal, query: InstanceQuery, level: str,
            body: list[dict[str, Any]]) -> JSONResponse:  # fmt: skip
    with state.database.session() as session:
        record_event(session, AuditAction.IMAGING_SEARCH, principal.actor, f"ImagingStudy?level={level}",
                     subject=f"Patient/{query.only_patient}" if query.only_patient else "",
                     detail={"matches": len(body)})
    warnings = []
    if query.unsupported:
        keys = ", ".join(k.encode("ascii", "backslashreplace").decode() for k in query.unsupported)  # header-safe
        warnings.append(f'299 cds "the query keys {keys} are not supported and were ignored"')
    if request.query_params.get("fuzzymatching", "").lower() == "true":  # as PS3.18 asks a server without it to say
        warnings.append('299 cds "The fuzzymatching parameter is not supported. Only literal matching has been '
                        'performed."')
    return JSONResponse(body, media_type=DICOM_JSON, headers={"Warning": ", ".join(warnings)} if warnings else {})


def _included(request: Request) -> set[str] | None:
    """The attributes ``includefield`` asks for, as tags (``{"all"}`` for every one); ``None`` when none.

    Raises:
        InvalidInputError: ``unknown_attribute`` for a name that is neither a keyword nor a tag.
    """
    from pydicom.datadict import tag_for_keyword

    names = [n.strip() for value in request.query_params.getlist("includefield") for n in value.split(",")]
    if not names:
        return None
    tags: set[str] = set()
    for name in filter(None, names):
        if name.lower() == "all":
            return {"all"}
        if re.fullmatch(r"[0-9A-Fa-f]{8}", name):
            tags.add(name.upper())
            continue
        tag = tag_for_keyword(name)
        if tag is None:
            raise InvalidInputError(f"includefield {name[:64]!r} is neither a DICOM keyword nor a tag",
                                    code="unknown_attribute")  # fmt: skip
        tags.add(f"{tag:08X}")
    return tags


def _with_included(entry: dict[str, Any], metadata: dict[str, Any] | None, tags: set[str] | None) -> dict[str, Any]:
    """``entry`` with the asked-for attributes from ``metadata`` (never bulk data; what the entry has stays)."""
    if not tags or not metadata:
        return entry
    wanted = metadata if "all" in tags else {t: metadata[t] for t in tags if t in metadata}
    extra = {t: v for t, v in wanted.items() if t not in entry and "BulkDataURI" not in v and "InlineBinary" not in v}
    return entry | extra


def _item(tag_values: dict[str, tuple[str, Any]]) -> dict[str, Any]:
    return {tag: {"vr": vr, "Value": [value]} for tag, (vr, value) in tag_values.items()}


def _stow_response(receipt: StowReceipt, base: str) -> dict[str, Any]:
    """The STOW-RS DICOM JSON response (PS3.18 10.5.3).

    RetrieveURL of the study when one study was stored, ReferencedSOPSequence with each instance's RetrieveURL,
    FailedSOPSequence with our reason code as ErrorComment.
    """
    document: dict[str, Any] = {}
    studies = {s.study_uid for s in receipt.stored}
    if len(studies) == 1:
        document["00081190"] = {"vr": "UR", "Value": [f"{base}/studies/{studies.pop()}"]}
    if receipt.stored:
        document["00081199"] = {"vr": "SQ", "Value": [_item({
            "00081150": ("UI", s.sop_class_uid), "00081155": ("UI", s.sop_instance_uid),
            "00081190": ("UR", f"{base}/studies/{s.study_uid}/series/{s.series_uid}/instances/{s.sop_instance_uid}"),
        }) for s in receipt.stored]}  # fmt: skip
    if receipt.refused:  # each failure names its SOP Class and Instance when they could be read
        document["00081198"] = {"vr": "SQ", "Value": [_item({"00081197": ("US", int(r.failure)),
                                                             "00000902": ("LO", r.reason)}
                                                            | ({"00081150": ("UI", r.sop_class_uid),
                                                                "00081155": ("UI", r.sop_instance_uid)}
                                                               if r.sop_instance_uid else {}))
                                                      for r in receipt.refused]}  # fmt: skip
    return document


@router.post("/studies", status_code=200, openapi_extra={"requestBody": {"required": True, "content": {
    'multipart/related; type="application/dicom"': {"schema": {"type": "string", "format": "binary",
                                                               "minLength": 1}}}}},
    responses=STOW_RESPONSES)  # fmt: skip
async def stow(request: Request, engine: EngineDep, principal: Sender) -> JSONResponse:
    """Store DICOM instances and queue their pre-read (STOW-RS).

    200 when every part was stored, 202 when some were (the failures are in FailedSOPSequence), 409 when none
    was; the pre-read job is in ``Location`` (an ECG-only upload: the first ECG job), every ECG job in
    ``X-ECG-Jobs``. The body is split into files while it arrives.
    """
    folder = engine.settings.data_dir / "dicom" / uuid.uuid4().hex
    with discarded_on_failure(folder):
        parts = await save_parts(request, folder, part_type="application/dicom",
                                 max_part_bytes=engine.settings.max_instance_bytes)  # fmt: skip
        receipt = accept_instances(engine, folder, [p.path for p in parts], actor=principal.actor)
    audit_refused_parts(engine, principal.actor, receipt, "POST /dicomweb/studies")
    document = _stow_response(receipt, _base(request))
    if receipt.job_id is None and not receipt.ecg_job_ids:
        return JSONResponse(document, status_code=409, media_type=DICOM_JSON)
    location = f"/v1/preread/{receipt.job_id}" if receipt.job_id else f"/v1/ecg/jobs/{receipt.ecg_job_ids[0]}"
    headers = {"Location": location} | ({"X-ECG-Jobs": ",".join(receipt.ecg_job_ids)} if receipt.ecg_job_ids else {})
    return JSONResponse(document, status_code=202 if receipt.refused else 200, media_type=DICOM_JSON,
                        headers=headers)


@router.get("/studies", response_model=list[dict[str, Any]], responses=QIDO_RESPONSES)
def search_studies(request: Request, state: StateDep, principal: Radiology, query: QidoQuery) -> JSONResponse:
    """QIDO-RS: studies matching the query keys, newest first."""
    tags = _included(request)
    with state.database.session() as session:
        studies = find_studies(session, query)
        extra = representative_metadata(session, studies=[s.study_uid for s in studies]) if tags else {}
    base = _base(request)
    body = [_with_included({
        "00080020": _attr("DA", s.study_date), "00080050": _attr("SH", s.accession_number),
        "00080061": _attr("CS", *s.modalities), "00100010": _attr("PN", {"Alphabetic": s.patient_name}
                                                                 if s.patient_name else None),
        "00100020": _attr("LO", s.patient_id), "0020000D": _attr("UI", s.study_uid),
        "00201206": _attr("IS", s.series), "00201208": _attr("IS", s.instances),
        "00081190": _attr("UR", f"{base}/studies/{s.study_uid}"),
    }, extra.get(s.study_uid), tags) for s in studies]  # fmt: skip
    return _answer(request, state, principal, query, "study", body)


@router.get("/studies/{study}/series", response_model=list[dict[str, Any]], responses=QIDO_RESPONSES)
def search_series(study: UidPath, request: Request, state: StateDep, principal: Radiology,
                  query: QidoQuery) -> JSONResponse:  # fmt: skip
    """QIDO-RS: the study's series matching the query keys."""
    query = _within(query, study_uid=study)
    tags = _included(request)
    with state.database.session() as session:
        series = find_series(session, query)
        extra = representative_metadata(session, series=[s.series_uid for s in series]) if tags else {}
    base = _base(request)
    body = [_with_included({
        "0020000D": _attr("UI", s.study_uid), "0020000E": _attr("UI", s.series_uid),
        "00080060": _attr("CS", s.modality), "00200011": _attr("IS", s.series_number),
        "0008103E": _attr("LO", s.description), "00201209": _attr("IS", s.instances),
        "00081190": _attr("UR", f"{base}/studies/{s.study_uid}/series/{s.series_uid}"),
    }, extra.get(s.series_uid), tags) for s in series]  # fmt: skip
    return _answer(request, state, principal, query, "series", body)


@router.get("/studies/{study}/series/{series}/instances", response_model=list[dict[str, Any]],
            responses=QIDO_RESPONSES)  # fmt: skip
def search_instances(study: UidPath, series: UidPath, request: Request, state: StateDep, principal: Radiology,
                     query: QidoQuery) -> JSONResponse:  # fmt: skip
    """QIDO-RS: the series' instances."""
    query = _within(query, study_uid=study, series_uid=series)
    tags = _included(request)
    with state.database.session() as session:
        rows = find_instances(session, query)
    body = [_with_included({
        "0020000D": _attr("UI", r.study_uid), "0020000E": _attr("UI", r.series_uid),
        "00080016": _attr("UI", r.sop_class_uid), "00080018": _attr("UI", r.sop_instance_uid),
        "00080060": _attr("CS", r.modality), "00200013": _attr("IS", r.instance_number),
        "00081190": _attr("UR", _instance_url(request, r)),
    }, json.loads(r.metadata_json) if tags and r.metadata_json else None, tags) for r in rows]  # fmt: skip
    return _answer(request, state, principal, query, "instance", body)


def _within(query: InstanceQuery, study_uid: str, series_uid: str = "") -> InstanceQuery:
    return replace(query, study_uid=study_uid, series_uid=series_uid or query.series_uid)


def _instance_url(request: Request, row: DicomInstanceRow) -> str:
    return f"{_base(request)}/studies/{row.study_uid}/series/{row.series_uid}/instances/{row.sop_instance_uid}"


def _retrieve(request: Request, state: AppState, principal: Principal, study: str, series: str = "",
              sop: str = "") -> Sequence[DicomInstanceRow]:  # fmt: skip
    """The instances addressed (all of them: retrieval does not page), scope-checked and audited."""
    query = InstanceQuery(study_uid=study, series_uid=series, sop_instance_uid=sop, limit=None,
                          only_site=visible_sites(principal.site, state.settings.site),
                          also_studies=_referred(state, principal))  # other sites' studies: unknown
    with state.database.session() as session:
        rows = find_instances(session, query)
    if not rows:
        what = "/".join(p for p in (study, series, sop) if p)
        raise NotFoundError(f"no stored instances under {what}")
    for patient in sorted({r.patient_id for r in rows}):
        enforce_patient_scope(state, request, principal, f"Patient/{patient}")
    missing = [r.sop_instance_uid for r in rows if not Path(r.path).is_file()]
    if missing:
        raise NotFoundError(f"{len(missing)} indexed instance files are gone from storage (first {missing[0]})",
                            code="instance_missing")
    with state.database.session() as session:
        record_event(session, AuditAction.IMAGING_RETRIEVE, principal.actor, f"ImagingStudy/{study}",
                     subject=f"Patient/{rows[0].patient_id}" if rows[0].patient_id else "",
                     detail={"series": series, "instance": sop, "instances": len(rows)})
    return rows


def _accepts_multipart(accept: str, part_type: str, uncompressed: str = "") -> bool:
    """Whether ``Accept`` admits multipart/related of ``part_type`` as served (stored, or ``uncompressed``)."""
    if not accept.strip():
        return True
    for media_range in accept.split(","):
        kind, *params = (p.strip() for p in media_range.split(";"))
        options = {k.strip().lower(): v.strip().strip('"') for k, _, v in (p.partition("=") for p in params)}
        if kind in ("*/*", "multipart/*") or (
            kind == "multipart/related" and options.get("type", part_type) == part_type
            and options.get("transfer-syntax", "*") in ("*", uncompressed or "*")
        ):  # fmt: skip
            return True
    return False


def _multipart(request: Request, rows: Sequence[DicomInstanceRow]) -> StreamingResponse:
    accept = request.headers.get("accept", "")
    if not _accepts_multipart(accept, "application/dicom"):
        raise NotAcceptableError(
            f'instances are served as multipart/related; type="application/dicom" in their stored transfer syntax '
            f"(transfer-syntax=* or none); Accept was {accept[:200]!r}"
        )
    boundary = uuid.uuid4().hex
    urls = [_instance_url(request, r) for r in rows]
    paths = [Path(r.path) for r in rows]

    def parts() -> Iterator[bytes]:
        for url, path in zip(urls, paths, strict=True):
            yield f"--{boundary}\r\nContent-Type: application/dicom\r\nContent-Location: {url}\r\n\r\n".encode()
            with path.open("rb") as source:
                while chunk := source.read(CHUNK):
                    yield chunk
            yield b"\r\n"
        yield f"--{boundary}--\r\n".encode()

    return StreamingResponse(parts(), media_type=f'multipart/related; type="application/dicom"; boundary={boundary}')


def _with_bulk_uri(value: Any, url: str) -> Any:
    """``value`` (DICOM JSON) with every ``BulkDataURI`` pointing at ``url``: bulk data comes with the instance."""
    if isinstance(value, dict):
        return {k: url if k == "BulkDataURI" else _with_bulk_uri(v, url) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_bulk_uri(v, url) for v in value]
    return value


def _bulk_uris(document: dict[str, Any], url: str) -> dict[str, Any]:
    """``document`` with a top-level element's bulk data at ``{url}/bulk/{tag}``.

    Bulk data nested in a sequence comes with the instance (its URI is the instance's).
    """
    return {tag: ({**attribute, "BulkDataURI": f"{url}/bulk/{tag}"} if "BulkDataURI" in attribute
                  else _with_bulk_uri(attribute, url)) for tag, attribute in document.items()}  # fmt: skip


def _metadata(request: Request, state: AppState, rows: Sequence[DicomInstanceRow]) -> JSONResponse:
    """The instances' DICOM JSON as extracted when they were stored (older rows: extracted now, and kept)."""
    body = []
    for row in rows:
        text = row.metadata_json
        if text is None:
            text = dicom_json(read_instance(Path(row.path), name=row.sop_instance_uid).dataset)
            with state.database.session() as session:
                session.execute(update(DicomInstanceRow).where(DicomInstanceRow.sop_instance_uid ==
                                                               row.sop_instance_uid).values(metadata_json=text))
        body.append(_bulk_uris(json.loads(text), _instance_url(request, row)))
    return JSONResponse(body, media_type=DICOM_JSON)


@router.get("/studies/{study}", response_class=StreamingResponse, responses=WADO_RESPONSES)
def retrieve_study(study: UidPath, request: Request, state: StateDep, principal: Radiology) -> StreamingResponse:
    """WADO-RS: every instance of the study (stored and AI results)."""
    return _multipart(request, _retrieve(request, state, principal, study))


@router.get("/studies/{study}/series/{series}", response_class=StreamingResponse, responses=WADO_RESPONSES)
def retrieve_series(study: UidPath, series: UidPath, request: Request, state: StateDep,
                    principal: Radiology) -> StreamingResponse:  # fmt: skip
    """WADO-RS: every instance of the series."""
    return _multipart(request, _retrieve(request, state, principal, study, series))


@router.get("/studies/{study}/series/{series}/instances/{sop}", response_class=StreamingResponse,
            responses=WADO_RESPONSES)  # fmt: skip
def retrieve_instance(study: UidPath, series: UidPath, sop: UidPath, request: Request, state: StateDep,
                      principal: Radiology) -> StreamingResponse:  # fmt: skip
    """WADO-RS: one instance."""
    return _multipart(request, _retrieve(request, state, principal, study, series, sop))


@router.get("/studies/{study}/metadata", response_model=list[dict[str, Any]], responses=QIDO_RESPONSES)
def study_metadata(study: UidPath, request: Request, state: StateDep, principal: Radiology) -> JSONResponse:
    """WADO-RS: the study's instances as DICOM JSON, bulk data as BulkDataURI."""
    return _metadata(request, state, _retrieve(request, state, principal, study))


@router.get("/studies/{study}/series/{series}/metadata", response_model=list[dict[str, Any]],
            responses=QIDO_RESPONSES)  # fmt: skip
def series_metadata(study: UidPath, series: UidPath, request: Request, state: StateDep,
                    principal: Radiology) -> JSONResponse:  # fmt: skip
    """WADO-RS: the series' instances as DICOM JSON, bulk data as BulkDataURI."""
    return _metadata(request, state, _retrieve(request, state, principal, study, series))


@router.get("/studies/{study}/series/{series}/instances/{sop}/metadata", response_model=list[dict[str, Any]],
            responses=QIDO_RESPONSES)  # fmt: skip
def instance_metadata(study: UidPath, series: UidPath, sop: UidPath, request: Request, state: StateDep,
                      principal: Radiology) -> JSONResponse:  # fmt: skip
    """WADO-RS: one instance as DICOM JSON, bulk data as BulkDataURI."""
    return _metadata(request, state, _retrieve(request, state, principal, study, series, sop))


@router.get("/studies/{study}/series/{series}/thumbnail", response_class=Response,
            responses={200: {"content": {"image/jpeg": {}, "image/png": {}}}})  # fmt: skip
def series_thumbnail(
    study: UidPath, series: UidPath, request: Request, state: StateDep, principal: Radiology,
    viewport: Annotated[str, Query(pattern=r"^\d{1,3},\d{1,3}$", description="width,height to fit in (at most 999)")]
    = "128,128",
) -> Response:  # fmt: skip
    """WADO-RS thumbnail: the series' middle instance (by instance number), small, in its own window.

    404 ``no_image`` for a series without pixels (a structured report).
    """
    media_type = chosen_media_type(request.headers.get("accept", ""))
    if media_type is None:
        raise NotAcceptableError("thumbnails are image/jpeg or image/png")
    rows = _retrieve(request, state, principal, study, series)
    middle = rows[len(rows) // 2]
    try:
        picture = rendered(Path(middle.path), media_type=media_type,
                           viewport=max(1, *(int(v) for v in viewport.split(","))))  # fmt: skip
    except InvalidInputError as error:
        raise NotFoundError(f"series {series} has no image to show ({error.code})", code="no_image") from error
    return Response(picture, media_type=media_type)


@router.get("/studies/{study}/series/{series}/instances/{sop}/rendered", response_class=Response,
            responses={200: {"content": {"image/jpeg": {}, "image/png": {}}}})  # fmt: skip
def rendered_instance(
    study: UidPath, series: UidPath, sop: UidPath, request: Request, state: StateDep, principal: Radiology,
    window: Annotated[str | None, Query(pattern=r"^-?\d+(\.\d+)?,\d+(\.\d+)?(,linear)?$",
                                        description="centre,width[,linear] (PS3.18); default: the file's")] = None,
    viewport: Annotated[str | None, Query(pattern=r"^\d{1,5},\d{1,5}$", description="width,height to fit in")]
    = None,
) -> Response:  # fmt: skip
    """WADO-RS rendered: the instance as JPEG (default) or PNG, windowed on the server."""
    media_type = chosen_media_type(request.headers.get("accept", ""))
    if media_type is None:
        raise NotAcceptableError("rendered instances are image/jpeg or image/png")
    (row,) = _retrieve(request, state, principal, study, series, sop)
    centre, width, *_ = (window or "0,0").split(",")
    fit_to = max(int(v) for v in viewport.split(",")) if viewport else None
    picture = rendered(Path(row.path), media_type=media_type, window=(float(centre), float(width)) if window else None,
                       viewport=fit_to or None)  # fmt: skip
    return Response(picture, media_type=media_type)


@router.get("/studies/{study}/series/{series}/instances/{sop}/frames/{numbers}", response_class=StreamingResponse,
            responses={200: {"content": {'multipart/related; type="application/octet-stream"': {}}}})  # fmt: skip
def retrieve_frames(
    study: UidPath, series: UidPath, sop: UidPath, request: Request, state: StateDep, principal: Radiology,
    numbers: Annotated[str, PathParam(pattern=r"^[1-9][0-9]{0,5}(,[1-9][0-9]{0,5}){0,99}$",
                                      description="frame numbers from 1, comma-separated")],
) -> StreamingResponse:  # fmt: skip
    """WADO-RS frames: the frames' pixels, uncompressed little-endian, one part each."""
    if not _accepts_multipart(request.headers.get("accept", ""), "application/octet-stream",
                              uncompressed="1.2.840.10008.1.2.1"):  # fmt: skip
        raise NotAcceptableError('frames are served as multipart/related; type="application/octet-stream", '
                                 "uncompressed (transfer-syntax=* or 1.2.840.10008.1.2.1)")
    (row,) = _retrieve(request, state, principal, study, series, sop)
    wanted = [int(n) for n in numbers.split(",")]
    parts = frames(Path(row.path), wanted)
    boundary = uuid.uuid4().hex
    url = _instance_url(request, row)

    def body() -> Iterator[bytes]:
        for number, part in zip(wanted, parts, strict=True):
            yield (f"--{boundary}\r\nContent-Type: application/octet-stream\r\n"
                   f"Content-Location: {url}/frames/{number}\r\n\r\n").encode() + part + b"\r\n"  # fmt: skip
        yield f"--{boundary}--\r\n".encode()

    return StreamingResponse(body(), media_type=f'multipart/related; type="application/octet-stream"; '
                                                f"boundary={boundary}")  # fmt: skip


@router.get("/studies/{study}/series/{series}/instances/{sop}/bulk/{tag}", response_class=StreamingResponse,
            responses={200: {"content": {'multipart/related; type="application/octet-stream"': {}}}})  # fmt: skip
def retrieve_bulk_data(
    study: UidPath, series: UidPath, sop: UidPath, request: Request, state: StateDep, principal: Radiology,
    tag: Annotated[str, PathParam(pattern=r"^[0-9A-Fa-f]{8}$", description="the element's tag, 8 hex digits")],
) -> StreamingResponse:  # fmt: skip
    """WADO-RS bulk data: one element's value (pixel data uncompressed little-endian), the metadata's BulkDataURI."""
    if not _accepts_multipart(request.headers.get("accept", ""), "application/octet-stream",
                              uncompressed="1.2.840.10008.1.2.1"):  # fmt: skip
        raise NotAcceptableError('bulk data is served as multipart/related; type="application/octet-stream"')
    (row,) = _retrieve(request, state, principal, study, series, sop)
    value = bulk_data(Path(row.path), int(tag, 16))
    boundary = uuid.uuid4().hex
    location = f"{_instance_url(request, row)}/bulk/{tag.upper()}"
    part = (f"--{boundary}\r\nContent-Type: application/octet-stream\r\nContent-Location: {location}\r\n\r\n"
            .encode() + value + f"\r\n--{boundary}--\r\n".encode())  # fmt: skip
    return StreamingResponse(iter([part]), media_type=f'multipart/related; type="application/octet-stream"; '
                                                      f"boundary={boundary}")  # fmt: skip
