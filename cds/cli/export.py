"""``cds export training``: readers' verdicts on stored radiographs as a de-identified training dataset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from tqdm import tqdm

from cds.cli.common import out, run_command
from cds.errors import InvalidInputError
from cds.settings import Settings

app = typer.Typer(help="Export data for training and research, de-identified.", no_args_is_help=True)


def _fractions(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise InvalidInputError(f"--split {text!r}: three comma-separated fractions, e.g. 0.7,0.15,0.15",
                                code="invalid_split")
    return values[0], values[1], values[2]


@app.command("training")
def training(
    output: Annotated[Path, typer.Option("--output", help="New (or empty) folder for the dataset.")],
    key_file: Annotated[Path, typer.Option("--key-file", help="De-identification key: at least 16 bytes, not "
                                           "world-readable; the same key gives the same pseudonyms and split.")],
    split: Annotated[str, typer.Option(help="Fractions of patients for train,validation,test.")] = "0.7,0.15,0.15",
    labels: Annotated[str | None, typer.Option(help="Comma-separated label columns (default: every label a "
                                               "reader gave a verdict on).")] = None,
) -> None:
    """Write readers' verdicts on stored radiographs as a de-identified dataset that training/ reads.

    Reads the service's database ($CDS_DATABASE_URL, else the one in $CDS_DATA_DIR). A finding is 1 when a
    reader accepted it, 0 when rejected; images with an unreviewed label and studies whose readers disagree are
    left out and counted. Writes train/, validation/, test/ (de-identified DICOM + labels.csv, split by patient)
    and export.json (counts, what was left out, what de-identification did). Audited as training.export.
    """
    from cds.services.training_export import ExportOptions, export_training, read_key_file
    from cds.store.audit import Actor
    from cds.store.db import Database

    def body() -> None:
        chosen = tuple(label.strip() for label in labels.split(",") if label.strip()) if labels else ()
        options = ExportOptions(key=read_key_file(key_file), split=_fractions(split), labels=chosen)
        database = Database(Settings().resolved_database_url)
        try:
            database.migrate()
            with tqdm(desc="exporting", unit="image") as bar:

                def progress(done: int, total: int) -> None:
                    bar.total = total
                    bar.update(done - bar.n)

                export = export_training(database, output, options, actor=Actor("cli:export", "admin"),
                                         progress=progress)
        finally:
            database.close()
        counts = export.manifest["counts"]
        out(f"wrote {export.folder}: " + ", ".join(f"{name} {c['images']} images ({c['patients']} patients)"
                                                   for name, c in counts.items()))
        out("left out: " + json.dumps(export.manifest["left_out"]))

    run_command(body)


@app.command("fhir")
def fhir(
    inputs: Annotated[list[Path], typer.Argument(help="FHIR .json (a resource or a Bundle) and .ndjson files.")],
    output: Annotated[Path, typer.Option("--output", help="New (or empty) folder for the de-identified files.")],
    key_file: Annotated[Path, typer.Option("--key-file", help="The training export's key: the same key gives "
                                           "the same pseudonyms, UIDs and date shifts as its images.")],
    no_dates: Annotated[bool, typer.Option("--no-dates", help="Remove dates instead of shifting them.")] = False,
) -> None:
    """De-identify FHIR resources with the key of a training export, so records and images stay linked.

    Patients are keyed on their identifier under $CDS_PATIENT_ID_SYSTEM (the system DICOM Patient IDs are written
    under). Writes fhir-0001.json ... (each input's format, neutral names) and export.json (what was removed,
    replaced and shifted, and how). Audited as training.export.
    """
    from cds.interop.deidentify import DeidOptions
    from cds.services.fhir_export import export_fhir
    from cds.services.training_export import read_key_file
    from cds.store.audit import Actor
    from cds.store.db import Database

    def body() -> None:
        settings = Settings()
        key = read_key_file(key_file)
        database = Database(settings.resolved_database_url)
        try:
            database.migrate()
            manifest = export_fhir(inputs, output, key=key, patient_system=settings.patient_id_system,
                                   database=database, actor=Actor("cli:export", "admin"),
                                   options=DeidOptions(retain_modified_dates=not no_dates))  # fmt: skip
        finally:
            database.close()
        out(f"wrote {output}: {manifest['resources']} resources of {manifest['patients']} patients in "
            f"{manifest['files']} files; dates shifted {manifest['dates_shifted']}, "
            f"removed {manifest['dates_removed']}")

    run_command(body)
