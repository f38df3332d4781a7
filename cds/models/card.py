"""Model cards rendered from a registry entry plus its evaluation, so a card cannot drift from the registry.

:class:`Evaluation` and :class:`CardContent` are what a training run records (as JSON, next to the model in
MLflow); :func:`render_card` turns them and the :class:`~cds.models.spec.ModelSpec` into Markdown. The artifact
table and version come from the spec, never from the training run. A model brought in with ``cds models import``
has no evaluation: its card (the same renderer, ``evaluation=None``) says plainly that cds neither trained nor
evaluated it.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from cds.models.spec import ModelSpec, Urgency


class _Plain(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LabelMetrics(_Plain):
    """Discrimination and operating-point metrics of one label on one split."""

    n: int
    prevalence: float
    auc: float | None  # None when the split has only one class for this label
    auc_ci95: tuple[float, float] | None
    threshold: float
    sensitivity: float
    specificity: float
    brier: float | None = None


class SubgroupMetrics(_Plain):
    """Mean AUC over labels (with both classes present) within one subgroup of the test split."""

    n: int
    macro_auc: float | None
    labels_scored: int


class Parity(_Plain):
    """Torch vs ONNX Runtime on held-out inputs."""

    max_abs: float
    max_rel: float
    samples: int
    atol: float


class StructureMetrics(_Plain):
    """Agreement of one segmented structure with the ground truth on one split: means over volumes.

    Attributes:
        n: Volumes whose ground truth contains the structure (Dice and HD95 are averaged over these).
        dice: Mean Dice coefficient.
        dice_ci95: Percentile-bootstrap 95 % interval of the mean Dice (resampling volumes).
        hd95_mm: Mean 95th-percentile Hausdorff distance in millimetres (``None`` when never defined).
        hd95_ci95: Bootstrap 95 % interval of the mean HD95.
        volume_ml: Mean true volume.
        volume_error_ml: Mean signed volume error (predicted minus true).
        volume_abs_error_ml: Mean absolute volume error.
    """

    n: int
    dice: float
    dice_ci95: tuple[float, float] | None = None
    hd95_mm: float | None = None
    hd95_ci95: tuple[float, float] | None = None
    volume_ml: float
    volume_error_ml: float
    volume_abs_error_ml: float


class Evaluation(_Plain):
    """A model's measured performance: per split and label or structure; subgroups of the test split; export parity.

    Classification models fill ``splits`` (and ``subgroups``); segmentation models fill ``segmentation``.
    """

    splits: dict[str, dict[str, LabelMetrics]] = Field(default_factory=dict)
    subgroups: dict[str, dict[str, SubgroupMetrics]] = Field(default_factory=dict)
    segmentation: dict[str, dict[str, StructureMetrics]] = Field(default_factory=dict)
    parity: Parity | None = None

    def mean_dice(self, split: str) -> float | None:
        """Mean Dice over the structures of ``split``."""
        values = [m.dice for m in self.segmentation.get(split, {}).values()]
        return sum(values) / len(values) if values else None

    def macro_auc(self, split: str) -> float | None:
        """Mean AUC over the labels of ``split`` that have one."""
        aucs = [m.auc for m in self.splits[split].values() if m.auc is not None]
        return sum(aucs) / len(aucs) if aucs else None


class CardContent(_Plain):
    """The prose of a card that is not in the spec."""

    data_statement: str
    limitations: list[str]
    reproduce: str
    notes: dict[str, str] = Field(default_factory=dict)  # extra "key: value" lines, e.g. the fp16 copy's behaviour
    sections: dict[str, str] = Field(default_factory=dict)  # task-specific sections: title -> Markdown body
    figures: list[str] = Field(default_factory=list)  # PNG files logged with the run, copied next to the card


def figure_name(spec: ModelSpec, figure: str) -> str:
    """File name of a run's figure next to the card: ``<name>-<version>-<figure>``."""
    return f"{spec.name}-{spec.version}-{figure}"


