"""Train, evaluate, export and register the ``ecg-rhythm`` classifier (12-lead ECG → rhythm probabilities).

    python -m training.ecg_rhythm                                  # training/configs/ecg_rhythm.yaml (shipped)
    python -m training.ecg_rhythm --config training/configs/ecg_rhythm_smoke.yaml        # a minute, for tests

Same flow as every classifier (``training/classifier.py``): MLflow run, fit loop, thresholds chosen on validation,
test metrics with bootstrap CIs, ONNX (and torch weights) with a parity check, MLflow model version, promotion into
``registry/ecg-rhythm/<version>/`` with its card. The network is a MONAI DenseNet with ``spatial_dims: 1``: a 1-D
CNN over the twelve leads.

A recording becomes model input through :func:`cds.pipelines.ecg.preprocess.model_windows` in training and serving
alike (resampled to ``model_hz``, band-passed, clipped, windows of ``window_s``), driven by the spec's
``waveform`` section. Training samples one random window per record per epoch (and scales amplitudes); validation
and test read a record's first window; the card's held-out section then reads every held-out record the way the
service does (all windows, probabilities averaged) and reports sensitivity and specificity per rhythm.

Data: generated 12-lead ECGs (``training/data/ecg_signals.py``), the six rhythms in equal shares, each record from
its own seed ``(data.seed + split, index)``: train, validation and test never share a record, and the ECG tests'
held-out records use seeds of another form (``900_000 + i``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from monai.data import Dataset as MonaiDataset
from monai.transforms import Compose, MapTransform
from tqdm import tqdm

from cds.models.card import CardContent
from cds.models.spec import Activation, WaveformInput
from cds.pipelines.ecg.preprocess import cut_windows, model_signal
from cds.pipelines.ecg.record import STANDARD_LEADS
from cds.results.ecg import RHYTHMS
from cds.settings import REPO_ROOT
from training.classifier import SPLITS, ClassifierConfig, ClassifierTask, Split, run_classifier
from training.core.config import as_dict
from training.data.ecg_signals import generate_ecg

LABELS = RHYTHMS
DEFAULT_CONFIG = REPO_ROOT / "training" / "configs" / "ecg_rhythm.yaml"


@dataclass(frozen=True)
class GeneratedEcgs:
    """Sizes of the generated splits (records per split, the six rhythms in equal shares) and the seed base."""

    train: int = 4200
    validation: int = 900
    test: int = 1500
    seed: int = 0


@dataclass(frozen=True)
class EcgInputConfig:
    """The waveform input (see :class:`cds.models.spec.WaveformInput`)."""

    model_hz: float = 125.0
    window_s: float = 8.0
    stride_s: float = 4.0
    band_hz: tuple[float, float] = (0.5, 40.0)
    clip_mv: float = 5.0

    def waveform(self) -> WaveformInput:
        """As the spec states it."""
        return WaveformInput(leads=STANDARD_LEADS, model_hz=self.model_hz, window_s=self.window_s,
                             stride_s=self.stride_s, band_hz=self.band_hz, clip_mv=self.clip_mv)  # fmt: skip


@dataclass(frozen=True)
class EcgRhythmConfig(ClassifierConfig):
    """The ECG rhythm task's configuration (``training/configs/ecg_rhythm*.yaml``)."""

    name: str = "ecg-rhythm"
    input: EcgInputConfig = field(default_factory=EcgInputConfig)
    data: GeneratedEcgs = field(default_factory=GeneratedEcgs)
    amplitude_jitter: float = 0.25
    experiment: str = "ecg-rhythm"


def record_seed(base: int, split: int, index: int) -> np.random.Generator:
    """The random source of one generated record (``split``: 0 train, 1 validation, 2 test)."""
    return np.random.default_rng([base + split, index])


