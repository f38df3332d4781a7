"""Smoke runs of the benchmark harness: the report's structure and sanity, never its speed."""

import json
import math
from pathlib import Path

import pytest

from benchmarks.harness.cli import main

SMOKE = ["--models", "lesion-demo", "--batch", "1,4", "--iterations", "4", "--warmup", "1", "--max-seconds", "5",
         "--batcher-requests", "128", "--e2e-images", "2", "--e2e-size", "256"]  # fmt: skip
PNG = b"\x89PNG\r\n\x1a\n"


def _report(results: Path) -> dict:
    (json_file,) = results.glob("*.json")
    assert json_file.with_suffix(".md").is_file()
    return json.loads(json_file.read_text())


def _check_rows(report: dict, backends: set[str]) -> None:
    rows = report["results"]
    assert {r["backend"] for r in rows} == backends
    assert {r["batch"] for r in rows} == {1, 4}
    for row in rows:
        assert row["model"] == "lesion-demo:1.1.0"
        assert row["command"] == report["command"]
        assert row["items_per_s"] > 0 and row["iterations"] >= 3
        assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"]
        assert row["peak_memory_mb"] is None or row["peak_memory_mb"] >= 0


def _finite(entries: list[dict] | dict) -> bool:
    entries = [entries] if isinstance(entries, dict) else entries
    return bool(entries) and all(math.isfinite(e["ratio"]) and e["ratio"] > 0 for e in entries)


def test_smoke_run_writes_a_sane_report(tmp_path: Path) -> None:
    status = main(["run", *SMOKE, "--backends", "onnxruntime,torch", "--results-dir", str(tmp_path)])
    assert status == 0
    report = _report(tmp_path)
    assert report["device"] and report["versions"]["torch"] and report["versions"]["onnxruntime-gpu"]
    assert report["command"].startswith("python -m benchmarks run --models lesion-demo")
    _check_rows(report, {"onnxruntime", "torch"})
    assert report["failed"] == []
    ratios = report["ratios"]
    assert set(ratios) == {"onnxruntime_vs_torch", "batcher", "end_to_end"}
    assert all(_finite(entries) for entries in ratios.values())
    assert ratios["batcher"][0]["callers"] == 64
    assert ratios["end_to_end"]["model"] == "chest-xray-demo:2.0.0"
    assert "triton" in report["ratios_skipped"]  # not requested as a backend, so named with its reason
    assert (tmp_path / report["plot"]).read_bytes().startswith(PNG)
    markdown = next(tmp_path.glob("*.md")).read_text()
    assert report["command"] in markdown and "## Ratios" in markdown


def test_absent_backends_are_skipped_with_a_reason(tmp_path: Path) -> None:
    status = main(["run", *SMOKE, "--models", "pima-diabetes-lr", "--backends", "torch,onnxruntime-cuda,tensorrt",
                   "--ratios", "none", "--results-dir", str(tmp_path)])  # fmt: skip
    assert status == 0
    report = _report(tmp_path)
    skipped = {s["backend"]: s["reason"] for s in report["skipped"]}
    assert "no torch weights" in skipped["torch"]
    if not report["environment"]["cuda_devices"]:
        assert set(skipped) == {"torch", "onnxruntime-cuda", "tensorrt"}
        assert report["results"] == [] and report["plot"] is None


@pytest.mark.triton
def test_triton_through_a_real_server(tmp_path: Path) -> None:
    status = main(["run", *SMOKE, "--backends", "onnxruntime,triton", "--ratios", "triton",
                   "--results-dir", str(tmp_path)])  # fmt: skip
    assert status == 0
    report = _report(tmp_path)
    _check_rows(report, {"onnxruntime", "triton"})
    assert report["triton"]["server"].startswith("local tritonserver")
    assert _finite(report["ratios"]["triton"])


def test_gpu_variants_are_configured_for_the_fast_path(registry) -> None:  # noqa: ANN001
    from benchmarks.harness.backends import Environment, not_engaged, options_for, unavailable
    from cds.serving.backends.onnxruntime import CUDA, TENSORRT, Precision
    from cds.serving.backends.torch import TorchPrecision

    lesion = registry.get("lesion-demo")  # ships an fp16 ONNX artifact and torch weights
    gpu = Environment(cuda_devices=1, torch_cuda=True, ort_providers=(TENSORRT, CUDA, "CPUExecutionProvider"),
                      compiler=None, gpu_precision="fp16")  # fmt: skip
    assert all(unavailable(name, lesion, gpu) is None for name in ("torch", "torch-compiled", "tensorrt"))
    torch = options_for("torch-compiled", lesion, gpu)
    assert torch.device == "cuda" and torch.precision is TorchPrecision.FP16
    assert torch.channels_last and torch.compile
    trt = options_for("tensorrt", lesion, gpu)
    assert trt.providers == (TENSORRT, CUDA) and trt.precision is Precision.FP16 and trt.io_binding
    chest = options_for("onnxruntime-cuda", registry.get("chest-xray-demo"), gpu)
    assert chest.providers == (CUDA,) and chest.precision is Precision.FP32  # no fp16 artifact shipped
    assert "did not load" in not_engaged("tensorrt", {"providers": f"{CUDA},CPUExecutionProvider"})
    assert not_engaged("tensorrt", {"providers": f"{TENSORRT},{CUDA}"}) is None


def test_fraction_of_peak_inputs(registry) -> None:  # noqa: ANN001
    from benchmarks.harness.flops import device_peak, gflop_per_item

    densenet = gflop_per_item(registry.get("chest-xray-demo").artifacts.onnx.path)
    assert densenet is not None and 5.3 < densenet < 5.8  # DenseNet-121, 1 × 224 × 224
    assert gflop_per_item(registry.get("pima-diabetes-lr").artifacts.onnx.path) is None  # no Conv/Gemm/MatMul
    assert device_peak("NVIDIA H100 80GB HBM3") == ("H100 SXM", 989.0)
    assert device_peak("NVIDIA H200") == ("H200", 989.0)
    assert device_peak("NVIDIA H100 PCIe") is None and device_peak("AMD EPYC") is None
