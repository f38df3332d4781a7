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

app = typer.Typer(help="Export data for training, de-identified.", no_args_is_help=True)


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
