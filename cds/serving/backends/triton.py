"""Triton backend: runs a model on a Triton Inference Server through ``tritonclient`` (HTTP or gRPC)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from cds.errors import BackendUnavailableError, InferenceError, InvalidSpecError, MissingDependencyError
from cds.models.backend import BackendHealth
from cds.models.spec import BackendKind, ModelSpec
from cds.models.tensors import DYNAMIC
from cds.serving.backends.base import BaseBackend, as_contiguous

log = logging.getLogger(__name__)

# Model-config parameter in which the repository exporter records the sha256 of the ONNX file it wrote.
SHA256_PARAMETER = "cds_sha256"

# Triton's datatype names for the dtypes a TensorSpec can declare.
TRITON_DTYPES = {
    "float32": "FP32",
    "float16": "FP16",
    "float64": "FP64",
    "int64": "INT64",
    "int32": "INT32",
    "uint8": "UINT8",
    "bool": "BOOL",
}


class TritonProtocol(StrEnum):
    """Wire protocol to the server."""

    HTTP = "http"
    GRPC = "grpc"


@dataclass(frozen=True)
class TritonOptions:
    """Where and how to reach the server.

    Attributes:
        url: ``host:port`` without a scheme (Triton's defaults: 8000 for HTTP, 8001 for gRPC).
        protocol: HTTP or gRPC.
        model_name: Name on the server; defaults to the spec's name.
        model_version: Version on the server; empty lets the server choose per its version policy.
        timeout_s: Network timeout per request.
    """

    url: str = "127.0.0.1:8000"
    protocol: TritonProtocol = TritonProtocol.HTTP
    model_name: str | None = None
    model_version: str = ""
    timeout_s: float = 60.0


class TritonBackend(BaseBackend):
    """Sends batches to a model on a Triton server and checks the server's model matches the spec.

    Args:
        spec: The model version the server is expected to serve.
        options: Server address, protocol, model name and version, timeout.
    """

    kind = BackendKind.TRITON

    def __init__(self, spec: ModelSpec, options: TritonOptions | None = None, **kwargs: Any) -> None:
        super().__init__(spec, **kwargs)
        self.options = options or TritonOptions()
        self._client: Any = None
        self._module: Any = None
        self._identity = "unverified"

    @property
    def model_name(self) -> str:
        """The model's name on the server."""
        return self.options.model_name or self._spec.name

    def _load(self) -> str:
        self._module = _import_client(self.options.protocol)
        opts = self.options
        if opts.protocol is TritonProtocol.HTTP:
            self._client = self._module.InferenceServerClient(
                url=opts.url, connection_timeout=opts.timeout_s, network_timeout=opts.timeout_s
            )
        else:
            self._client = self._module.InferenceServerClient(url=opts.url)
        try:
            live = self._client.is_server_live()
            ready = live and self._client.is_model_ready(self.model_name, opts.model_version)
        except Exception as exc:  # noqa: BLE001 - transport errors differ per protocol
            raise BackendUnavailableError(
                f"Triton server at {opts.url} ({opts.protocol.value}) is not reachable: {exc}"
            ) from exc
        if not ready:
            raise BackendUnavailableError(
                f"Triton server at {opts.url} is {'live' if live else 'not live'} but model "
                f"{self.model_name!r} is not ready",
                code="model_not_ready",
            )
        self._check_metadata()
        self._identity = self._check_identity()
        return self._spec.artifacts.onnx.sha256

    def _check_identity(self) -> str:
        """Compare the ``cds_sha256`` parameter of the served config (written by the repository exporter).

        Returns ``verified`` when it matches, ``unverified`` when the server's config does not carry it.

        Raises:
            InvalidSpecError: The server runs a different artifact than the registry's.
        """
        config = self._client.get_model_config(self.model_name, self.options.model_version)
        if self.options.protocol is TritonProtocol.GRPC:
            from google.protobuf.json_format import MessageToDict

            config = MessageToDict(config, preserving_proto_field_name=True).get("config", {})
        served = config.get("parameters", {}).get(SHA256_PARAMETER, {}).get("string_value")
        if served is None:
            return "unverified"
        if served != self._spec.artifacts.onnx.sha256:
            raise InvalidSpecError(
                f"Triton model {self.model_name!r} runs artifact sha256 {served}, but the registry's "
                f"{self._spec.key} is {self._spec.artifacts.onnx.sha256}",
                code="artifact_hash_mismatch",
            )
        return "verified"

    def _check_metadata(self) -> None:
        raw = self._client.get_model_metadata(self.model_name, self.options.model_version)
        if self.options.protocol is TritonProtocol.GRPC:
            from google.protobuf.json_format import MessageToDict

            raw = MessageToDict(raw, preserving_proto_field_name=True)
        served = {t["name"]: t for t in raw.get("inputs", []) + raw.get("outputs", [])}
        for spec in (*self._spec.inputs, *self._spec.outputs):
            tensor = served.get(spec.name)
            if tensor is None:
                raise InvalidSpecError(
                    f"Triton model {self.model_name!r} has no tensor {spec.name!r}; it serves {sorted(served)}",
                    code="spec_server_mismatch",
                )
            shape = [int(d) for d in tensor["shape"]]
            if tensor["datatype"] != TRITON_DTYPES[spec.dtype.value] or not _dims_compatible(spec.shape, shape):
                raise InvalidSpecError(
                    f"Triton model {self.model_name!r} serves {spec.name!r} as {tensor['datatype']}{shape}; "
                    f"the spec declares {spec.describe()}",
                    code="spec_server_mismatch",
                )

    def _run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        module = self._module
        requests = []
        for spec in self._spec.inputs:
            array = as_contiguous(inputs[spec.name])
            request = module.InferInput(spec.name, list(array.shape), TRITON_DTYPES[spec.dtype.value])
            request.set_data_from_numpy(array)
            requests.append(request)
        wanted = [module.InferRequestedOutput(t.name) for t in self._spec.outputs]
        kwargs: dict[str, Any] = {"model_version": self.options.model_version, "outputs": wanted}
        if self.options.protocol is TritonProtocol.GRPC:
            kwargs["client_timeout"] = self.options.timeout_s
        try:
            result = self._client.infer(self.model_name, requests, **kwargs)
        except Exception as exc:  # noqa: BLE001 - tritonclient raises InferenceServerException and transport errors
            if _is_unavailability(exc) or not self._health().ready:  # server or model gone: not a bad answer
                raise BackendUnavailableError(
                    f"Triton server at {self.options.url} cannot run {self.model_name!r} now: {exc}",
                    code="backend_unreachable",
                ) from exc
            raise InferenceError(f"Triton inference on {self.model_name!r} failed: {exc}") from exc
        outputs = {}
        for spec in self._spec.outputs:
            array = result.as_numpy(spec.name)
            if array is None:
                raise InferenceError(f"Triton returned no output {spec.name!r}", code="output_names")
            outputs[spec.name] = array
        return outputs

    def _close(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = None

    def _device(self) -> str:
        return f"triton://{self.options.url}"

    def _precision(self) -> str:
        return "server"

    def _details(self) -> dict[str, str]:
        return {"protocol": self.options.protocol.value, "model_name": self.model_name, "server_sha256": self._identity}

    def _health(self) -> BackendHealth:
        kwargs = {"client_timeout": self.options.timeout_s} if self.options.protocol is TritonProtocol.GRPC else {}
        try:
            ready = bool(self._client.is_model_ready(self.model_name, self.options.model_version, **kwargs))
        except Exception as exc:  # noqa: BLE001 - any transport failure means not ready
            return BackendHealth(ready=False, reason=f"server unreachable: {exc}")
        return BackendHealth(ready=ready, reason="" if ready else "model not ready on server")


# Failures that mean "not serving now" (server down, restarting, model still loading), not "this input failed".
_UNAVAILABLE_STATUSES = {"StatusCode.UNAVAILABLE", "StatusCode.NOT_FOUND", "StatusCode.DEADLINE_EXCEEDED",
                         "StatusCode.CANCELLED"}  # fmt: skip
_UNAVAILABLE_WORDS = ("unknown model", "no available versions", "is not ready", "failed to connect")


def _is_unavailability(exc: Exception) -> bool:
    if isinstance(exc, OSError):
        return True
    status = getattr(exc, "status", None)
    text = str(exc).lower()
    return (callable(status) and str(status()) in _UNAVAILABLE_STATUSES) or any(w in text for w in _UNAVAILABLE_WORDS)


def _import_client(protocol: TritonProtocol) -> Any:
    try:
        if protocol is TritonProtocol.HTTP:
            import tritonclient.http as module
        else:
            import tritonclient.grpc as module
    except ImportError as exc:
        raise MissingDependencyError(
            f"tritonclient[{protocol.value}] is not installed: pip install 'tritonclient[http,grpc]'"
        ) from exc
    return module


def _dims_compatible(declared: tuple[int, ...], served: list[int]) -> bool:
    """Same rank, and each dimension equal or dynamic on either side."""
    return len(declared) == len(served) and all(
        DYNAMIC in (d, s) or d == s for d, s in zip(declared, served, strict=True)
    )
