"""How often the chest radiograph plausibility gate refuses what it should not, and passes what it should not.

    python -m benchmarks.plausibility_rates [--per-kind 40] [--chests 400] [--size 512]

Everything goes the way a pre-read goes: a DICOM file (CR, tagged CHEST/PA) → the defensive reader → display
normalisation → the gate (``chest-xray-plausibility`` through ONNX Runtime). Held-out data from seeds no training
split used:

* false-refusal rate: generated chest radiographs, stored MONOCHROME2 and MONOCHROME1;
* miss rate per kind: generated images of every non-chest kind (``training/data/non_chest.py``);
* miss rate on real images: every single-frame grey-level image in pydicom's bundled test files (CT, MR, US, ...;
  none is a chest radiograph), counted once per SOP instance (many are the same image in several encodings).

Writes ``benchmarks/results/<device>-<date>-plausibility-rates.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
from pathlib import Path

import numpy as np
import pydicom.data

from benchmarks.reporting import command_line, device_name, write_results
from cds.errors import CdsError
from cds.models.registry import ModelRegistry
from cds.models.spec import BackendKind
from cds.pipelines.imaging.dicom_reader import read_instance
from cds.pipelines.imaging.plausibility import PlausibilityCheck
from cds.pipelines.imaging.radiograph import display_pixels
from cds.serving.backends import create_backend
from cds.settings import Settings
from training.data.chest_xray import render
from training.data.dicom_files import write_radiograph
from training.data.non_chest import KINDS, render_non_chest

SEED = 900  # training used seeds 100-102


def _through_dicom(gate: PlausibilityCheck, pixels: np.ndarray, folder: Path, **options: bool) -> float:
    path = write_radiograph(folder / "image.dcm", pixels, **options)
    return gate.score(display_pixels(read_instance(path)))


def _real_images(gate: PlausibilityCheck) -> list[dict[str, object]]:
    folder = Path(pydicom.data.__file__).parent / "test_files"
    seen: dict[str, dict[str, object]] = {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        try:
            instance = read_instance(path)
            uid = str(instance.dataset.get("SOPInstanceUID", path.name))
            if uid in seen:
                continue
            score = gate.score(display_pixels(instance))
        except (CdsError, ValueError, TypeError, AttributeError, NotImplementedError, RuntimeError):
            continue  # not a single-frame grey-level image, or not decodable: the gate never sees it
        seen[uid] = {"file": path.name, "modality": str(instance.dataset.get("Modality", "")), "score": score}
    return list(seen.values())


def _row(name: str, scores: list[float], threshold: float, *, should_pass: bool) -> dict[str, object]:
    array = np.asarray(scores)
    passed = int((array >= threshold).sum())
    wrong = len(array) - passed if should_pass else passed
    return {"set": name, "n": len(array), "passed": passed, "refused": len(array) - passed,
            "error_rate": wrong / len(array) if len(array) else float("nan"),
            "error": "false refusal" if should_pass else "miss"}


def main(argv: list[str] | None = None) -> None:
    """Measure and write the rates."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chests", type=int, default=400)
    parser.add_argument("--per-kind", type=int, default=40)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--model", default="chest-xray-plausibility")
    args = parser.parse_args(argv)
    spec = ModelRegistry.from_directory(Settings().registry_dir).get(args.model)
    rows = []
    with create_backend(BackendKind.ONNXRUNTIME, spec) as backend, tempfile.TemporaryDirectory() as scratch:
        gate, folder = PlausibilityCheck(backend), Path(scratch)
        chests = [render(args.size, SEED, i)[0] for i in range(args.chests)]
        for name, mono1 in (("chest (MONOCHROME2)", False), ("chest (MONOCHROME1)", True)):
            scores = [_through_dicom(gate, x, folder, monochrome1=mono1) for x in chests]
            rows.append(_row(name, scores, gate.threshold, should_pass=True))
        for kind in sorted(KINDS):
            scores = [_through_dicom(gate, render_non_chest(kind, args.size, SEED + 1, i), folder)
                      for i in range(args.per_kind)]
            rows.append(_row(kind, scores, gate.threshold, should_pass=False))
        real = _real_images(gate)
        rows.append(_row("pydicom bundled images (real, non-chest)", [float(str(r["score"])) for r in real],
                         gate.threshold, should_pass=False))
    generated = [r for r in rows[2:-1]]
    missed = sum(int(str(r["passed"])) for r in generated)
    total = sum(int(str(r["n"])) for r in generated)
    report = {"device": device_name(), "date": dt.date.today().isoformat(),
              "command": command_line("benchmarks.plausibility_rates", argv), "model": spec.key,
              "threshold": gate.threshold, "image_size": args.size, "rows": rows,
              "generated_non_chest_miss_rate": missed / total, "real_images": real}
    table = "\n".join(
        [f"# Plausibility gate {spec.key} (threshold {gate.threshold:.3f})", "",
         f"Device: {report['device']}; command: `{report['command']}`", "",
         "| set | n | passed | refused | error | rate |", "| --- | --- | --- | --- | --- | --- |"]
        + [f"| {r['set']} | {r['n']} | {r['passed']} | {r['refused']} | {r['error']} | {r['error_rate']:.3f} |"
           for r in rows]
        + ["", f"All generated non-chest kinds together: miss rate {missed / total:.3f} ({missed}/{total})."]
    ) + "\n"
    write_results("plausibility-rates", report, table)


if __name__ == "__main__":
    main()