def _fmt(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _mm(values: tuple[float, ...] | tuple[int, ...]) -> str:
    return " × ".join(f"{v:g}" for v in values)


def _size(path: Path) -> str:
    size = path.stat().st_size if path.is_file() else 0
    return f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.0f} kB"


def _ci(interval: tuple[float, float] | None, digits: int) -> str:
    return f" ({interval[0]:.{digits}f}–{interval[1]:.{digits}f})" if interval else ""


def _segmentation(evaluation: Evaluation) -> list[str]:
    lines: list[str] = []
    for split, structures in evaluation.segmentation.items():
        volumes = max((m.n for m in structures.values()), default=0)
        lines += [
            "",
            f"### {split} (n = {volumes} volumes; mean Dice {_fmt(evaluation.mean_dice(split))})",
            "| structure | volumes | Dice (95 % bootstrap CI) | HD95 mm (95 % bootstrap CI) | mean true volume mL "
            "| volume error mL: mean (mean absolute) |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        lines += [
            f"| {label} | {m.n} | {m.dice:.4f}{_ci(m.dice_ci95, 4)} | {_fmt(m.hd95_mm, 2)}{_ci(m.hd95_ci95, 2)} "
            f"| {m.volume_ml:.2f} | {m.volume_error_ml:+.2f} ({m.volume_abs_error_ml:.2f}) |"
            for label, m in structures.items()
        ]
    if lines:
        lines += ["", "Each volume is segmented whole (sliding window on the model grid, labels mapped back to the "
                  "source voxels by nearest neighbour) and compared with its ground truth on the source grid; "
                  "Dice and HD95 are averaged over the volumes that contain the structure, with percentile-bootstrap "
                  "intervals over volumes."]
    return lines


def _performance(evaluation: Evaluation) -> list[str]:
    lines = ["## Performance"]
    if evaluation.splits:
        lines += _classification(evaluation)
    return lines + _segmentation(evaluation)


