"""Start and stop a local Triton Inference Server (through PyTriton) serving a cds-exported repository.

PyTriton pins ``numpy<2``, which clashes with the main environment, so the server runs from its own virtual
environment (default ``.venv-triton``, made by :func:`ensure_triton_env`) in a child process, and cds talks to
it with ``tritonclient`` like any other Triton. The Python-backend stub of the shipped ``tritonserver`` links
``libpython3.11``; :func:`server_environment` puts this interpreter's library folder first on
``LD_LIBRARY_PATH`` so the stub finds it under pyenv-style installs too.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import venv
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from cds.errors import BackendUnavailableError

log = logging.getLogger(__name__)

SERVER_SCRIPT = Path(__file__).with_name("pytriton_server.py")
REQUIREMENTS = Path(__file__).with_name("requirements-triton.txt")


def ensure_triton_env(path: Path) -> Path:
    """The Python of the server environment at ``path``, created and installed from the pinned requirements."""
    python = path / "bin" / "python"
    marker = path / ".cds-requirements"
    wanted = REQUIREMENTS.read_text(encoding="utf-8")
    if python.exists() and marker.exists() and marker.read_text(encoding="utf-8") == wanted:
        return python
    log.info("installing the Triton server environment at %s (one time, a few minutes)", path)
    if not python.exists():
        venv.EnvBuilder(with_pip=True).create(path)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", str(REQUIREMENTS)],
        check=True,
    )
    marker.write_text(wanted, encoding="utf-8")
    return python


def server_environment() -> dict[str, str]:
    """This process's environment with the interpreter's library folder first on ``LD_LIBRARY_PATH``."""
    env = dict(os.environ)
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (libdir, env.get("LD_LIBRARY_PATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class TritonPorts:
    """The server's listening ports on 127.0.0.1."""

    http: int
    grpc: int
    metrics: int

    @classmethod
    def free(cls) -> TritonPorts:
        """Three ports that are free now."""
        return cls(free_port(), free_port(), free_port())


class TritonServer:
    """A Triton server child process serving ``repository``; a context manager that waits until it is ready.

    Args:
        repository: Model repository written by :func:`~cds.serving.triton.repository.export_model_repository`.
        env_path: The server's virtual environment (created if missing); default :func:`default_env_path`.
        ports: Listening ports; free ones are chosen by default.
        log_path: Where the server's output goes (default: ``<repository>/tritonserver.log``).
        start_timeout_s: How long to wait for every model to be ready.
    """

    def __init__(
        self,
        repository: Path,
        *,
        env_path: Path | None = None,
        ports: TritonPorts | None = None,
        log_path: Path | None = None,
        start_timeout_s: float = 180.0,
    ) -> None:
        self.repository = repository
        self.env_path = env_path or default_env_path()
        self.ports = ports or TritonPorts.free()
        self.log_path = log_path or repository / "tritonserver.log"
        self.start_timeout_s = start_timeout_s
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def http_url(self) -> str:
        """``host:port`` for ``tritonclient.http``."""
        return f"127.0.0.1:{self.ports.http}"

    @property
    def grpc_url(self) -> str:
        """``host:port`` for ``tritonclient.grpc``."""
        return f"127.0.0.1:{self.ports.grpc}"

    def start(self) -> None:
        """Launch the server and block until every model in the repository is ready.

        Raises:
            BackendUnavailableError: The server exited or was not ready in time; the message ends with the
                tail of its log.
        """
        python = ensure_triton_env(self.env_path)
        command = [
            str(python),
            str(SERVER_SCRIPT),
            str(self.repository),
            f"--http-port={self.ports.http}",
            f"--grpc-port={self.ports.grpc}",
            f"--metrics-port={self.ports.metrics}",
        ]
        with self.log_path.open("wb") as sink:
            self._process = subprocess.Popen(  # noqa: S603 - fixed command built from our own paths
                command, stdout=sink, stderr=subprocess.STDOUT, env=server_environment(), start_new_session=True
            )
        models = sorted(p.parent.name for p in self.repository.glob("*/config.pbtxt"))
        self._wait_ready(models)
        log.info("Triton ready on http %s, grpc %s with %s", self.http_url, self.grpc_url, models)

    def _wait_ready(self, models: list[str]) -> None:
        import tritonclient.http as httpclient

        client = httpclient.InferenceServerClient(url=self.http_url)
        deadline = time.monotonic() + self.start_timeout_s
        try:
            while time.monotonic() < deadline:
                if self._process is not None and self._process.poll() is not None:
                    code = self._process.returncode
                    raise BackendUnavailableError(f"Triton server exited with {code}: {self._tail()}")
                try:
                    if client.is_server_ready() and all(client.is_model_ready(m) for m in models):
                        return
                except Exception:  # noqa: BLE001, S110 - not listening yet
                    pass
                time.sleep(0.5)
        finally:
            client.close()
        self.stop()
        raise BackendUnavailableError(f"Triton server not ready after {self.start_timeout_s:.0f} s: {self._tail()}")

    def _tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the server (SIGINT, then SIGKILL to its process group after ``timeout_s``)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def kill(self) -> None:
        """SIGKILL the server's whole process group at once (fault injection: a crashed server)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def __enter__(self) -> TritonServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def default_env_path() -> Path:
    """``.venv-triton`` beside the running interpreter's ``.venv`` when there is one, else in the current folder."""
    prefix = Path(sys.prefix)
    return prefix.with_name(".venv-triton") if prefix.name == ".venv" else Path(".venv-triton")
