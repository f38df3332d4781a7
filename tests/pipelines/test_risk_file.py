from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cds.cli.main import app
from cds.errors import InvalidInputError
from cds.models.risk import get_equation
from cds.pipelines.risk.cohort_file import score_file

runner = CliRunner()


def cohort(n: int = 250) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({
        "patient": np.arange(n),
        "age": rng.integers(35, 85, n), "sex": rng.choice(["female", "male"], n),
        "race": rng.choice(["white", "african_american", "other"], n),
        "total_cholesterol": rng.uniform(140, 300, n).round(), "hdl_cholesterol": rng.uniform(25, 90, n).round(),
        "systolic_bp": rng.uniform(95, 190, n).round(), "bp_treated": rng.integers(0, 2, n),
        "smoker": rng.integers(0, 2, n), "diabetes": rng.integers(0, 2, n),
    })  # fmt: skip
    frame.loc[5, "systolic_bp"] = 900
    frame.loc[6, "sex"] = "unknown"
    frame.loc[7, "hdl_cholesterol"] = np.nan
    return frame


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_every_row_is_kept_and_bad_rows_are_explained(tmp_path: Path, suffix: str) -> None:
    source, target = tmp_path / f"in{suffix}", tmp_path / f"out{suffix}"
    frame = cohort()
    frame.to_csv(source, index=False) if suffix == ".csv" else frame.to_parquet(source, index=False)
    summary = score_file(get_equation("pce"), source, target, chunk_rows=64)
    scored = pd.read_csv(target) if suffix == ".csv" else pd.read_parquet(target)
    assert len(scored) == len(frame) == summary.rows
    assert scored["patient"].tolist() == frame["patient"].tolist()
    assert "systolic_bp is impossible (900)" in scored.loc[5, "error"]
    assert "sex is 'unknown'" in scored.loc[6, "error"]
    assert "hdl_cholesterol is missing" in scored.loc[7, "error"]
    too_old = scored["age"] > 79
    assert (scored.loc[too_old & (scored["status"] != "error"), "status"] == "out_of_range").all()
    assert summary.errors == 3 and summary.scored + summary.out_of_range + summary.errors == summary.rows
    ok = scored["status"] == "scored"
    single = get_equation("pce").evaluate({c: frame.loc[ok, c].to_numpy() for c in frame.columns if c != "patient"})
    np.testing.assert_allclose(scored.loc[ok, "score"], single.score)


def test_missing_column_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    cohort().drop(columns=["diabetes", "smoker"]).to_csv(source, index=False)
    with pytest.raises(InvalidInputError, match="lacks columns smoker, diabetes"):
        score_file(get_equation("pce"), source, tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()


def test_cli_score_file_and_score(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    cohort(20).to_csv(source, index=False)
    result = runner.invoke(app, ["risk", "score-file", "pce", str(source), str(tmp_path / "out.parquet")])
    assert result.exit_code == 0, result.output
    assert "20 rows:" in result.output and "1 with errors" not in result.output
    patient = tmp_path / "p.json"
    patient.write_text('{"age": 55, "sex": "male", "race": "white", "total_cholesterol": 213, "hdl_cholesterol": 50,'
                       ' "systolic_bp": 120, "bp_treated": false, "smoker": false}')  # fmt: skip
    missing = runner.invoke(app, ["risk", "score", "pce", str(patient)])
    assert missing.exit_code == 2 and "missing_fields: pce needs diabetes" in missing.output
    scored = runner.invoke(app, ["risk", "score", "pce", str(patient), "--set", "diabetes=no"])
    assert scored.exit_code == 0 and '"score": 0.0537' in scored.output


def _resident_cohort(n: int) -> pd.DataFrame:
    """Resident IDs as hospitals store them: 18 characters, neighbours that differ only in the last digits (which a
    float64 cannot tell apart), one ending in the check character X, and a clinic code with leading zeros."""
    frame = cohort(n).drop(columns=["patient"])
    frame.insert(0, "resident_id", [f"11010119660412{i:04d}" for i in range(n)])
    frame.loc[1, "resident_id"] = "11010119660412000X"
    frame.insert(1, "clinic", "00731")
    return frame


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_ids_keep_their_exact_text_and_a_bad_value_after_row_100000_is_that_rows_error(tmp_path: Path,
                                                                                      suffix: str) -> None:
    frame = _resident_cohort(100_050)
    frame["systolic_bp"] = frame["systolic_bp"].astype(int).astype(str)
    frame.loc[100_020, "systolic_bp"] = "未测"  # "not measured", in the second chunk only
    frame.loc[100_021, "systolic_bp"] = "NA"
    source, target = tmp_path / "in.csv", tmp_path / f"out{suffix}"
    frame.to_csv(source, index=False)
    summary = score_file(get_equation("pce"), source, target)  # default chunks of 100,000 rows
    scored = (pd.read_csv(target, dtype=str, keep_default_na=False) if suffix == ".csv"
              else pd.read_parquet(target))  # fmt: skip
    assert summary.rows == len(scored) == len(frame)
    assert scored["resident_id"].tolist() == frame["resident_id"].tolist()  # every ID exact, none collapsed
    assert scored["resident_id"].nunique() == len(frame) and (scored["clinic"] == "00731").all()
    assert "systolic_bp is impossible ('未测')" in scored.loc[100_020, "error"]
    assert "systolic_bp is missing" in scored.loc[100_021, "error"]
    assert scored.loc[100_022, "status"] in ("scored", "out_of_range")
    if suffix == ".parquet":
        assert str(pd.read_parquet(target).dtypes["systolic_bp"]) in ("string", "object")  # one type throughout


def test_parquet_input_keeps_its_integer_ids_exact(tmp_path: Path) -> None:
    frame = _resident_cohort(300)
    frame["resident_id"] = [110101196604120000 + i for i in range(300)]  # int64: exact, float64 would not be
    source, target = tmp_path / "in.parquet", tmp_path / "out.parquet"
    frame.to_parquet(source, index=False)
    score_file(get_equation("pce"), source, target, chunk_rows=64)
    assert pd.read_parquet(target)["resident_id"].tolist() == frame["resident_id"].tolist()


def test_a_file_that_cannot_be_read_is_refused_as_unreadable(tmp_path: Path) -> None:
    source = tmp_path / "in.parquet"
    source.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(InvalidInputError) as err:
        score_file(get_equation("pce"), source, tmp_path / "out.parquet")
    assert err.value.code == "unreadable_file"
