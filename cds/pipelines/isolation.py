"""Run untrusted decoding where a crash, a panic, an endless loop or a memory bomb costs only that one input.

Decoders of compressed pixel data are native code fed by whoever sends a file: one crafted fragment can panic
(a Rust ``PanicException`` derives from ``BaseException`` and escapes ``except Exception``), loop forever or ask
for gigabytes. :class:`Isolation` runs such calls in a small pool of child processes (``spawn``: no threads or
locks are inherited), each with an address-space limit; a call that does not answer within its time limit has its
child killed and replaced. Every outcome comes back as a result or a refusal with a reason code:

* ``decoder_crashed``: the decoder raised something that is not a refusal (a panic, a segfault of the child);
* ``decoder_timeout``: no answer within ``timeout_s``; the child is killed;
* ``decoder_memory``: the decoder ran out of its address-space budget (``memory_bytes``).

A refusal the called function raises itself (:class:`~cds.errors.InvalidInputError`), or any other
:class:`~cds.errors.CdsError`, comes back as the same class with its own code.
A caller whose calls share state in the child (an open slide and its tile cache) takes a
:class:`DedicatedChild` instead, under the same limits. The process-wide pool is configured once by the
composition root (:func:`configure`) and made on first use; the service starts its children and their decoders'
imports ahead (:meth:`Isolation.prestart`), so the first image a reader opens does not wait a second for them;
``workers=0`` runs calls in-process (no isolation, for debugging only), as does a daemonic process (a training
DataLoader worker), which may not start children.

This module imports only the standard library at the top, so a child starts without numpy or any decoder loaded
until its first call, and with one thread per numerical library.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from cds import errors
from cds.errors import CdsError, InvalidInputError

log = logging.getLogger(__name__)
T = TypeVar("T")
_CHILD_ENV = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")} | {
    "RUST_BACKTRACE": "0"}  # a decoder's panic is reported by code, not by a backtrace on stderr


@dataclass(frozen=True)
class IsolationLimits:
    """How untrusted decoding runs.

    Attributes:
        timeout_s: Longest a call may take before its child is killed (``decoder_timeout``).
        memory_bytes: Address space each child may use (``decoder_memory`` beyond it).
        workers: Child processes (concurrent calls); 0 runs calls in-process, unprotected.
    """

    timeout_s: float = 60.0
    memory_bytes: int = 4 << 30
    workers: int = 2


def _limit_memory(memory_bytes: int) -> None:
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    except (ImportError, ValueError, OSError) as exc:  # not on this platform: the time limit still holds
        log.warning("decoder memory limit not set: %s", type(exc).__name__)


def _serve(connection: Connection, memory_bytes: int) -> None:
    """The child's loop: receive ``(function, args)``, answer ``(status, ...)``; never raise."""
    from cds.privacy import quiet_library_warnings

    os.environ.update(_CHILD_ENV)
    _limit_memory(memory_bytes)
    quiet_library_warnings()
    while True:
        try:
            function, args = connection.recv()
        except (EOFError, OSError):
            return
        try:
            answer: tuple[Any, ...] = ("ok", function(*args))
        except CdsError as exc:  # a refusal, or another of ours (a reader's missing package): sent back as it is
            answer = ("refused", exc.code, exc.message, type(exc).__name__)
        except MemoryError:
            answer = ("refused", "decoder_memory", "the decoder ran out of its memory budget")
        except BaseException as exc:  # noqa: BLE001 - a panic or any other escape from native code
            answer = ("refused", "decoder_crashed", f"the decoder failed ({type(exc).__name__}: {str(exc)[:200]})")
        try:
            connection.send(answer)
        except MemoryError:
            connection.send(("refused", "decoder_memory", "the decoded result does not fit the memory budget"))


def _import_modules(names: tuple[str, ...]) -> int:
    """Import ``names`` in the child (its warm-up), skipping those not installed; how many were imported."""
    import importlib

    imported = 0
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001, S112 - an optional plugin absent, or its native library failing to load
            continue  # its first real call says why, as a refusal
        imported += 1
    return imported


class _Child:
    """One child process and the parent's end of its pipe."""

    def __init__(self, context: Any, memory_bytes: int) -> None:
        self.connection, child_end = context.Pipe()
        self.process = context.Process(target=_serve, args=(child_end, memory_bytes), name="cds-decoder",
                                       daemon=True)  # fmt: skip
        self.process.start()
        child_end.close()

    def stop(self) -> None:
        self.process.kill()
        self.process.join(5)
        self.connection.close()


