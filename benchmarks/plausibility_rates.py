"""How often the chest radiograph plausibility gate refuses what it should not, and passes what it should not.

    python -m benchmarks.plausibility_rates [--count 200] [--size 160]

Held-out sets (seeds no training split used; :func:`training.chest_plausibility.held_out_sets`): generated chest
films and non-chest images filmed with each vendor variant family alone, none, or all at random; paediatric chests;
every non-chest kind; and the held-out third of pydicom's real non-chest images, as stored and filmed. Every image
goes the way a pre-read goes: a DICOM file (CR, tagged CHEST/PA) → the defensive reader → display normalisation
→ the gate (``chest-xray-plausibility`` through ONNX Runtime) at its operating threshold.

Writes ``benchmarks/results/<device>-<date>-plausibility-rates.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
from pathlib import Path

from benchmarks.reporting import command_line, device_name, write_results
from cds.models.registry import ModelRegistry
from cds.models.spec import BackendKind
from cds.pipelines.imaging.dicom_reader import read_instance
from cds.pipelines.imaging.plausibility import PlausibilityCheck
from cds.pipelines.imaging.radiograph import display_pixels
from cds.serving.backends import create_backend
from cds.settings import Settings
from training.chest_plausibility import held_out_sets, rates_table
from training.data.dicom_files import write_radiograph

SEED = 900  # training used seeds 200-202 and its card's held-out sets 210-212


def main(argv: list[str] | None = None) -> None:
    """Measure and write the rates."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=200, help="images per family set (half per kind)")
    parser.add_argument("--size", type=int, default=160, help="render size of the generated scenes")
    parser.add_argument("--model", default="chest-xray-plausibility")
    args = parser.parse_args(argv)
    spec = ModelRegistry.from_directory(Settings().registry_dir).get(args.model)
    rows: list[tuple[str, int, int, bool]] = []
    with create_backend(BackendKind.ONNXRUNTIME, spec) as backend, tempfile.TemporaryDirectory() as scratch:
        gate, path = PlausibilityCheck(backend), Path(scratch) / "image.dcm"
        for held in held_out_sets(SEED, args.size, args.count):
            scores = [gate.score(display_pixels(read_instance(write_radiograph(path, image))))
                      for image in held.images]
            rows.append((held.name, len(scores), sum(s >= gate.threshold for s in scores), held.should_pass))
    worst_pass = min(p / n for name, n, p, should in rows if should and n)
    worst_refusal = min((n - p) / n for name, n, p, should in rows if not should and n)
    report = {"device": device_name(), "date": dt.date.today().isoformat(),
              "command": command_line("benchmarks.plausibility_rates", argv), "model": spec.key,
              "threshold": gate.threshold, "rows": [{"set": r[0], "n": r[1], "passed": r[2], "should_pass": r[3]}
                                                    for r in rows],
              "lowest_chest_pass_rate": worst_pass, "lowest_non_chest_refusal_rate": worst_refusal}
    table = "\n".join([
        f"# Plausibility gate {spec.key} (threshold {gate.threshold:.3f})", "",
        f"Device: {report['device']}; command: `{report['command']}`", "",
        rates_table(rows), "",
        f"Lowest pass rate of a chest set: {worst_pass:.1%}; lowest refusal rate of a non-chest set: "
        f"{worst_refusal:.1%}.",
    ]) + "\n"
    write_results("plausibility-rates", report, table)


if __name__ == "__main__":
    main()
