"""Authentication (OAuth2 bearer JWTs, API keys) and roles.

Bearer tokens are verified against the configured JWKS: asymmetric algorithms only (RS256/384, ES256/384; never
``none`` or HMAC), ``iss``, ``aud``, ``exp`` and ``sub`` required, roles from the ``roles`` claim, an optional
``patient`` claim restricting the token to one patient's data. API keys (``cds_<id>.<secret>``) belong to service
accounts; only the secret's sha256 is stored, compared in constant time. In dev mode the service signs its own
short-lived tokens with an ephemeral key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.orm import Session

from cds.errors import InvalidInputError, NotAuthenticatedError
from cds.serving.dev_keys import DEV_KEYS, dev_key
from cds.settings import Settings
from cds.store.audit import Actor
from cds.store.tables import ApiKeyRow

ALGORITHMS = ("RS256", "RS384", "ES256", "ES384")
API_KEY_PREFIX = "cds_"
SITE_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9\-_.]{0,99}$")  # as CDS_SITE


class Role(StrEnum):
    """Who a caller is, clinically; every route declares the roles it allows."""

    RADIOLOGIST = "radiologist"
    PATHOLOGIST = "pathologist"
    CARDIOLOGIST = "cardiologist"
    CLINICIAN = "clinician"
    ML_ENGINEER = "ml_engineer"
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    subject: str
    roles: frozenset[Role]
    via: str  # "jwt" | "api_key"
    patient: str | None = None  # a token scoped to one patient ("Patient/<id>")
    claims: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    site: str = ""  # the site the caller works for (the token's "site" claim; else this deployment's)

    @property
    def role_text(self) -> str:
        """Roles as a sorted, comma-separated string (for audit records)."""
        return ",".join(sorted(r.value for r in self.roles))

    @property
    def session_id(self) -> str:
        """What names this sign-in: the token's ``jti`` (else ``sid``, else its issue time); ``api_key`` for a key."""
        claims = self.claims
        if self.via == "jwt":
            return str(claims.get("jti") or claims.get("sid") or f"iat:{claims.get('iat', '')}")
        return self.via

    @property
    def actor(self) -> Actor:
        """The caller as the services and the audit trail know them."""
        return Actor(self.subject, self.role_text, self.patient, self.site, self.session_id)


def _roles(values: Any) -> frozenset[Role]:
    if isinstance(values, str):
        values = values.split()
    known = {r.value for r in Role}
    return frozenset(Role(v) for v in values or [] if v in known)


class Authenticator:
    """Verifies bearer tokens and API keys.

    Args:
        settings: Issuer, audience and JWKS file, or dev mode (an EC P-256 key in ``data_dir``, see
            :mod:`cds.serving.dev_keys`).
    """

    def __init__(self, settings: Settings) -> None:
        self.issuer = settings.jwt_issuer or ("cds-dev" if settings.dev_mode else None)
        self.audience = settings.jwt_audience
        self.site = settings.site  # a token without a site claim, or an API key, works for this deployment's
        self._keys: dict[str, Any] = {}
        self._dev_key: ec.EllipticCurvePrivateKey | None = None
        if settings.jwt_jwks_file is not None:
            jwks = json.loads(settings.jwt_jwks_file.read_text(encoding="utf-8"))
            for key in jwt.PyJWKSet.from_dict(jwks).keys:
                self._keys[key.key_id or ""] = key.key
        if settings.dev_mode:
            self._dev_key = dev_key(settings.data_dir / DEV_KEYS, "token-issuer", ec.SECP256R1())
            self._keys["cds-dev"] = self._dev_key.public_key()

    def verify_token(self, token: str) -> Principal:
        """A principal from a bearer JWT.

        Raises:
            NotAuthenticatedError: Malformed, unsigned, wrongly signed, expired, or for another issuer/audience.
        """
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise NotAuthenticatedError("malformed bearer token", code="invalid_token") from None
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise NotAuthenticatedError(f"token algorithm {algorithm!r} is not accepted", code="invalid_token")
        key = self._keys.get(header.get("kid") or "")
        if key is None:
            raise NotAuthenticatedError("token signed by an unknown key", code="invalid_token")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise NotAuthenticatedError("token expired", code="token_expired") from None
        except (jwt.PyJWTError, TypeError, ValueError) as exc:  # TypeError: a key of another type than alg's
            raise NotAuthenticatedError(f"token rejected: {type(exc).__name__}", code="invalid_token") from None
        patient = claims.get("patient")
        site = claims.get("site")
        return Principal(
            subject=str(claims["sub"]),
            roles=_roles(claims.get("roles")),
            via="jwt",
            patient=f"Patient/{patient}" if patient and "/" not in str(patient) else patient,
            claims=claims,
            site=str(site) if isinstance(site, str) and SITE_CODE.fullmatch(site) else self.site,
        )

    def mint_dev_token(
        self, subject: str, roles: list[Role], *, patient: str | None = None, ttl_s: int = 3600,
        site: str | None = None,
    ) -> str:
        """A token signed with the dev key (dev mode only)."""
        if self._dev_key is None:
            raise NotAuthenticatedError("dev tokens exist only in dev mode", code="dev_mode_off")
        now = dt.datetime.now(dt.UTC)
        claims: dict[str, Any] = {
            "sub": subject, "roles": [r.value for r in roles], "iss": self.issuer, "aud": self.audience,
            "iat": now, "exp": now + dt.timedelta(seconds=ttl_s), "jti": secrets.token_hex(8),
        }  # fmt: skip
        if patient:
            claims["patient"] = patient
        if site:
            claims["site"] = site
        return jwt.encode(claims, self._dev_key, algorithm="ES256", headers={"kid": "cds-dev"})


def hash_secret(secret: str) -> str:
    """sha256 of an API-key secret (secrets are 256-bit random, so a fast hash is sufficient)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(session: Session, name: str, roles: list[Role]) -> str:
    """Store a new API key and return it in clear text (shown once)."""
    if not roles:
        raise InvalidInputError("an API key needs at least one role", code="no_roles")
    key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    session.add(
        ApiKeyRow(
            id=key_id,
            name=name,
            secret_sha256=hash_secret(secret),
            roles=",".join(sorted(r.value for r in roles)),
            created_at=dt.datetime.now(dt.UTC),
            revoked=False,
        )
    )
    return f"{API_KEY_PREFIX}{key_id}.{secret}"


def verify_api_key(session: Session, value: str) -> Principal:
    """A principal from an API key.

    Raises:
        NotAuthenticatedError: Malformed, unknown, revoked, or wrong secret (one message for all, on purpose).
    """
    key_id, _, secret = value.removeprefix(API_KEY_PREFIX).partition(".")
    row = session.get(ApiKeyRow, key_id) if value.startswith(API_KEY_PREFIX) and secret else None
    if row is None or row.revoked or not hmac.compare_digest(row.secret_sha256, hash_secret(secret)):
        raise NotAuthenticatedError("API key not recognised", code="invalid_api_key")
    return Principal(subject=f"api-key:{row.name}", roles=_roles(row.roles.split(",")), via="api_key")