def _death(source: str, exit_code: int | None) -> InvalidInputError:
    """The refusal for a child that died: killed or aborted (an allocation refused) is memory, anything else a crash."""
    if exit_code in (-signal.SIGABRT, -signal.SIGKILL):
        name = signal.Signals(-exit_code).name
        return InvalidInputError(f"{source}: the decoder process was stopped by {name}, as when an allocation exceeds "
                                 "its memory budget; refused", code="decoder_memory")  # fmt: skip
    return InvalidInputError(f"{source}: the decoder process died (exit {exit_code}); refused", code="decoder_crashed")


class _ChildLostError(Exception):
    """The child of a call is gone (killed after its time limit, or dead); ``refusal`` says why."""

    def __init__(self, refusal: InvalidInputError) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


def _exchange(child: _Child, function: Callable[..., T], args: tuple[Any, ...], source: str, timeout_s: float) -> T:
    """Run ``function(*args)`` in ``child`` and return its result.

    Raises:
        InvalidInputError: The function's own refusal (the child is fine).
        _ChildLostError: No answer within ``timeout_s``, or the child died; the caller must stop the child.
    """
    try:
        child.connection.send((function, args))
        if not child.connection.poll(timeout_s):
            late = InvalidInputError(f"{source}: decoding did not finish within {timeout_s:g} s; refused",
                                     code="decoder_timeout")  # fmt: skip
            raise _ChildLostError(late)
        answer = child.connection.recv()
    except (EOFError, OSError):
        child.process.join(1)
        raise _ChildLostError(_death(source, child.process.exitcode)) from None
    if answer[0] == "refused":
        code, message, kind = answer[1], answer[2], answer[3] if len(answer) > 3 else "InvalidInputError"
        prefix = "" if message.startswith(f"{source}:") else f"{source}: "
        error_class = getattr(errors, kind, InvalidInputError)
        raise (error_class if issubclass(error_class, CdsError) else InvalidInputError)(f"{prefix}{message}",
                                                                                        code=code)  # fmt: skip
    result: T = answer[1]
    return result


class Isolation:
    """A pool of child processes that run calls under :class:`IsolationLimits`.

    Args:
        limits: Time, memory and the number of children.
    """

    def __init__(self, limits: IsolationLimits | None = None) -> None:
        self.limits = limits or IsolationLimits()
        self._context = multiprocessing.get_context("spawn")
        self._idle: queue.Queue[_Child] = queue.Queue()
        self._started = 0
        self._closed = False
        self._spare: _Child | None = None  # a dedicated child started and warmed ahead (keep_spare)
        self._spare_modules: tuple[str, ...] | None = None
        self._lock = threading.Lock()

    @property
    def in_process(self) -> bool:
        """Whether calls run in this process (isolation off, or a daemonic process that may not have children)."""
        return self.limits.workers == 0 or multiprocessing.current_process().daemon

    def _take(self) -> _Child:
        with self._lock:
            if self._idle.empty() and self._started < self.limits.workers:
                self._started += 1
                return _Child(self._context, self.limits.memory_bytes)
        return self._idle.get()

    def _replace(self, child: _Child) -> None:
        """Stop ``child`` and put a fresh one in its place (a caller waiting for an idle child gets it)."""
        child.stop()
        self._idle.put(_Child(self._context, self.limits.memory_bytes))

    def run(self, function: Callable[..., T], *args: Any, source: str = "input") -> T:
        """``function(*args)`` in a child; ``function`` must be importable by name (a module-level function).

        Raises:
            InvalidInputError: ``decoder_crashed``, ``decoder_timeout``, ``decoder_memory``, or the function's own
                refusal, each naming ``source``.
        """
        if self.in_process:
            return function(*args)
        child: _Child | None = self._take()
        try:
            assert child is not None
            return _exchange(child, function, args, source, self.limits.timeout_s)
        except _ChildLostError as lost:
            self._replace(child)  # type: ignore[arg-type]
            child = None
            raise lost.refusal from None
        finally:
            if child is not None:
                self._idle.put(child)

    def prestart(self, modules: tuple[str, ...] = ()) -> int:
        """Start the children not started yet, each importing ``modules`` now rather than on its first call.

        For a background thread at start-up: a call made meanwhile waits for a child being warmed (or takes one
        started already). A child that fails its warm-up is replaced by a fresh one, and the failure is logged
        (its first real call will say the same as a refusal). Returns how many children were started.
        """
        if self.in_process:
            return 0
        with self._lock:
            if self._closed:
                return 0
            fresh = [_Child(self._context, self.limits.memory_bytes)
                     for _ in range(self.limits.workers - self._started)]  # fmt: skip
            self._started += len(fresh)
        for child in fresh:
            try:
                _exchange(child, _import_modules, (modules,), "warm-up", self.limits.timeout_s)
            except _ChildLostError as lost:
                log.warning("a decoder process did not start: %s", lost.refusal.code)
                self._replace(child)
                continue
            except CdsError as exc:
                log.warning("a decoder process could not import its decoders: %s", exc.code)
            with self._lock:
                if self._closed:  # the pool was closed (reconfigured) while this child warmed up
                    child.stop()
                    continue
                self._idle.put(child)
        return len(fresh)

    def dedicated(self) -> DedicatedChild:
        """A child of its own (not from the pool) for calls that keep state in it, such as an open slide.

        The caller closes it. Not for :attr:`in_process` pools. With :meth:`keep_spare` on, this is the spare started
        ahead (its modules imported), and the next spare starts in the background.
        """
        with self._lock:
            child, self._spare = self._spare, None
        if child is not None and not child.process.is_alive():  # killed while it waited (the OOM killer, an operator)
            child.stop()
            child = None
        if self._spare_modules is not None:
            self._start_spare()
        return DedicatedChild(child or _Child(self._context, self.limits.memory_bytes), self.limits.timeout_s)

    def keep_spare(self, modules: tuple[str, ...]) -> None:
        """Keep one dedicated child started ahead, with ``modules`` imported.

        So that opening a slide does not wait about a second for a process and its readers. Started in the
        background, and again after each use.
        """
        if self.in_process:
            return
        self._spare_modules = modules
        self._start_spare()

    def _start_spare(self) -> None:
        def warm() -> None:
            modules = self._spare_modules
            with self._lock:
                if self._closed or self._spare is not None or modules is None:
                    return
            child = _Child(self._context, self.limits.memory_bytes)
            try:
                _exchange(child, _import_modules, (modules,), "warm-up", self.limits.timeout_s)
            except _ChildLostError as lost:
                if not self._closed:  # (a pool closed meanwhile, at the end of the process, is no news)
                    log.warning("a spare decoder process did not start: %s", lost.refusal.code)
                child.stop()
                return
            except CdsError as exc:
                log.warning("a spare decoder process could not import its readers: %s", exc.code)
            with self._lock:
                if self._closed or self._spare is not None:
                    child.stop()
                    return
                self._spare = child

        threading.Thread(target=warm, name="cds-spare-decoder", daemon=True).start()

    def close(self) -> None:
        """Stop every idle child (children busy in other threads stay until the process ends: they are daemons)."""
        with self._lock:
            self._closed = True
            spare, self._spare = self._spare, None
        if spare is not None:
            spare.stop()
        while True:
            try:
                child = self._idle.get_nowait()
            except queue.Empty:
                return
            child.stop()


