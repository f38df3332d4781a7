"""The ECG rhythm task: generated records with a consistent truth, training and serving reading the same windows,
and the smoke configuration trained, exported, registered with its card and served through the ECG pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom.data import get_testdata_file

from cds.models.registry import ModelRegistry
from cds.pipelines.ecg.pipeline import EcgPipeline, Patient
from cds.pipelines.ecg.preprocess import model_signal, model_windows
from cds.pipelines.ecg.record import STANDARD_LEADS
from cds.results.ecg import RHYTHMS
from cds.serving.backends import create_backend
from cds.settings import REPO_ROOT
from training.core.config import load_config
from training.data.ecg_signals import generate_ecg
from training.ecg_rhythm import EcgRhythmConfig, EcgRhythmTask, RandomWindowd

SMOKE = REPO_ROOT / "training" / "configs" / "ecg_rhythm_smoke.yaml"
PYDICOM_ECG = Path(get_testdata_file("waveform_ecg.dcm", download=False))


def test_generated_records_are_reproducible_and_their_leads_agree() -> None:
    first = generate_ecg(np.random.default_rng([3, 4]), "frequent_ectopy")
    again = generate_ecg(np.random.default_rng([3, 4]), "frequent_ectopy")
    np.testing.assert_array_equal(first.signals, again.signals)
    clean = generate_ecg(np.random.default_rng(9), "sinus_rhythm", noise=False)
    lead = {name: clean.signals[i].astype(np.float64) for i, name in enumerate(STANDARD_LEADS)}
    np.testing.assert_allclose(lead["III"], lead["II"] - lead["I"], atol=1e-5)  # Einthoven
    np.testing.assert_allclose(lead["aVR"], -(lead["I"] + lead["II"]) / 2, atol=1e-5)  # Goldberger
    energy = np.abs(np.diff(clean.signals, axis=1)).sum(axis=0)  # the QRS is where the leads move fastest
    for peak in clean.truth.r_peaks:
        assert energy[max(0, peak - 10):peak + 10].max() >= np.percentile(energy, 90)


def test_labels_follow_their_definitions() -> None:
    for index in range(60):
        ecg = generate_ecg(np.random.default_rng([5, index]), RHYTHMS[index % len(RHYTHMS)])
        truth = ecg.truth
        ectopic = sum(kind != "N" for kind in truth.beat_kinds)
        if truth.rhythm == "frequent_ectopy":
            assert ectopic >= 3
        if truth.rhythm.startswith("sinus"):
            assert ectopic <= 1
            low, high = {"sinus_bradycardia": (0, 60), "sinus_rhythm": (60, 100),
                         "sinus_tachycardia": (100, 400)}[truth.rhythm]  # fmt: skip
            assert low <= truth.heart_rate_bpm <= high
        if truth.rhythm in ("atrial_fibrillation", "atrial_flutter"):
            assert truth.pr_ms is None


def test_validation_windows_are_the_serving_windows() -> None:
    config = load_config(EcgRhythmConfig, SMOKE, [])
    task = EcgRhythmTask(config)
    ecg = generate_ecg(np.random.default_rng(11), "atrial_fibrillation", sampling_hz=360, duration_s=11)
    item = {"image": model_signal(ecg.signals, ecg.sampling_hz, task.waveform), "label": [0.0] * 6}
    evaluated = RandomWindowd(task.waveform, train=False, jitter=0.25, seed=0)(item)["image"]
    np.testing.assert_array_equal(evaluated, model_windows(ecg.signals, ecg.sampling_hz, task.waveform)[0])
    trained = RandomWindowd(task.waveform, train=True, jitter=0.25, seed=0)(item)["image"]
    assert trained.shape == evaluated.shape == (12, task.waveform.window_samples)


@pytest.fixture(scope="module")
def smoke_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.ecg_rhythm import main

    root = tmp_path_factory.mktemp("ecg-smoke")
    main(["--config", str(SMOKE), "--tracking-uri", f"sqlite:///{root / 'mlflow.db'}", "--registry",
          str(root / "registry"), "--cards", str(root / "cards"), "--set", f"train.checkpoint_dir={root / 'ckpt'}"])
    return root / "registry"


def test_the_smoke_model_is_registered_with_its_waveform_contract_and_card(smoke_registry: Path) -> None:
    spec = ModelRegistry.from_directory(smoke_registry).get("ecg-rhythm-smoke")
    config = load_config(EcgRhythmConfig, SMOKE, [])
    assert spec.modality.value == "ECG" and spec.labels == RHYTHMS
    assert spec.waveform == config.input.waveform()
    assert spec.inputs[0].shape == (-1, 12, spec.waveform.window_samples)
    card = spec.model_card.read_text()
    assert "trained on generated ECGs" in card and "| Atrial fibrillation |" in card
    assert "qt_ms (ms)" in card and "Beats: sensitivity" in card  # the measurement errors are in the card


def test_the_registered_model_reads_a_real_ecg_through_the_pipeline(smoke_registry: Path) -> None:
    spec = ModelRegistry.from_directory(smoke_registry).get("ecg-rhythm-smoke")
    with create_backend("onnxruntime", spec) as onnx, create_backend("torch", spec) as torch_backend:
        from_onnx = EcgPipeline(onnx)(PYDICOM_ECG, patient=Patient(sex="female", age_years=42))
        from_torch = EcgPipeline(torch_backend)(PYDICOM_ECG)
    result = from_onnx.result
    assert result.model.sha256 == spec.artifacts.onnx.sha256 and result.source.format == "dicom"
    assert [f.label for f in result.classifier] == list(RHYTHMS)
    onnx_p = np.array([f.probability for f in result.classifier])
    torch_p = np.array([f.probability for f in from_torch.result.classifier])
    np.testing.assert_allclose(onnx_p, torch_p, atol=1e-4)  # backends agree on the averaged windows
    assert result.measurements.heart_rate_bpm is not None and 50 < result.measurements.heart_rate_bpm < 80
    assert set(result.stage_ms) >= {"read_ms", "quality_ms", "measure_ms", "rules_ms", "preprocess_ms", "infer_ms"}
