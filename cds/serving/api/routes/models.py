"""Registered models: list and show (spec and model card)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from cds.interop.card_language import negotiate
from cds.serving.api.auth import Principal
from cds.serving.api.deps import ALL_ROLES, StateDep, require

router = APIRouter(prefix="/v1/models", tags=["models"])
AnyRole = Annotated[Principal, Depends(require(*ALL_ROLES))]


class ModelSummary(BaseModel):
    """One model version in the list."""

    name: str
    version: str
    task: str
    modality: str
    description: str
    onnx_sha256: str


class ModelDetail(BaseModel):
    """A model version's full spec, its model card (Markdown) and its intended use in the request's language."""

    spec: dict[str, Any]
    model_card: str
    intended_use: str = Field(description="the spec's intended use in the request's language (Accept-Language, else "
                              "the site's): Chinese where the spec gives intended_use_zh, else English")


@router.get("")
def list_models(state: StateDep, _principal: AnyRole) -> list[ModelSummary]:
    """Every registered model version."""
    return [
        ModelSummary(
            name=s.name, version=s.version, task=s.task.value, modality=s.modality.value, description=s.description,
            onnx_sha256=s.artifacts.onnx.sha256,
        )  # fmt: skip
        for s in state.registry
    ]


@router.get("/{name}")
def show_model(name: str, request: Request, state: StateDep, _principal: AnyRole,
               version: str | None = None) -> ModelDetail:  # fmt: skip
    """One model's spec (newest version unless ``version`` is given), its card and its intended use."""
    spec = state.registry.get(name, version)
    spec_json = spec.model_dump(mode="json")
    for artifact in spec_json["artifacts"].values():  # server paths are not the caller's business
        if artifact:
            artifact["path"] = artifact["path"].rsplit("/", 1)[-1]
    spec_json["model_card"] = spec.model_card.name
    card = spec.model_card.read_text(encoding="utf-8") if spec.model_card.is_file() else ""
    language = negotiate(request.headers.get("accept-language"), state.settings.card_language)
    return ModelDetail(spec=spec_json, model_card=card, intended_use=spec.intended_use_in(language))
