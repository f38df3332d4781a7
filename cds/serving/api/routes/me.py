"""``/v1/me``: who the credential belongs to (the web workspace shows only what these roles allow)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from cds.serving.api.auth import Principal, Role
from cds.serving.api.deps import ALL_ROLES, EngineDep, require

router = APIRouter(tags=["ui"])


class SessionPublic(BaseModel):
    """Who the credential belongs to."""

    subject: str
    roles: list[Role]
    patient: str | None
    via: str
    site: str
    hub_site: str | None = None  # where this site refers reads for reading (none at the hub itself)


@router.get("/v1/me")
def me(principal: Annotated[Principal, Depends(require(*ALL_ROLES))], engine: EngineDep) -> SessionPublic:
    """The caller's subject, roles and site, and the hub their site refers reads to."""
    hub = engine.settings.hub_site
    return SessionPublic(subject=principal.subject, roles=sorted(principal.roles), patient=principal.patient,
                         via=principal.via, site=principal.site,
                         hub_site=hub if hub and hub != principal.site else None)  # fmt: skip
