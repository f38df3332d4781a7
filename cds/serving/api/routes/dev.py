"""Development-only token minting (mounted only in dev mode)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from cds.errors import NotAuthenticatedError
from cds.serving.api.auth import Role
from cds.serving.api.deps import StateDep

router = APIRouter(prefix="/v1/dev", tags=["dev"])


class TokenRequest(BaseModel):
    """Who the dev token is for."""

    model_config = ConfigDict(extra="forbid")  # a misspelt field is refused, not ignored

    subject: str = Field(default="dev-user", min_length=1, max_length=100)
    roles: list[Role] = Field(min_length=1)
    patient: str | None = Field(default=None, description="Limit the token to one patient, e.g. Patient/123")
    site: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9\-_.]{0,99}$",
                             description="The site the user works for (default: this deployment's, CDS_SITE)")


class TokenResponse(BaseModel):
    """An ES256 bearer token valid for one hour."""

    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int = 3600


@router.post("/token")
def dev_token(request: TokenRequest, state: StateDep) -> TokenResponse:
    """Mint a signed token for local use (exists only when CDS_DEV_MODE is on)."""
    token = state.authenticator.mint_dev_token(request.subject, request.roles, patient=request.patient,
                                               site=request.site)  # fmt: skip
    return TokenResponse(access_token=token)


class HookTokenRequest(BaseModel):
    """Which CDS service URL the pretend EHR signs for."""

    model_config = ConfigDict(extra="forbid")  # a misspelt field is refused, not ignored

    audience: str = Field(description="The service URL, e.g. http://127.0.0.1:8000/cds-services/cds-risk")


@router.post("/hooks-token")
def dev_hooks_token(request: HookTokenRequest, state: StateDep) -> TokenResponse:
    """A CDS Client JWT from the dev-mode pretend EHR (ES384, 5 minutes, single use)."""
    if state.dev_hook_client is None:
        raise NotAuthenticatedError("dev tokens exist only in dev mode", code="dev_mode_off")
    return TokenResponse(access_token=state.dev_hook_client.mint(request.audience), expires_in=300)
