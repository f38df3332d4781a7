"""The command flow of every volumetric segmentation training CLI: train → evaluate → export → log → promote.

A task (CT organs) says how to get its labelled volumes and describe its model (:class:`SegmentationTask`);
everything else is here, once. Volumes reach the network through :mod:`cds.pipelines.imaging.ct_volume`, the module the
serving pipeline uses: reoriented, resampled to the model spacing, windowed to [0, 1], labels mapped nearest. The
shared fit loop (``training.core``) trains on random ``roi_size`` patches (``RandCropByPosNegLabeld``, light
intensity augmentation) with Dice + cross-entropy and picks the epoch by the mean foreground Dice of fixed validation
patches. The chosen network then segments every validation and test volume whole with the serving path's
sliding-window inferer (``training/segmentation_eval.py``): Dice and HD95 per structure, volume errors in mL. ONNX
export (fixed ``roi_size`` windows, dynamic batch) is checked against torch on held-out test patches, logged to MLflow
with the spec, evaluation and card, registered and promoted (``training/release.py``).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
import torch
from torch.utils.data import Dataset

from cds.models.card import CardContent, Evaluation
from cds.models.nets import build_network
from cds.models.spec import Activation, Architecture, NetworkSpec, VolumePreprocessing
from cds.pipelines.imaging.ct_volume import labels_to_model_grid, to_model_grid
from training.core.config import TrainConfig, as_dict, load_config
from training.core.distributed import init_world, shutdown
from training.core.loop import fit, unwrap_copy
from training.release import (
    fit_tracked,
    parse_args,
    promote_version,
    publish,
    reproduce_command,
    with_checkpoints,
)
from training.segmentation_eval import LabelledVolume, evaluate_volumes
from training.tracking import Run

log = logging.getLogger("training.segmentation")
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class SegmentationConfig:
    """Fields every segmentation task has; tasks subclass it with their data section.

    ``spacing_mm``, ``window``, ``roi_size``, ``overlap`` and ``largest_component_only`` become the spec's
    ``volume`` section, so serving prepares volumes and reads the output exactly as the evaluation did.
    ``patches_per_volume`` random patches are drawn from every training volume per epoch, centred on a voxel of a
    class drawn with ``class_ratios`` (so small structures are seen as often as large ones);
    ``val_patches_per_volume`` fixed patches per validation volume select the epoch.
    """

    name: str = "model"
    version: str = "1.0.0"
    architecture: str = Architecture.UNET.value
    network: dict[str, Any] = field(default_factory=dict)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(channels_last=False))
    spacing_mm: tuple[float, float, float] = (1.5, 1.5, 1.5)
    window: tuple[float, float] = (-160.0, 240.0)
    roi_size: tuple[int, int, int] = (64, 64, 64)
    overlap: float = 0.25
    largest_component_only: bool = False
    patches_per_volume: int = 4
    val_patches_per_volume: int = 2
    class_ratios: tuple[float, ...] | None = None  # patch centres per class (background first); None: equal
    augment: bool = True
    bootstrap: int = 1000
    parity_atol: float = 1e-4
    parity_samples: int = 4
    torch_weights: bool = True
    threads: int = 0  # torch CPU threads; 0 keeps torch's default
    experiment: str = "default"
    max_batch_size: int = 8

    def network_spec(self, activation: Activation) -> NetworkSpec:
        """The network, with ``activation`` appended (none while training, softmax when served)."""
        return NetworkSpec(architecture=Architecture(self.architecture), params=self.network,
                           output_activation=activation)

    def volume(self) -> VolumePreprocessing:
        """The spec's ``volume`` section."""
        return VolumePreprocessing(spacing_mm=self.spacing_mm, window=self.window, roi_size=self.roi_size,
                                   overlap=self.overlap, largest_component_only=self.largest_component_only)

    def contract(self, labels: Sequence[str]) -> dict[str, Any]:
        """Spec fields fixed by the flow: tensors (fixed roi windows, dynamic batch), labels, volume, batch size."""
        roi = list(self.roi_size)
        return {
            "inputs": [{"name": "image", "dtype": "float32", "shape": [-1, 1, *roi], "value_range": [0.0, 1.0]}],
            "outputs": [{"name": "probabilities", "dtype": "float32", "shape": [-1, len(labels), *roi],
                         "value_range": [0.0, 1.0], "channel_names": list(labels)}],
            "labels": list(labels),
            "volume": self.volume().model_dump(mode="json"),
            "max_batch_size": self.max_batch_size,
        }


C = TypeVar("C", bound=SegmentationConfig)


