"""Error hierarchy of cds.

Every error the library raises on purpose is a :class:`CdsError` with a stable, machine-readable ``code``
(snake_case) and a message that says what was received and what is allowed. Each subclass also inherits the
builtin it refines, so callers that only know Python's exceptions still catch it. The mapping to HTTP status
codes lives in one place in the API layer, keyed by these classes.
"""

from __future__ import annotations


class CdsError(Exception):
    """Base class of all cds errors.

    Args:
        message: Human-readable sentence: what was received and what is allowed.
        code: Machine-readable reason; defaults to the class's ``default_code``.
    """

    default_code = "cds_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code or self.default_code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class InvalidInputError(CdsError, ValueError):
    """An input does not satisfy the contract it was checked against (shape, dtype, range, format)."""

    default_code = "invalid_input"


class InvalidSpecError(CdsError, ValueError):
    """A model spec file is malformed or inconsistent."""

    default_code = "invalid_spec"


class NotFoundError(CdsError, LookupError):
    """What was asked for does not exist (HTTP 404); subclasses name what was missing."""

    default_code = "not_found"


class ModelNotFoundError(NotFoundError):
    """No registered model matches the requested name or version."""

    default_code = "model_not_found"


class JobNotFoundError(NotFoundError):
    """No job with that id (of that kind)."""

    default_code = "job_not_found"


class ResultNotFoundError(NotFoundError):
    """No stored result, or no outcome of a job, with that id."""

    default_code = "result_not_found"


class OutputNotFoundError(NotFoundError):
    """No such output file, source file or rendering of a result."""

    default_code = "file_not_found"


class ArtifactIntegrityError(CdsError, ValueError):
    """A model artifact is missing or its sha256 does not match the registry entry."""

    default_code = "artifact_integrity"


class BackendUnavailableError(CdsError, RuntimeError):
    """An inference backend cannot be used: not installed, not reachable, not loaded or already closed."""

    default_code = "backend_unavailable"


class InferenceError(CdsError, RuntimeError):
    """The backend accepted the inputs but failed to run them, or returned outputs that break the spec."""

    default_code = "inference_failed"


class OverloadedError(CdsError, RuntimeError):
    """A bounded queue is full; the request was refused at once rather than queued without limit."""

    default_code = "overloaded"


class MissingDependencyError(CdsError, ImportError):
    """An optional dependency needed for the requested feature is not installed."""

    default_code = "missing_dependency"


class NotAuthenticatedError(CdsError, PermissionError):
    """No credentials, or credentials that do not verify (HTTP 401)."""

    default_code = "unauthorized"


class ForbiddenError(CdsError, PermissionError):
    """Valid credentials without the role or patient scope the action needs (HTTP 403)."""

    default_code = "forbidden"


class PayloadTooLargeError(CdsError, ValueError):
    """A request body over the configured size cap (HTTP 413)."""

    default_code = "payload_too_large"


class ConfigurationError(CdsError, RuntimeError):
    """The service is configured unsafely or inconsistently and refuses to start."""

    default_code = "configuration"


class NotAcceptableError(CdsError, ValueError):
    """None of the media types the client accepts can be produced (HTTP 406)."""

    default_code = "not_acceptable"


class PreconditionFailedError(CdsError, ValueError):
    """The request lacks data the service needs and cannot fetch itself (HTTP 412, as CDS Hooks prescribes)."""

    default_code = "precondition_failed"


class UnsupportedMediaTypeError(CdsError, ValueError):
    """The request body is of a media type the route does not take (HTTP 415)."""

    default_code = "unsupported_media_type"
