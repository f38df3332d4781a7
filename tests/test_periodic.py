"""Background rounds: a failing round is logged by its exception's type alone and the next one runs; stopping runs
a last round only when asked."""

from __future__ import annotations

import logging
import threading

import pytest

from cds.periodic import Periodic


def test_a_failing_round_is_logged_without_its_message_and_the_rounds_go_on(caplog: pytest.LogCaptureFixture) -> None:
    rounds: list[int] = []
    third = threading.Event()

    def work() -> None:
        rounds.append(len(rounds))
        if len(rounds) == 1:
            raise RuntimeError("Patient/secret-42 could not be written")  # what must never reach the log
        if len(rounds) >= 3:
            third.set()

    runner = Periodic("cds-test", work, 0.01)
    with caplog.at_level(logging.ERROR, logger="cds.periodic"):
        runner.start()
        assert third.wait(5)
        runner.stop()
    assert "cds-test round failed: RuntimeError" in caplog.text and "secret-42" not in caplog.text
    done = len(rounds)
    assert not runner._thread.is_alive() and len(rounds) == done  # stopped, and no last round unless asked


def test_a_final_round_runs_on_stop() -> None:
    rounds: list[str] = []
    runner = Periodic("cds-test", lambda: rounds.append("round"), 3600, final=True)
    runner.start()
    runner.stop()
    assert rounds == ["round"]  # the hour never passed: the only round is the last one