class RandomWindowd(MapTransform):
    """``image``: a whole model signal [leads, samples] → one window [leads, window] (random when training, with
    amplitudes scaled by 1 ± ``jitter``; the first window otherwise)."""

    def __init__(self, waveform: WaveformInput, *, train: bool, jitter: float, seed: int) -> None:
        super().__init__(keys=["image"])
        self.waveform, self.train, self.jitter = waveform, train, jitter
        self.rng = np.random.default_rng(seed)

    def __call__(self, data: dict[str, Any]) -> dict[str, Any]:
        item = dict(data)
        signal = np.asarray(item["image"])
        length = self.waveform.window_samples
        if self.train and signal.shape[1] > length:
            start = int(self.rng.integers(0, signal.shape[1] - length + 1))
            window = signal[:, start:start + length] * self.rng.uniform(1 - self.jitter, 1 + self.jitter)
        else:
            window = cut_windows(signal, self.waveform)[0]
        item["image"] = np.ascontiguousarray(window, dtype=np.float32)
        item["label"] = np.asarray(item["label"], dtype=np.float32)
        return item


class EcgRhythmTask(ClassifierTask[EcgRhythmConfig]):
    """Generated 12-lead ECGs → probability of each rhythm."""

    config_class = EcgRhythmConfig
    labels = LABELS

    def __init__(self, config: EcgRhythmConfig) -> None:
        super().__init__(config)
        self.waveform = config.input.waveform()

    def splits(self, names: tuple[str, ...]) -> dict[str, Split]:
        """Generated records, preprocessed once (whole recordings at ``model_hz``), one-hot rhythm labels."""
        return {name: self._generated(name, offset) for offset, name in enumerate(SPLITS) if name in names}

    def _generated(self, name: str, offset: int) -> Split:
        count, base = getattr(self.config.data, name), self.config.data.seed
        items, labels, rates = [], [], []
        for index in tqdm(range(count), desc=f"generating {name}", unit="ECG", leave=False):
            ecg = generate_ecg(record_seed(base, offset, index), LABELS[index % len(LABELS)])
            label = np.eye(len(LABELS), dtype=np.float32)[LABELS.index(ecg.truth.rhythm)]
            items.append({"image": model_signal(ecg.signals, ecg.sampling_hz, self.waveform), "label": label})
            labels.append(label)
            rates.append(f"{ecg.sampling_hz:g} Hz")
        return Split(items, np.asarray(labels), {"sampling rate": np.asarray(rates)})

    def dataset(self, split: Split, *, train: bool) -> MonaiDataset:
        """One window per record (random and amplitude-scaled when training)."""
        window = RandomWindowd(self.waveform, train=train, jitter=self.config.amplitude_jitter,
                               seed=self.config.train.seed)  # fmt: skip
        return MonaiDataset(split.items, transform=Compose([window]))

    def spec_document(self, thresholds: dict[str, float]) -> dict[str, Any]:
        """Contract: [-1, 12, window] mV → [-1, 6] rhythm probabilities; the waveform section says the rest."""
        w = self.waveform
        return {
            "name": self.config.name,
            "version": self.config.version,
            "task": "classification",
            "modality": "ECG",
            "description": (f"Probability of each of six rhythms ({', '.join(LABELS)}) in a {w.window_s:g}-s "
                            f"window of a 12-lead resting ECG at {w.model_hz:g} Hz, band-passed "
                            f"{w.band_hz[0]:g}-{w.band_hz[1]:g} Hz, in mV; a recording's windows are averaged."),
            "intended_use": (
                "Demonstration and engine testing only. Not a medical device, not for diagnostic use: it was "
                "trained on generated ECGs. A second opinion beside the engine's rule-based rhythm, for a "
                "cardiologist who reads and signs every ECG."
            ),
            "intended_use_zh": (
                "仅供演示与引擎测试。不是医疗器械，不可用于诊断：在生成的心电图上训练。作为引擎基于规则的节律判读之"
                "外的第二意见，供判读并签发每份心电图的心内科医师参考。"
            ),
            "inputs": [{"name": "image", "dtype": "float32", "shape": [-1, len(w.leads), w.window_samples],
                        "value_range": [-w.clip_mv, w.clip_mv], "channel_names": list(w.leads)}],
            "outputs": [{"name": "probabilities", "dtype": "float32", "shape": [-1, len(LABELS)],
                         "value_range": [0.0, 1.0], "channel_names": list(LABELS)}],
            "labels": list(LABELS),
            "thresholds": {k: round(v, 6) for k, v in thresholds.items()},
            "max_batch_size": self.config.max_batch_size,
            "not_for_diagnostic_use": True,
            "waveform": w.model_dump(mode="json"),
        }

    def card(self, reproduce: str) -> CardContent:
        """Generated-data statement, input, limitations."""
        config, g, w = self.config, self.config.data, self.waveform
        data = (
            "**This is a demonstration model trained on generated ECGs.** Every record is **generated** by "
            "`training/data/ecg_signals.py`; no recording of a person was used. A moving cardiac dipole (P, QRS in "
            "three parts, T; fibrillatory or flutter waves in AF and flutter) is projected on the twelve lead "
            "directions, so the leads agree with one another. Each record has its own sampling rate (250, 360, "
            "500 or 1000 Hz), length (8-12 s), rate, PR, QRS, QT, frontal axis (-40 to 110 degrees), amplitudes, "
            "precordial lead gains, baseline wander, mains hum (50 or 60 Hz) and muscle noise; 15 % of sinus "
            "records hold one isolated ectopic beat. Sinus records are labelled by their generated mean rate "
            "(< 60 bradycardia, > 100 tachycardia); frequent ectopy is sinus with 3-6 premature ventricular or "
            f"atrial beats. Splits come from independent seeds: train {g.train} (seeds ({g.seed}, i)), validation "
            f"{g.validation} (({g.seed + 1}, i); thresholds and early stopping), test {g.test} "
            f"(({g.seed + 2}, i); the held-out metrics below), the six rhythms in equal shares."
        )
        network = config.network_spec(Activation.SIGMOID)
        return CardContent(
            data_statement=data,
            limitations=[
                "Trained and tested on generated ECGs only: its metrics say nothing about real recordings, and it "
                "is not for clinical use. Real ECGs have morphologies, artefacts and rhythms it never saw.",
                "Six rhythms only. Heart block, junctional and ventricular rhythms, pacing, pre-excitation, bundle "
                "branch blocks and every morphology diagnosis are out of scope; such an ECG still gets one of the "
                "six probabilities, which is why the engine also states its rule-based rhythm and measurements.",
                "Sinus bradycardia and tachycardia are defined by rate; near 60 and 100 per minute the call is "
                "as uncertain as the rate.",
                f"Input: {w.window_s:g}-s windows at {w.model_hz:g} Hz of the twelve leads in standard order, mV; "
                "recordings of other rates are resampled by the engine, shorter than "
                f"{w.min_s:g} s or longer than {w.max_s:g} s refused.",
            ],
            reproduce=reproduce,
            notes={"network": f"`{network.architecture.value}` with {network.params}, sigmoid output",
                   "training": str(as_dict(config.train))},
            sections={"Input (training and serving)": (
                "`cds.pipelines.ecg.preprocess.model_windows` in training and serving alike, from the spec's "
                f"`waveform` section:\n\n```json\n{w.model_dump_json(indent=2)}\n```")},
        )

    def held_out_sections(self, score: Any, thresholds: dict[str, float]) -> dict[str, str]:
        """Every held-out record read as the service reads it (all windows, probabilities averaged)."""
        from training.ecg_evaluation import held_out_report

        return {"Held-out rhythm and measurement accuracy (the service's path)":
                held_out_report(score, self.waveform, seeds=range(self.config.data.test),
                                seed_base=self.config.data.seed + 2)}  # fmt: skip


def main(argv: list[str] | None = None) -> Any:
    """Entry point (see the module docstring)."""
    return run_classifier(EcgRhythmTask, argv, description=__doc__, default_config=DEFAULT_CONFIG)


if __name__ == "__main__":
    main()