def _classification(evaluation: Evaluation) -> list[str]:
    lines: list[str] = []
    for split, labels in evaluation.splits.items():
        lines += [
            "",
            f"### {split} (n = {next(iter(labels.values())).n}; macro AUC {_fmt(evaluation.macro_auc(split))})",
            "| label | prevalence | AUC (95 % bootstrap CI) | threshold | sensitivity | specificity |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for label, m in labels.items():
            lines.append(
                f"| {label} | {m.prevalence:.3f} | {_fmt(m.auc)}{_ci(m.auc_ci95, 4)} | {m.threshold:.4f} "
                f"| {m.sensitivity:.3f} | {m.specificity:.3f} |"
            )
    lines += ["", "Sensitivity and specificity are at each label's operating threshold, chosen on validation."]
    for column, groups in evaluation.subgroups.items():
        lines += ["", f"### Test split by `{column}`", "| group | n | macro AUC | labels scored |",
                  "| --- | --- | --- | --- |"]
        lines += [f"| {g} | {m.n} | {_fmt(m.macro_auc)} | {m.labels_scored} |" for g, m in groups.items()]
    return lines


IMPORTED = ("> **Imported model.** cds did not train or evaluate this model. Its provenance, training data and "
            "performance are unknown to cds; what follows is what the imported file and the person who imported it "
            "stated.\n")
NOT_EVALUATED = ("Metrics: none measured by cds. Evaluate the model on data from your own setting before relying on "
                 "any output.")


def urgency_section(spec: ModelSpec) -> list[str]:
    """The worklist-urgency table of a classification spec that names urgencies (nothing otherwise)."""
    if not spec.urgency:
        return []
    lines = ["## Worklist urgency",
             "A positive finding ranks its study by its label's urgency (critical, then urgent, then routine). Only a "
             "critical label at or above its critical threshold makes a study critical; a positive critical label "
             "below it ranks as urgent. Labels not listed are routine.", "",
             "| label | urgency | operating threshold | critical threshold |", "| --- | --- | --- | --- |"]
    for urgency in Urgency:
        for label in (name for name in spec.labels if spec.urgency.get(name, Urgency.ROUTINE) is urgency):
            critical = (_fmt(spec.critical_thresholds.get(label, spec.thresholds.get(label)))
                        if urgency is Urgency.CRITICAL else "—")  # fmt: skip
            lines.append(f"| {label} | {urgency.value} | {_fmt(spec.thresholds.get(label))} | {critical} |")
    return lines


def render_card(spec: ModelSpec, evaluation: Evaluation | None, content: CardContent) -> str:
    """The card's Markdown text for ``spec``; ``evaluation`` is ``None`` for an imported model cds never evaluated."""
    root = spec.model_card.parent
    torch_artifact = spec.artifacts.torch
    lines = [
        f"# Model card: {spec.name} {spec.version}",
        "",
        "> **Not for diagnostic use.**\n" if spec.not_for_diagnostic_use else "",
        *([IMPORTED] if evaluation is None else []),
        "## Model details",
        f"- Task: {spec.task.value}; modality: {spec.modality.value}; labels: {', '.join(spec.labels)}",
        f"- {spec.description}",
    ]
    if torch_artifact is not None:
        lines.append(f"- Network: `{torch_artifact.network.architecture.value}` with {torch_artifact.network.params}")
    if spec.volume is not None:
        v = spec.volume
        lines.append(
            f"- Preprocessing: reoriented to (superior, posterior, left), resampled to {_mm(v.spacing_mm)} mm, "
            f"window [{v.window[0]:g}, {v.window[1]:g}] scaled to [0, 1]; sliding window {_mm(v.roi_size)} voxels "
            f"with overlap {v.overlap:g}" + ("; largest connected part of each structure kept"
                                             if v.largest_component_only else ""))
    lines += [
        f"- Training run: `{spec.training_run}`",
        "",
        "## Intended use",
        spec.intended_use,
        "",
        "## Out-of-scope use",
        "Any diagnostic or treatment decision; images or patients unlike the training data described below; "
        "use without a qualified reader reviewing every output.",
        "",
        "## Training and evaluation data",
        content.data_statement,
        "",
        "## Inputs and outputs",
        "| role | name | dtype and shape | value range |",
        "| --- | --- | --- | --- |",
    ]
    for role, tensors in (("input", spec.inputs), ("output", spec.outputs)):
        lines += [f"| {role} | `{t.name}` | `{t.describe()}` | {t.value_range or '—'} |" for t in tensors]
    lines += [""] + (_performance(evaluation) if evaluation is not None else ["## Performance", NOT_EVALUATED])
    if spec.urgency:
        lines += ["", *urgency_section(spec)]
    for title, body in content.sections.items():
        lines += ["", f"## {title}", body]
    if content.figures:
        lines += ["", "## Figures"] + [f"![{Path(f).stem}]({figure_name(spec, f)})" for f in content.figures]
    if evaluation is not None and evaluation.parity is not None:
        p = evaluation.parity
        lines += [
            "",
            "## Export parity (training framework vs ONNX Runtime CPU)",
            f"- max absolute difference: {p.max_abs:.2e} over {p.samples} held-out inputs (tolerance {p.atol:g})",
            f"- max relative difference: {p.max_rel:.2e}",
        ]
    lines += [f"- {k}: {v}" for k, v in content.notes.items()]
    lines += ["", "## Limitations and caveats"] + [f"- {item}" for item in content.limitations]
    lines += ["", "## Artifacts", "| kind | file | sha256 | size |", "| --- | --- | --- | --- |"]
    for kind in ("onnx", "onnx_fp16", "torch"):
        artifact = spec.artifact(kind)
        if artifact is not None:
            lines.append(
                f"| {kind} | `{os.path.relpath(artifact.path, root)}` | `{artifact.sha256}` | {_size(artifact.path)} |"
            )
    lines += ["", "## Reproduce", "```", content.reproduce, "```", ""]
    return "\n".join(lines)


def write_card(spec: ModelSpec, evaluation: Evaluation | None, content: CardContent) -> str:
    """Render the card and write it where the spec says; returns the text."""
    text = render_card(spec, evaluation, content)
    spec.model_card.parent.mkdir(parents=True, exist_ok=True)
    spec.model_card.write_text(text, encoding="utf-8")
    return text
