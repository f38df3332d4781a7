"""Every finding of the fuzzers, replayed: what once escaped as an exception or hung is now a refusal; the seeds
are all read without a finding; and the hang tifffile has on a crafted IFD chain is cut by the slide's decoder
process as ``decoder_timeout``."""

from __future__ import annotations

import importlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cds.errors import InvalidInputError
from cds.pipelines.pathology.isolated_slide import open_isolated_slide
from fuzz.run import HARNESSES
from tests.support.isolation import isolation_limits

REGRESSIONS = Path(__file__).resolve().parents[2] / "fuzz" / "regressions"
FOUND = sorted((h, p) for h in HARNESSES for p in sorted((REGRESSIONS / h).glob("*")) if p.is_file())


@pytest.fixture(autouse=True)
def limits() -> Iterator[None]:
    with isolation_limits(timeout_s=2.0, memory_bytes=1 << 30, workers=1):
        yield


def test_there_are_regressions_to_replay() -> None:
    assert {h for h, _ in FOUND} >= {"dicom_reader", "slide_reader"}


@pytest.mark.parametrize(("harness", "path"), FOUND, ids=[f"{h}/{p.name[:20]}" for h, p in FOUND])
def test_a_finding_is_now_a_refusal(harness: str, path: Path) -> None:
    module = importlib.import_module(f"fuzz.{harness}")
    module.prepare()
    module.one_input(path.read_bytes())  # raises for anything but a documented refusal


@pytest.mark.parametrize("harness", HARNESSES)
def test_every_seed_is_read_without_a_finding(harness: str) -> None:
    module = importlib.import_module(f"fuzz.{harness}")
    module.prepare()
    seeds = list(module.seeds())
    assert len(seeds) >= 3
    for _name, data in seeds:
        module.one_input(data)


def test_a_slide_that_hangs_its_reader_is_refused_in_time(tmp_path: Path) -> None:
    (hanging,) = [p for h, p in FOUND if h == "slide_reader" and p.name.startswith("timeout-")]
    path = tmp_path / "slide.tif"
    path.write_bytes(hanging.read_bytes())
    start = time.monotonic()
    with pytest.raises(InvalidInputError) as err:
        open_isolated_slide(path)
    assert err.value.code == "decoder_timeout" and time.monotonic() - start < 10
