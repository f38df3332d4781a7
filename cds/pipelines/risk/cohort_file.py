"""Population scoring: a whole cohort file through one equation, streamed in chunks so memory stays flat.

Input: CSV or Parquet with one column per equation field (extra columns are carried through). Output: the same
rows with ``score``, ``band``, ``category``, ``status`` (``scored``, ``out_of_range`` or ``error``),
``out_of_range_fields`` and ``error`` appended. A row with a missing or impossible value (text where a number
belongs, in any chunk) is kept and explained in ``error``, never dropped, and never stops the file.

Columns keep what the file says: a CSV is read as text, so every carried column (an 18-digit resident ID, a code
with leading zeros) is written back exactly as it came, and each column has one type in every chunk; a Parquet
file's carried columns keep the file's own types. Only the equation's fields are read as numbers, per value. A file
that cannot be read at all (not CSV, not Parquet, broken encoding) is refused with ``unreadable_file``: a
deterministic input failure, never retried.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cds.errors import InvalidInputError
from cds.models.risk import FieldKind, FieldSpec, RiskEquation

OUTPUT_COLUMNS = ("score", "band", "category", "status", "out_of_range_fields", "error")
MISSING_SPELLINGS = ("#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>",
                     "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null")  # pandas' default NA values  # fmt: skip


@dataclass
class FileScoringSummary:
    """Counts over the whole file."""

    rows: int = 0
    scored: int = 0
    out_of_range: int = 0
    errors: int = 0


def _read_chunks(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise InvalidInputError(f"{path.name}: cohort files must be .csv or .parquet", code="unsupported_format")
    try:
        if suffix == ".csv":  # as text: nothing is guessed, so nothing changes between chunks or on the way out
            yield from pd.read_csv(path, chunksize=chunk_rows, dtype=str, keep_default_na=False)
        else:
            for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
                yield batch.to_pandas()
    except (ValueError, UnicodeDecodeError, pa.ArrowException) as exc:  # pandas' ParserError is a ValueError
        raise InvalidInputError(f"{path.name} cannot be read as {suffix[1:]}: {type(exc).__name__}: "
                                f"{str(exc)[:200]}", code="unreadable_file") from None


def _field_values(spec: FieldSpec, column: pd.Series) -> np.ndarray:
    """One equation field's values, read per value.

    Numbers as float64; an empty cell or one of pandas' usual missing-value spellings (``NA``, ``NaN``, ``NULL``,
    ...) is missing, and text that is no number is impossible, that row's error quoting it. Booleans and categories as
    text, empty when missing.
    """
    if column.dtype.kind in "biuf":  # a typed Parquet column
        return column.astype("float64").to_numpy()
    text = column.astype("string").fillna("").str.strip()
    text = text.mask(text.isin(MISSING_SPELLINGS), "")
    if spec.kind is not FieldKind.NUMBER:
        return text.to_numpy(dtype=str)
    numbers = pd.to_numeric(text.replace("", None), errors="coerce").astype("float64").to_numpy(copy=True)
    if (np.isnan(numbers) & (text != "").to_numpy(dtype=bool)).any():  # some text is no number: the equation
        return text.to_numpy(dtype=object)  # reads these per value and names the text in the row's error
    return numbers


def count_rows(path: Path) -> int | None:
    """Row count when cheap to know (Parquet metadata); ``None`` for CSV."""
    if path.suffix.lower() in (".parquet", ".pq"):
        return int(pq.ParquetFile(path).metadata.num_rows)
    return None


def score_chunk(equation: RiskEquation, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the output columns appended."""
    data = {f.name: _field_values(f, frame[f.name]) for f in equation.fields if f.name in frame.columns}
    output = equation.evaluate(data, row_errors=True)
    errors = np.array(output.errors, dtype=object)
    failed = errors != ""
    outside = np.array([",".join(fields) for fields in output.out_of_range], dtype=object)
    result = frame.copy()
    for column in result.select_dtypes(include=["object", "str"]).columns:  # text (CSV, or Parquet strings) stays text
        result[column] = result[column].astype("string")
    result["score"] = output.score
    result["band"] = pd.array([b.value if b is not None else None for b in output.band], dtype="string")
    result["category"] = pd.array(output.category.tolist(), dtype="string")
    status = np.where(failed, "error", np.where(outside != "", "out_of_range", "scored"))
    result["status"] = pd.array(status, dtype="string")
    result["out_of_range_fields"] = pd.array(outside.tolist(), dtype="string")
    result["error"] = pd.array(errors.tolist(), dtype="string")
    return result


def score_file(
    equation: RiskEquation,
    source: Path,
    target: Path,
    *,
    chunk_rows: int = 100_000,
    progress: Callable[[int], object] | None = None,
) -> FileScoringSummary:
    """Score ``source`` into ``target`` (CSV or Parquet by extension), chunk by chunk.

    Raises:
        InvalidInputError: Unsupported format, or a required column absent from the file (all are listed).
    """
    if target.suffix.lower() not in (".csv", ".parquet", ".pq"):
        raise InvalidInputError(f"{target.name}: output must be .csv or .parquet", code="unsupported_format")
    summary = FileScoringSummary()
    writer: pq.ParquetWriter | None = None
    temporary = target.with_name(target.name + ".partial")
    try:
        for index, frame in enumerate(_read_chunks(source, chunk_rows)):
            if index == 0:
                absent = [f.name for f in equation.fields if f.required and f.name not in frame.columns]
                if absent:
                    raise InvalidInputError(
                        f"{source.name} lacks columns {', '.join(absent)} needed by {equation.name}",
                        code="missing_fields",
                    )
            scored = score_chunk(equation, frame)
            if target.suffix.lower() == ".csv":
                scored.to_csv(temporary, mode="w" if index == 0 else "a", header=index == 0, index=False)
            else:
                table = pa.Table.from_pandas(scored, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(temporary, table.schema)
                writer.write_table(table.cast(writer.schema))
            status = scored["status"]
            summary.rows += len(scored)
            summary.scored += int((status == "scored").sum())
            summary.out_of_range += int((status == "out_of_range").sum())
            summary.errors += int((status == "error").sum())
            if progress is not None:
                progress(len(scored))
        if writer is not None:
            writer.close()
            writer = None
        if summary.rows == 0:
            raise InvalidInputError(f"{source.name} has no rows", code="empty_input")
        temporary.replace(target)
    finally:
        if writer is not None:
            writer.close()
        temporary.unlink(missing_ok=True)
    return summary
