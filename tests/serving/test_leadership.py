"""One process at a time runs the single-instance services: another takes over only after the leader has stopped
them, and a process whose services fail to start gives the lock up and tries again."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from cds.serving.leadership import Leadership


def _wait(condition, timeout: float = 5.0) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_the_next_leader_starts_only_after_the_leader_has_stopped_its_services(tmp_path: Path) -> None:
    events: list[str] = []
    lock = tmp_path / "service.lock"
    first = Leadership(lock, lambda: events.append("first started"), retry_s=0.05)
    second = Leadership(lock, lambda: events.append("second started"), retry_s=0.05)
    first.start()
    second.start()
    time.sleep(0.3)
    assert first.leading and not second.leading and events == ["first started"]

    def resign() -> None:
        time.sleep(0.2)  # stopping takes a while: the other must not start meanwhile
        events.append("first stopped")

    first.stop(resign)
    assert _wait(lambda: second.leading)
    assert events == ["first started", "first stopped", "second started"]
    second.stop(lambda: events.append("second stopped"))
    assert events[-1] == "second stopped" and not second.leading


def test_services_that_fail_to_start_give_the_lock_up_and_are_tried_again(tmp_path: Path) -> None:
    lock = tmp_path / "service.lock"
    holder = Leadership(lock, lambda: None, retry_s=0.05)
    holder.start()
    attempts: list[int] = []
    failed = threading.Event()

    def flaky() -> None:
        attempts.append(1)
        if len(attempts) == 1:
            failed.set()
            raise OSError("port in use")

    waiting = Leadership(lock, flaky, retry_s=0.05)
    waiting.start()
    holder.stop()
    assert failed.wait(5) and _wait(lambda: waiting.leading)
    assert len(attempts) == 2
    waiting.stop()
    with pytest.raises(OSError, match="busy"):  # at start-up the error is the caller's
        Leadership(lock, lambda: (_ for _ in ()).throw(OSError("busy"))).start()
    fresh = Leadership(lock, lambda: None)
    fresh.start()
    assert fresh.leading  # and the lock was given up again
    fresh.stop()
