"""Typed training configuration, loaded from YAML with ``key.path=value`` overrides from the command line."""

from __future__ import annotations

import dataclasses
import types
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

import yaml

T = TypeVar("T")


@dataclass(frozen=True)
class TrainConfig:
    """How to fit a network (shared by every task).

    Attributes:
        epochs: Maximum number of passes over the training data.
        batch_size: Images per optimiser step *per process*.
        lr: Peak learning rate of the one-cycle schedule (AdamW).
        weight_decay: AdamW weight decay.
        seed: Seeds torch, numpy, the data order and augmentation.
        precision: ``bf16`` runs forward and loss under bfloat16 autocast (GPU); ``fp32`` does not.
        channels_last: Use the channels-last memory format for 4-D inputs (faster convolutions on CPU and GPU).
        grad_clip: Clip the gradient norm to this value (``None``: no clipping).
        patience: Stop after this many epochs without a better validation score (``None``: never stop early).
        checkpoint_dir: Where ``last.pt`` and ``best.pt`` go; ``None``: no checkpoints.
        resume: Continue from ``checkpoint_dir/last.pt`` when it exists.
        num_workers: DataLoader worker processes.
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
    """

    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    precision: Literal["fp32", "bf16"] = "fp32"
    channels_last: bool = True
    grad_clip: float | None = 5.0
    patience: int | None = None
    checkpoint_dir: Path | None = None
    resume: bool = False
    num_workers: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"


class ConfigError(ValueError):
    """A configuration file or override does not fit the config class."""


def _coerce_union(value: Any, options: tuple[Any, ...], where: str) -> Any:
    if value is None and type(None) in options:
        return None
    errors = []
    for option in (o for o in options if o is not type(None)):
        try:
            return _coerce(value, option, where)
        except ConfigError as exc:
            errors.append(str(exc))
    raise ConfigError("; ".join(errors))


def _coerce_scalar(value: Any, hint: type, where: str) -> Any:
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if isinstance(value, bool) or (hint is int and isinstance(value, float)):
        raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
    try:
        return hint(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}") from exc


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = get_origin(hint)
    if origin in (types.UnionType,) or str(origin) == "typing.Union":
        return _coerce_union(value, get_args(hint), where)
    if origin is Literal:
        if value not in get_args(hint):
            raise ConfigError(f"{where}: {value!r} is not one of {list(get_args(hint))}")
        return value
    if is_dataclass(hint) and isinstance(hint, type):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return build(hint, value, where)
    if origin in (dict, tuple, list):
        return value if origin is not tuple else tuple(value)
    if hint is Path:
        return Path(value)
    if hint in (bool, int, float, str):
        return _coerce_scalar(value, hint, where)
    return value


def build(cls: type[T], data: dict[str, Any], where: str = "config") -> T:
    """An instance of dataclass ``cls`` from a plain mapping; unknown keys and wrong types raise ConfigError."""
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; known: {sorted(known)}")
    values = {name: _coerce(value, hints[name], f"{where}.{name}") for name, value in data.items()}
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _set_path(data: dict[str, Any], dotted: str, raw: str) -> None:
    keys = dotted.split(".")
    node = data
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = yaml.safe_load(raw)


def load_config(cls: type[T], path: Path, overrides: list[str] | None = None) -> T:
    """Read ``path`` (YAML) into ``cls``; each override is ``dotted.key=value`` (value parsed as YAML)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"override {item!r} is not key=value")
        _set_path(data, key.strip(), raw)
    return build(cls, data, where=path.name)


def as_dict(config: Any) -> dict[str, Any]:
    """Nested plain dictionary (paths as strings), for logging and MLflow parameters."""

    def plain(value: Any) -> Any:
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value

    return {k: plain(v) for k, v in dataclasses.asdict(config).items()}

