"""Image folders with a labels CSV: how real datasets come in, and how generated ones are written out.

Layout: ``FOLDER/labels.csv`` with a ``path`` column (relative to FOLDER; DICOM or PNG), one 0/1 column per label,
and any other columns as subgroups (e.g. ``sex``), which evaluation reports metrics for.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from training.data.chest_xray import LABELS, render
from training.data.dicom_files import write_radiograph

LABELS_CSV = "labels.csv"


@dataclass(frozen=True)
class LabelledFiles:
    """Image files with their label vectors and subgroup columns."""

    paths: tuple[Path, ...]
    labels: np.ndarray  # float32 [N, len(label names)]
    subgroups: dict[str, np.ndarray]


def read_labels_csv(folder: Path, label_names: Sequence[str]) -> LabelledFiles:
    """Read ``folder/labels.csv``; every label column must exist and hold 0 or 1, every file must exist."""
    table = folder / LABELS_CSV
    if not table.is_file():
        raise FileNotFoundError(f"{table} not found: a dataset folder needs a {LABELS_CSV} (path + label columns)")
    with table.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise ValueError(f"{table} has no rows")
    columns = set(rows[0])
    missing = [name for name in ("path", *label_names) if name not in columns]
    if missing:
        raise ValueError(f"{table} lacks columns {missing}")
    paths, labels = [], np.zeros((len(rows), len(label_names)), dtype=np.float32)
    for i, row in enumerate(rows):
        path = folder / row["path"]
        if not path.is_file():
            raise FileNotFoundError(f"{table} row {i + 2}: {path} does not exist")
        paths.append(path)
        for j, name in enumerate(label_names):
            if row[name] not in ("0", "1"):
                raise ValueError(f"{table} row {i + 2}: {name}={row[name]!r}, expected 0 or 1")
            labels[i, j] = float(row[name])
    extra = sorted(columns - {"path", *label_names})
    subgroups = {name: np.array([row[name] for row in rows]) for name in extra}
    return LabelledFiles(paths=tuple(paths), labels=labels, subgroups=subgroups)


def write_generated_chest_xrays(
    folder: Path, count: int, *, seed: int, size: int = 512, image_format: str = "dicom", prevalence: float = 0.1
) -> Path:
    """Write ``count`` generated radiographs (DICOM CR or 16-bit PNG) and their labels.csv; returns the CSV."""
    if image_format not in ("dicom", "png"):
        raise ValueError(f"image_format must be 'dicom' or 'png', got {image_format!r}")
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for index in tqdm(range(count), desc=f"writing {image_format}", unit="image"):
        pixels, labels, sex = render(size, seed, index, prevalence)
        name = f"cxr-{seed}-{index:06d}.{'dcm' if image_format == 'dicom' else 'png'}"
        if image_format == "dicom":
            write_radiograph(folder / name, pixels, patient_id=f"SYNTH-{seed}-{index}", sex=sex)
        else:
            Image.fromarray(np.round(pixels * 65535).astype(np.uint16)).save(folder / name)
        rows.append({"path": name, **{k: str(int(v)) for k, v in zip(LABELS, labels, strict=True)}, "sex": sex})
    table = folder / LABELS_CSV
    with table.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", *LABELS, "sex"])
        writer.writeheader()
        writer.writerows(rows)
    return table
