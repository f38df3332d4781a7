"""``cds ecg PATH``: pre-read of 12-lead ECGs: measurements, rhythm, STEMI and QTc flags, printout, FHIR.

Each ECG (DICOM 12-lead or general ECG waveform, WFDB ``.hea`` + signal file, HL7 aECG XML, or the documented CSV
layout) goes through :class:`~cds.pipelines.ecg.pipeline.EcgPipeline` with the registered rhythm classifier
(``ecg-rhythm`` by default) and gets a subfolder of ``--output`` with ``result.json``, ``diagnostic-report.json``
(FHIR R4) and the 12-lead printout (``ecg-12-lead.png`` and ``.pdf``, 25 mm/s, 10 mm/mV). A progress bar counts
ECGs. An ECG that cannot be read or is refused is listed with its reason code in ``--output/refused.json`` and
the run goes on; the exit code is 2 only when no ECG could be read. Critical flags (possible STEMI) are printed
first in the summary line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from tqdm import tqdm

from cds.cli.common import folder_name, out, run_command
from cds.errors import CdsError, InvalidInputError
from cds.models.registry import ModelRegistry
from cds.models.spec import BackendKind
from cds.results.ecg import RHYTHM_TEXT, EcgResult
from cds.settings import Settings

app = typer.Typer()
ECG_SUFFIXES = (".dcm", ".hea", ".xml", ".csv", ".txt")
GROUP = 16  # ECGs classified per backend call


def ecg_inputs(path: Path) -> list[Path]:
    """The ECG files under ``path`` (itself when a file; a WFDB record by its ``.hea``; hidden files skipped)."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InvalidInputError(f"{path} does not exist", code="input_missing")
    return sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")
                  and p.suffix.lower() in ECG_SUFFIXES)  # fmt: skip


def summary(result: EcgResult) -> str:
    """One line: critical flags first, then rhythm, rate and intervals."""
    m = result.measurements

    def ms(value: float | None) -> str:
        return "—" if value is None else f"{value:.0f}"

    parts = [flag.text.split(":")[0].upper() + f" ({', '.join(flag.leads)})" for flag in result.critical]
    parts.append(f"{RHYTHM_TEXT[result.rhythm.label]} {ms(m.heart_rate_bpm)}/min")
    parts.append(f"PR {ms(m.pr_ms)} QRS {ms(m.qrs_ms)} QT/QTcF {ms(m.qt_ms)}/{ms(m.qtc_fridericia_ms)} ms, "
                 f"axis {ms(m.qrs_axis_deg)}°")
    others = [flag.code for flag in result.flags if flag not in result.critical]
    if others:
        parts.append("flags: " + ", ".join(others))
    return "; ".join(parts)


@app.command("ecg")
def ecg(
    path: Annotated[Path, typer.Argument(help="An ECG file (DICOM, WFDB .hea, HL7 aECG .xml, CSV) or a folder.")],
    output: Annotated[Path, typer.Option("--output", "--out", "-o", help="Output folder (one subfolder per ECG).")
                      ] = Path("ecg-output"),
    model: Annotated[str, typer.Option(help="Registered ECG rhythm classifier.")] = "ecg-rhythm",
    version: Annotated[str | None, typer.Option(help="Its version (default: newest).")] = None,
    backend: Annotated[BackendKind, typer.Option(help="Inference engine.")] = BackendKind.ONNXRUNTIME,
    sex: Annotated[str | None, typer.Option(help="male or female, for the ST and QTc limits (default: what the "
                                                 "file states).")] = None,
    age: Annotated[float | None, typer.Option(min=0, max=130, help="Age in years, for the V2-V3 ST limits.")
                   ] = None,
    printout: Annotated[bool, typer.Option(help="Write the 12-lead printout (PNG and PDF).")] = True,
    registry: Annotated[Path | None, typer.Option(help="Model registry folder.")] = None,
) -> None:
    """Measurements, rhythm (rules and classifier), STEMI and QTc flags of 12-lead ECGs.

    Per ECG under --output: result.json (typed result with model identity and input sha256),
    diagnostic-report.json (FHIR R4 DiagnosticReport with LOINC-coded Observations), ecg-12-lead.png and .pdf.
    Refusals are listed, with reason codes, in --output/refused.json; the run goes on past them.
    """
    from cds.interop.outputs.ecg import write_ecg_outputs
    from cds.pipelines.ecg.pipeline import SEXES, EcgPipeline, Patient
    from cds.serving.backends import create_backend

    def body() -> None:
        if sex is not None and sex.strip().lower() not in SEXES:
            raise InvalidInputError(f"--sex {sex!r}: male or female", code="invalid_choice")
        spec = ModelRegistry.from_directory(registry or Settings().registry_dir).get(model, version)
        inputs = ecg_inputs(path)
        patient = Patient(sex=SEXES[sex.strip().lower()] if sex else None, age_years=age)
        refusals: list[dict[str, str]] = []
        done, taken = 0, set[str]()
        output.mkdir(parents=True, exist_ok=True)
        with create_backend(backend, spec) as engine:
            pipeline = EcgPipeline(engine)
            with tqdm(total=len(inputs), desc="ECGs", unit="ECG", disable=len(inputs) < 2) as bar:
                for start in range(0, len(inputs), GROUP):
                    prepared = []
                    for source in inputs[start:start + GROUP]:
                        try:
                            prepared.append(pipeline.prepare(source, patient))
                        except CdsError as exc:  # one bad ECG never stops the others
                            refusals.append({"file": str(source), "reason": exc.code, "message": exc.message})
                            tqdm.write(f"refused {source}: {exc.code}: {exc.message}")
                            bar.update(1)
                    for item, analysis in zip(prepared, pipeline.finish(prepared), strict=True):
                        folder = output / folder_name(item.path, taken)
                        write_ecg_outputs(analysis, folder, title=f"AI ECG pre-read ({spec.key})",
                                          printout=printout)  # fmt: skip
                        done += 1
                        tqdm.write(f"{item.path.name}: {summary(analysis.result)} -> {folder}")
                        bar.update(1)
        (output / "refused.json").write_text(json.dumps(refusals, indent=2), encoding="utf-8")
        out(f"{done} read, {len(refusals)} refused (reasons in {output / 'refused.json'})")
        if not done:
            raise typer.Exit(2)

    run_command(body)