class SegmentationTask(ABC, Generic[C]):
    """What differs between segmentation tasks."""

    config_class: type[C]
    labels: tuple[str, ...]  # index 0 is "background"

    def __init__(self, config: C) -> None:
        self.config = config

    @abstractmethod
    def cases(self, names: tuple[str, ...]) -> dict[str, list[LabelledVolume]]:
        """The requested splits' labelled volumes."""

    @abstractmethod
    def spec_document(self) -> dict[str, Any]:
        """The cds spec fields the run knows (promotion adds artifacts, card path and run identity)."""

    @abstractmethod
    def card(self, reproduce: str) -> CardContent:
        """The card's prose."""


def model_item(case: LabelledVolume, params: VolumePreprocessing) -> dict[str, np.ndarray]:
    """``image`` float32 [1, D, H, W] in [0, 1] and ``label`` uint8 [1, D, H, W] on the model grid."""
    image, grid = to_model_grid(case.volume, params)
    return {"image": image[None], "label": labels_to_model_grid(case.labels, grid)[None]}


def _patch_transforms(config: SegmentationConfig, classes: int, *, train: bool) -> Any:
    from monai.transforms import (
        Compose,
        RandCropByLabelClassesd,
        RandGaussianNoised,
        RandScaleIntensityd,
        RandShiftIntensityd,
    )

    keys = ["image", "label"]
    ratios = list(config.class_ratios) if config.class_ratios is not None else None
    steps: list[Any] = [RandCropByLabelClassesd(keys, label_key="label", spatial_size=config.roi_size,
                                                ratios=ratios, num_classes=classes, num_samples=1,
                                                indices_key="indices", warn=False)]
    if train and config.augment:
        steps += [RandScaleIntensityd("image", factors=0.05, prob=0.5),
                  RandShiftIntensityd("image", offsets=0.03, prob=0.5),
                  RandGaussianNoised("image", std=0.01, prob=0.3)]
    return Compose(steps)


class PatchDataset(Dataset[dict[str, torch.Tensor]]):
    """Random ``roi_size`` patches: item ``i`` is a patch of volume ``i % n``; ``transform`` is seeded by the loop.

    Volumes are padded to at least the roi (with 0, the window's low end, and background) and the voxel indices of
    each of the ``classes`` found once.
    """

    def __init__(self, items: Sequence[dict[str, np.ndarray]], config: SegmentationConfig, classes: int, *,
                 patches_per_volume: int, train: bool) -> None:
        from monai.transforms import ClassesToIndicesd, Compose, SpatialPadd

        prepare = Compose([SpatialPadd(["image", "label"], spatial_size=config.roi_size),
                           ClassesToIndicesd("label", indices_postfix="_indices", num_classes=classes)])
        self.volumes = []
        for item in items:
            ready = prepare(dict(item))
            self.volumes.append({"image": ready["image"], "label": ready["label"], "indices": ready["label_indices"]})
        self.patches_per_volume = patches_per_volume
        self.transform = _patch_transforms(config, classes, train=train)

    def __len__(self) -> int:
        return len(self.volumes) * self.patches_per_volume

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        patch = self.transform(dict(self.volumes[index % len(self.volumes)]))[0]
        return {"image": _plain(patch["image"], torch.float32), "label": _plain(patch["label"], torch.uint8)}


def _plain(value: Any, dtype: torch.dtype) -> torch.Tensor:
    tensor = value.as_tensor() if hasattr(value, "as_tensor") else torch.as_tensor(np.asarray(value))
    return tensor.to(dtype).contiguous()


def fixed_patches(items: Sequence[dict[str, np.ndarray]], config: SegmentationConfig, classes: int, per_volume: int,
                  seed: int) -> list[dict[str, torch.Tensor]]:
    """The same ``per_volume`` patches of every volume on every call (validation and parity inputs)."""
    dataset = PatchDataset(items, config, classes, patches_per_volume=per_volume, train=False)
    dataset.transform.set_random_state(seed=seed)
    return [dataset[i] for i in range(len(dataset))]


def mean_dice(labels: np.ndarray, logits: np.ndarray) -> float:
    """Mean over foreground classes present in ``labels`` of the Dice of the arg-max over all patches pooled."""
    predicted = np.argmax(logits, axis=1)
    truth = labels[:, 0].astype(np.int64)
    scores = []
    for c in range(1, logits.shape[1]):
        true_c, pred_c = truth == c, predicted == c
        if true_c.any():
            scores.append(2.0 * float((true_c & pred_c).sum()) / float(true_c.sum() + pred_c.sum()))
    return float(np.mean(scores)) if scores else 0.0


