"""``cds export fhir``: FHIR resources de-identified with the training export's key, so records link to its images.

Inputs are FHIR JSON files (a resource or a Bundle) and NDJSON files (one resource per line, as FHIR Bulk Data
exports write them), read together so a reference ``Patient/<id>`` in one file is keyed on the MRN its Patient
resource gives in another (:func:`cds.interop.fhir_deidentify.deidentify_resources`). Outputs keep each input's
format under a neutral name (``fhir-0001.json``, ``fhir-0002.ndjson``: a file name may name a patient), with
``export.json`` stating what was removed, replaced and shifted, how, and under which key. Audited
(``training.export``, counts only).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cds.errors import InvalidInputError
from cds.interop.deidentify import DeidOptions
from cds.interop.fhir_deidentify import PSEUDONYM_SYSTEM, deidentify_resources
from cds.services.training_export import MANIFEST, key_id
from cds.store.audit import Actor, AuditAction, record_event
from cds.store.db import Database

MAX_FHIR_FILE_BYTES: Final = 256 * 2**20  # every input is held in memory to link patients across files
FORMAT: Final = "cds-fhir-export/1"


@dataclass(frozen=True)
class _Input:
    source: Path
    ndjson: bool
    documents: list[dict[str, Any]]


def _read(path: Path) -> _Input:
    """One input file's resources.

    Raises:
        InvalidInputError: ``input_missing``, ``input_too_large``, ``unsupported_format`` or ``invalid_json``.
    """
    if not path.is_file():
        raise InvalidInputError(f"{path} does not exist", code="input_missing")
    if path.stat().st_size > MAX_FHIR_FILE_BYTES:
        raise InvalidInputError(f"{path.name}: over {MAX_FHIR_FILE_BYTES} bytes; split it", code="input_too_large")
    suffix = path.suffix.lower()
    if suffix not in (".json", ".ndjson"):
        raise InvalidInputError(f"{path.name}: a .json or .ndjson FHIR file is expected", code="unsupported_format")
    text = path.read_text(encoding="utf-8-sig")
    try:
        if suffix == ".ndjson":
            documents = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            documents = [json.loads(text)]
    except ValueError as exc:
        raise InvalidInputError(f"{path.name}: not JSON ({exc.args[0][:80]})", code="invalid_json") from None
    return _Input(source=path, ndjson=suffix == ".ndjson", documents=documents)


def export_fhir(inputs: Sequence[Path], output: Path, *, key: bytes, patient_system: str, database: Database,
                actor: Actor, options: DeidOptions | None = None) -> dict[str, Any]:  # fmt: skip
    """De-identify ``inputs`` into the new folder ``output``; the manifest written as ``export.json``.

    Raises:
        InvalidInputError: A reason of :func:`_read` or of the de-identification, or ``output_not_empty``.
    """
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise InvalidInputError(f"output {output} exists and is not an empty folder; name a new one",
                                code="output_not_empty")  # fmt: skip
    options = options or DeidOptions()
    files = [_read(path) for path in inputs]
    everything = [document for item in files for document in item.documents]
    result = deidentify_resources(everything, key=key, patient_system=patient_system, options=options)
    output.mkdir(parents=True, exist_ok=True)
    position = 0
    for index, item in enumerate(files, start=1):
        done = result.resources[position:position + len(item.documents)]
        position += len(item.documents)
        if item.ndjson:
            text = "".join(json.dumps(d, ensure_ascii=False, separators=(",", ":")) + "\n" for d in done)
            (output / f"fhir-{index:04d}.ndjson").write_text(text, encoding="utf-8")
        else:
            (output / f"fhir-{index:04d}.json").write_text(json.dumps(done[0], ensure_ascii=False, indent=1) + "\n",
                                                           encoding="utf-8")  # fmt: skip
    summary = result.summary
    manifest = {
        "format": FORMAT, "key_id": key_id(key), "files": len(files), "resources": len(everything),
        "patients": summary.patients, "patient_identifier_system": patient_system,
        "pseudonym_system": PSEUDONYM_SYSTEM,
        "method": {"pseudonyms": "HMAC-SHA256 of the MRN, as the DICOM export's Patient ID",
                   "dates": "shifted back by the patient's days, precision kept" if options.retain_modified_dates
                   else "removed", "dicom_uids": "2.25 UIDs, as the DICOM export's",
                   "ids_and_identifiers": "HMAC-SHA256", "free_text": "removed"},
        "removed": summary.removed, "replaced": summary.replaced,
        "dates_shifted": summary.dates_shifted, "dates_removed": summary.dates_removed,
    }  # fmt: skip
    (output / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    with database.session() as session:
        record_event(session, AuditAction.TRAINING_EXPORT, actor, "FhirExport",
                     detail={"kind": "fhir", "files": len(files), "resources": len(everything),
                             "patients": summary.patients, "key_id": manifest["key_id"]})  # fmt: skip
    return manifest
