"""Build a torch network from a :class:`~cds.models.spec.NetworkSpec`.

The architectures are a closed set (:class:`~cds.models.spec.Architecture`); parameters are passed to the
MONAI constructor as keyword arguments, so a spec file never names arbitrary code to import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cds.errors import InvalidSpecError
from cds.models.spec import Activation, Architecture, NetworkSpec

if TYPE_CHECKING:
    import torch


def build_network(spec: NetworkSpec) -> torch.nn.Module:
    """A freshly initialised network for ``spec``, with its output activation appended.

    Raises:
        InvalidSpecError: The parameters do not fit the architecture's constructor.
    """
    import torch
    from monai.networks.nets.densenet import DenseNet, DenseNet121
    from monai.networks.nets.segresnet import SegResNet
    from monai.networks.nets.unet import UNet

    constructors: dict[Architecture, Any] = {
        Architecture.DENSENET: DenseNet,
        Architecture.DENSENET121: DenseNet121,
        Architecture.UNET: UNet,
        Architecture.SEGRESNET: SegResNet,
    }
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in spec.params.items()}
    try:
        body: torch.nn.Module = constructors[spec.architecture](**params)
    except TypeError as exc:
        raise InvalidSpecError(f"network {spec.architecture.value} rejects params {params}: {exc}") from exc
    if spec.output_activation is Activation.SIGMOID:
        return torch.nn.Sequential(body, torch.nn.Sigmoid())
    if spec.output_activation is Activation.SOFTMAX:
        return torch.nn.Sequential(body, torch.nn.Softmax(dim=1))
    return body