def _evaluate(task: SegmentationTask[Any], model: torch.nn.Module,
              cases: dict[str, list[LabelledVolume]]) -> Evaluation:
    config = task.config
    results = {name: evaluate_volumes(model, cases[name], task.labels, config.volume(), resamples=config.bootstrap,
                                      seed=config.train.seed)[0] for name in ("validation", "test")}
    return Evaluation(segmentation=results)


def _release(task: SegmentationTask[Any], args: Any, run: Run, body: torch.nn.Module,
             cases: dict[str, list[LabelledVolume]]) -> Evaluation:
    """Main process after training: whole-volume evaluation, export with parity, log, register, promote."""
    config = task.config
    model = torch.nn.Sequential(unwrap_copy(body), torch.nn.Softmax(dim=1)).eval()
    evaluation = _evaluate(task, model, cases)
    test_items = [model_item(case, config.volume()) for case in cases["test"]]
    per_volume = max(1, -(-config.parity_samples // max(1, len(test_items))))
    patches = fixed_patches(test_items, config, len(task.labels), per_volume,
                            seed=config.train.seed + 7)[: config.parity_samples]
    inputs = np.stack([p["image"].numpy() for p in patches]).astype(np.float32)
    document = task.spec_document() | config.contract(task.labels)
    network = config.network_spec(Activation.SOFTMAX) if config.torch_weights else None
    published = publish(run, model, inputs, name=config.name, output_name="probabilities", document=document,
                        evaluation=evaluation, card=task.card(reproduce_command(task, args)),
                        parity_atol=config.parity_atol, torch_network=network)
    metrics = {"parity.max_abs": published.parity.max_abs}
    for split, structures in published.evaluation.segmentation.items():
        metrics[f"{split}.mean_dice"] = published.evaluation.mean_dice(split) or float("nan")
        for label, m in structures.items():
            metrics |= {f"{split}.dice.{label}": m.dice, f"{split}.volume_abs_error_ml.{label}": m.volume_abs_error_ml}
            if m.hd95_mm is not None:
                metrics[f"{split}.hd95_mm.{label}"] = m.hd95_mm
    run.log_metrics(metrics)
    promote_version(run, args, config.name, published.version)
    return published.evaluation


def run_segmentation(task_class: type[SegmentationTask[Any]], argv: list[str] | None, *, description: str | None,
                     default_config: Path) -> Evaluation | None:
    """Parse options, then train, evaluate, export, log, register and promote one segmentation model.

    Under ``torchrun`` every process trains; the main process alone evaluates, exports and logs.
    Returns the evaluation on the main process, ``None`` elsewhere.
    """
    from monai.data import Dataset as MonaiDataset
    from monai.losses import DiceCELoss

    args = parse_args(argv, description, default_config)
    config = load_config(task_class.config_class, args.config, args.set)
    train = with_checkpoints(config.train, config.name, config.version)
    config = replace(config, train=replace(train, channels_last=False))  # a 4-D memory format; these nets are 3-D
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    world = init_world(config.train.device)
    logging.basicConfig(level=logging.INFO if world.is_main else logging.WARNING, format="%(message)s")
    task = task_class(config)
    loss = DiceCELoss(to_onehot_y=True, softmax=True)
    params = config.volume()
    try:
        cases = task.cases(SPLITS if world.is_main else ("train", "validation"))
        train_items = [model_item(case, params) for case in cases["train"]]
        classes = len(task.labels)
        train_set = PatchDataset(train_items, config, classes, patches_per_volume=config.patches_per_volume,
                                 train=True)
        val_set = MonaiDataset(fixed_patches([model_item(case, params) for case in cases["validation"]], config,
                                             classes, config.val_patches_per_volume, seed=config.train.seed + 1))
        body = build_network(config.network_spec(Activation.NONE))
        if not world.is_main:
            fit(body, train_set, val_set, loss_fn=loss, config=config.train, world=world, score_fn=mean_dice)
            return None
        with Run(config.experiment, f"{config.name}-{config.version}", args.tracking_uri) as run:
            fit_tracked(run, body, train_set, val_set, loss_fn=loss, config=config.train, world=world,
                        score_fn=mean_dice, params=as_dict(config) | {"labels": list(task.labels)})
            evaluation = _release(task, args, run, body, cases)
            log.info("test mean Dice %.4f", evaluation.mean_dice("test") or float("nan"))
            return evaluation
    finally:
        shutdown(world)
