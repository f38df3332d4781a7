"""Untrusted pixel data decodes in isolated processes: a panic, an endless loop and a memory bomb each cost one
refusal with its reason, and the next image decodes as usual."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from cds.errors import InvalidInputError
from cds.pipelines import isolation
from cds.pipelines.imaging.dicom_reader import read_instance
from tests.support.isolation import isolation_limits
from tests.support.poison import j2k_endless, rle_bomb, rle_panic
from training.data.dicom_files import write_radiograph


@pytest.fixture
def limits() -> Iterator[isolation.IsolationLimits]:
    with isolation_limits(timeout_s=3.0, memory_bytes=1 << 30, workers=1) as chosen:
        yield chosen


def _refusal(path: Path) -> tuple[str, float]:
    start = time.monotonic()
    with pytest.raises(InvalidInputError) as refused:
        read_instance(path).pixels()
    assert path.name in refused.value.message
    return refused.value.code, time.monotonic() - start


@pytest.mark.parametrize(("build", "code"), [(rle_panic, "decoder_crashed"), (j2k_endless, "decoder_timeout"),
                                             (rle_bomb, "decoder_memory")])
def test_a_hostile_file_is_refused_and_the_next_image_decodes(tmp_path: Path, limits: isolation.IsolationLimits,
                                                              build: object, code: str) -> None:
    hostile = build(tmp_path / "hostile.dcm")  # type: ignore[operator]
    refused, seconds = _refusal(hostile)
    assert refused == code and seconds < limits.timeout_s + 5  # the endless loop is cut at the time limit
    good = write_radiograph(tmp_path / "good.dcm", np.linspace(0, 1, 128 * 128).reshape(128, 128))
    pixels = read_instance(good).pixels()  # a fresh child replaced one that was killed or died
    assert pixels.shape == (128, 128) and int(pixels.max()) == 4095


def test_the_same_image_decodes_alike_in_and_out_of_isolation(tmp_path: Path, limits: isolation.IsolationLimits
                                                              ) -> None:  # fmt: skip
    good = write_radiograph(tmp_path / "good.dcm", np.random.default_rng(2).random((64, 96)))
    isolated = read_instance(good).pixels()
    isolation.configure(isolation.IsolationLimits(workers=0))
    np.testing.assert_array_equal(isolated, read_instance(good).pixels())


def test_a_call_waiting_for_the_only_child_gets_its_replacement(tmp_path: Path,
                                                                limits: isolation.IsolationLimits) -> None:
    from concurrent.futures import ThreadPoolExecutor

    hostile = j2k_endless(tmp_path / "hostile.dcm")
    good = write_radiograph(tmp_path / "good.dcm", np.zeros((64, 64)))
    with ThreadPoolExecutor(2) as pool:
        stuck = pool.submit(_refusal, hostile)
        time.sleep(0.5)  # the endless decode holds the one child; the next call waits for it
        waiting = pool.submit(lambda: read_instance(good).pixels())
        assert stuck.result(timeout=30)[0] == "decoder_timeout"
        assert waiting.result(timeout=30).shape == (64, 64)  # it got the child that replaced the killed one


def _imported(name: str) -> bool:
    """Whether module ``name`` is loaded in the process running this (a child)."""
    import sys

    return name in sys.modules


def test_prestart_starts_every_child_with_its_modules_imported() -> None:
    pool = isolation.Isolation(isolation.IsolationLimits(timeout_s=30.0, workers=2))
    try:
        assert pool.run(_imported, "tabnanny") is False  # a child started on demand has not imported it
    finally:
        pool.close()
    pool = isolation.Isolation(isolation.IsolationLimits(timeout_s=30.0, workers=2))
    try:
        assert pool.prestart(("tabnanny", "no_such_plugin_here")) == 2  # a missing optional module is skipped
        assert pool.prestart(("tabnanny",)) == 0  # both are started already
        # Idle children are taken in turn, so two calls reach both: each imported the module at its warm-up.
        assert [pool.run(_imported, "tabnanny"), pool.run(_imported, "tabnanny")] == [True, True]
    finally:
        pool.close()


def test_prestart_on_a_closed_pool_starts_nothing() -> None:
    pool = isolation.Isolation(isolation.IsolationLimits(timeout_s=30.0, workers=1))
    pool.close()
    assert pool.prestart(("tabnanny",)) == 0


def _wait_for_spare(pool: isolation.Isolation) -> None:
    for _ in range(600):  # the spare starts in a background thread
        if pool._spare is not None:  # noqa: SLF001 - what keep_spare promises
            return
        time.sleep(0.05)
    raise AssertionError("no spare child was started")


def test_a_dedicated_child_is_the_spare_started_ahead_and_the_next_spare_follows() -> None:
    pool = isolation.Isolation(isolation.IsolationLimits(timeout_s=30.0, workers=1))
    try:
        plain = pool.dedicated()
        assert plain.run(_imported, "tabnanny") is False  # without a spare: a fresh child
        plain.close()
        pool.keep_spare(("tabnanny",))
        _wait_for_spare(pool)
        spare = pool._spare  # noqa: SLF001
        first = pool.dedicated()
        assert first.run(_imported, "tabnanny") is True  # the spare, modules imported ahead
        _wait_for_spare(pool)  # its successor
        assert pool._spare is not spare  # noqa: SLF001
        first.close()
    finally:
        pool.close()
    assert pool._spare is None  # noqa: SLF001 - closing stops the spare too


def test_a_spare_that_died_while_it_waited_is_not_handed_out() -> None:
    pool = isolation.Isolation(isolation.IsolationLimits(timeout_s=30.0, workers=1))
    try:
        pool.keep_spare(("tabnanny",))
        _wait_for_spare(pool)
        pool._spare.process.kill()  # type: ignore[union-attr]  # noqa: SLF001 - as the OOM killer would
        pool._spare.process.join(5)  # type: ignore[union-attr]  # noqa: SLF001
        child = pool.dedicated()
        assert child.run(_imported, "tabnanny") is False  # a fresh child answers, not the dead one's crash
        child.close()
    finally:
        pool.close()


def test_shutdown_forgets_the_pool_and_the_next_use_makes_a_new_one() -> None:
    first = isolation.isolation()
    isolation.shutdown()
    second = isolation.isolation()
    assert second is not first and second.prestart(("tabnanny",)) == second.limits.workers  # not a closed pool
    isolation.shutdown()
