"""``cds risk``: list equations, score one patient (JSON or FHIR), score a cohort file."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from tqdm import tqdm

from cds.cli.common import out, run_command
from cds.errors import InvalidInputError
from cds.models.risk import RiskEquation, available_equations
from cds.pipelines.risk.methods import open_risk_method
from cds.results.risk import MethodRef

app = typer.Typer(
    help="Clinical risk: validated equations and ML risk models; score a patient or a whole cohort.",
    no_args_is_help=True,
)
RegistryOption = Annotated[
    Path | None, typer.Option("--registry", help="Model registry folder (default: $CDS_REGISTRY_DIR or ./registry).")
]


@app.command("list")
def list_equations() -> None:
    """List the validated equations with their source, population and inputs."""
    for equation in available_equations().values():
        out(f"{equation.name} ({equation.version}): {equation.title}")
        out(f"  source: {equation.source}")
        out(f"  population: {equation.population}")
        out(f"  score: {equation.score_unit}")
        for spec in equation.fields:
            valid = f", validated {spec.valid[0]:g}-{spec.valid[1]:g}" if spec.valid else ""
            optional = ", optional" if not spec.required else ""
            choices = f" one of {'/'.join(spec.categories)}" if spec.categories else ""
            out(f"    {spec.name:<22} {spec.description} [{spec.unit}]{choices}{valid}{optional}")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"{path} is not readable JSON: {exc}", code="invalid_json") from exc


def _overrides(pairs: list[str]) -> dict[str, str]:
    result = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise InvalidInputError(f"--set takes FIELD=VALUE, got {pair!r}", code="invalid_override")
        result[name.strip()] = value.strip()
    return result


@app.command("score")
def score(
    equation_name: Annotated[str, typer.Argument(metavar="EQUATION", help="Equation name (see `cds risk list`).")],
    input_path: Annotated[
        Path, typer.Argument(metavar="INPUT", help="Patient as a JSON object of fields, or a FHIR R4 Bundle.")
    ],
    set_values: Annotated[
        list[str] | None, typer.Option("--set", help="FIELD=VALUE for inputs the file lacks, e.g. bp_treated=false.")
    ] = None,
    fhir: Annotated[bool, typer.Option(help="Print a FHIR RiskAssessment instead of the result JSON.")] = False,
    as_of: Annotated[dt.datetime | None, typer.Option(
        "--as-of", formats=["%Y-%m-%d"], help="Evaluation date for a FHIR Bundle (age, later readings); default today.",
    )] = None,  # fmt: skip
    registry: RegistryOption = None,
) -> None:
    """Score one patient and print the result with each input's contribution.

    A FHIR Bundle (Patient + Observations by LOINC, Conditions) is converted to the equation's units first; values
    no Observation carries (treatment, race) come from --set.
    """

    def body() -> None:
        with open_risk_method(equation_name, registry) as (equation, method):
            _score_one(equation, method, input_path, set_values or [], fhir, as_of.date() if as_of else None)

    run_command(body)


def _score_one(equation: RiskEquation, method: MethodRef, input_path: Path, set_values: list[str], fhir: bool,
               as_of: dt.date | None = None) -> None:  # fmt: skip
    """Score the patient in ``input_path`` (JSON fields or a FHIR Bundle) and print the result."""
    from cds.interop.fhir_inputs import parse_bundle
    from cds.interop.fhir_risk import risk_assessment
    from cds.pipelines.risk.equation import EquationPipeline
    from cds.services.risk import in_equation_units, score_record
    from cds.settings import Settings

    document = _read_json(input_path)
    if not isinstance(document, dict):
        raise InvalidInputError("INPUT must be a JSON object or a FHIR Bundle", code="invalid_json")
    overrides = _overrides(set_values)
    settings = Settings()
    population = settings.risk_population
    if document.get("resourceType") == "Bundle":
        extracted = parse_bundle(document, as_of=as_of, stale_days=settings.risk_stale_days)
        result = score_record(equation, method, extracted, overrides, population)
        basis, patient = extracted.basis, extracted.patient_reference
    else:
        pipeline = EquationPipeline(equation, method, population=population)
        result = pipeline(in_equation_units(equation, document | overrides))
        basis, patient = {}, None
    if fhir:
        used = {k: v for k, v in basis.items() if k in result.inputs}
        resource = risk_assessment(result, outcome=equation.outcome, patient_reference=patient, basis=used)
        out(json.dumps(resource, indent=2))
    else:
        out(result.model_dump_json(indent=2))


@app.command("score-file")
def score_file_command(
    equation_name: Annotated[str, typer.Argument(metavar="EQUATION", help="Equation name (see `cds risk list`).")],
    source: Annotated[Path, typer.Argument(metavar="IN", help="Cohort .csv or .parquet, one column per field.")],
    target: Annotated[Path, typer.Argument(metavar="OUT", help="Scored .csv or .parquet (written when complete).")],
    chunk_rows: Annotated[int, typer.Option(help="Rows per chunk; memory grows with this, not the file.")] = 100_000,
    registry: RegistryOption = None,
) -> None:
    """Score a whole cohort file in chunks; bad rows are kept and explained in the `error` column."""
    from cds.pipelines.risk.cohort_file import count_rows, score_file

    def body() -> None:
        if not source.is_file():
            raise InvalidInputError(f"{source} does not exist", code="input_missing")
        with (
            open_risk_method(equation_name, registry) as (equation, _),
            tqdm(total=count_rows(source), unit="rows", unit_scale=True, desc=equation.name) as bar,
        ):
            summary = score_file(equation, source, target, chunk_rows=chunk_rows, progress=bar.update)
        out(
            f"{summary.rows} rows: {summary.scored} scored, {summary.out_of_range} out of range, "
            f"{summary.errors} with errors -> {target}"
        )

    run_command(body)