class DedicatedChild:
    """One child process that serves one owner's calls in turn, under the pool's limits.

    State kept in the child (module globals set by a call) lasts until :meth:`close`. After a timeout or a death
    every later call is refused with the same reason.
    """

    def __init__(self, child: _Child, timeout_s: float) -> None:
        self._child: _Child | None = child
        self._timeout_s = timeout_s
        self._lost: InvalidInputError | None = None
        self._lock = threading.Lock()

    def run(self, function: Callable[..., T], *args: Any, source: str = "input") -> T:
        """``function(*args)`` in this child (see :meth:`Isolation.run`)."""
        with self._lock:
            if self._child is None:
                raise self._lost or InvalidInputError(f"{source}: the decoder process is closed",
                                                      code="decoder_crashed")  # fmt: skip
            try:
                return _exchange(self._child, function, args, source, self._timeout_s)
            except _ChildLostError as lost:
                self._child.stop()
                self._child, self._lost = None, lost.refusal
                raise lost.refusal from None

    def close(self) -> None:
        """Stop the child (idempotent)."""
        with self._lock:
            if self._child is not None:
                self._child.stop()
                self._child = None


_limits = IsolationLimits()
_pool: Isolation | None = None
_pool_lock = threading.Lock()


def configure(limits: IsolationLimits) -> None:
    """Set the process-wide limits (the pool is remade with them on next use)."""
    global _limits, _pool  # noqa: PLW0603 - one pool per process, configured by the composition root
    with _pool_lock:
        _limits = limits
        if _pool is not None:
            _pool.close()
        _pool = None


def shutdown() -> None:
    """Stop the process-wide pool's idle children and its spare (a service stopping); the next use makes a new one."""
    global _pool  # noqa: PLW0603
    with _pool_lock:
        if _pool is not None:
            _pool.close()
        _pool = None


def isolation() -> Isolation:
    """The process-wide pool, made on first use."""
    global _pool  # noqa: PLW0603
    with _pool_lock:
        if _pool is None:
            _pool = Isolation(_limits)
        return _pool
