"""Verification of the JWT a CDS Client (the EHR) sends with every CDS Hooks call.

This follows CDS Hooks 2.0, "Trusting CDS Clients".
The token must be signed with ES384 or RS384; its key comes from the issuer's configured JWKS or, when the header
carries ``jku``, from that URL only if it is on the issuer's allow-list (an unknown ``jku`` is refused without being
fetched). ``iss`` must be a configured client, ``aud`` the called service's URL, ``exp`` in the future and at most
5 minutes (plus skew) after ``iat``, and ``jti`` unseen: accepted ids are stored until the token expires, so a
replayed token is refused.

Trusted clients are configured in a JSON file (``CDS_HOOKS_CLIENTS_FILE``)::

    {"clients": [{"iss": "https://ehr.example.org", "jwks_file": "ehr-jwks.json",
                  "jku_allow": ["https://ehr.example.org/.well-known/jwks.json"]}]}
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cds.errors import ConfigurationError, NotAuthenticatedError
from cds.serving.dev_keys import dev_key
from cds.store.tables import SeenTokenRow

HOOK_ALGORITHMS = ("ES384", "RS384")
MAX_LIFETIME_S = 300 + 60  # the spec's 5 minutes, plus clock skew


@dataclass(frozen=True)
class TrustedClient:
    """One EHR allowed to call the services."""

    issuer: str
    keys: dict[str, Any] = field(default_factory=dict)  # kid -> public key
    jku_allow: tuple[str, ...] = ()


def load_clients(path: Path | None) -> dict[str, TrustedClient]:
    """Trusted clients by issuer from the configuration file (none when no file is configured)."""
    if path is None:
        return {}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        clients = {}
        for entry in document["clients"]:
            keys: dict[str, Any] = {}
            if entry.get("jwks_file"):
                jwks_path = (path.parent / entry["jwks_file"]).resolve()
                keys = _keys(json.loads(jwks_path.read_text(encoding="utf-8")))
            clients[entry["iss"]] = TrustedClient(entry["iss"], keys, tuple(entry.get("jku_allow", ())))
        return clients
    except (OSError, KeyError, TypeError, ValueError, jwt.PyJWTError) as exc:
        raise ConfigurationError(f"CDS Hooks clients file {path} is invalid: {exc}", code="hooks_clients") from exc


def _keys(jwks: dict[str, Any]) -> dict[str, Any]:
    return {key.key_id or "": key.key for key in jwt.PyJWKSet.from_dict(jwks).keys}


def fetch_jwks(url: str) -> dict[str, Any]:
    """Download a JWKS (only ever called for allow-listed ``jku`` URLs)."""
    import httpx

    response = httpx.get(url, timeout=5.0, follow_redirects=False)
    response.raise_for_status()
    document: dict[str, Any] = response.json()
    return document


@dataclass(frozen=True)
class HookClient:
    """A verified CDS Client call."""

    issuer: str
    subject: str
    jti: str
    expires: int = 0  # the token's exp (seconds since the epoch): its jti is remembered until then


class HookTokenVerifier:
    """Verifies CDS Client JWTs against the trusted clients.

    Args:
        clients: Trusted clients by issuer.
        fetch: How to download an allow-listed ``jku`` (replaceable in tests).
    """

    def __init__(self, clients: dict[str, TrustedClient], fetch: Callable[[str], dict[str, Any]] = fetch_jwks) -> None:
        self.clients = clients
        self.fetch = fetch

    def verify(self, token: str, audience: str) -> HookClient:
        """Check signature and claims (then :meth:`remember` the ``jti`` in the caller's transaction).

        Raises:
            NotAuthenticatedError: Any failure (the reason is in the code, not the token).
        """
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise NotAuthenticatedError("malformed CDS Client JWT", code="invalid_token") from None
        if header.get("alg") not in HOOK_ALGORITHMS:
            raise NotAuthenticatedError(f"CDS Client JWT must use ES384 or RS384, not {header.get('alg')!r}",
                                        code="invalid_token")  # fmt: skip
        client = self.clients.get(str(unverified.get("iss")))
        if client is None:
            raise NotAuthenticatedError("CDS Client issuer is not trusted", code="untrusted_issuer")
        key = self._key(client, header)
        try:
            claims = jwt.decode(
                token, key, algorithms=list(HOOK_ALGORITHMS), audience=audience, issuer=client.issuer,
                options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"]},
            )  # fmt: skip
        except jwt.ExpiredSignatureError:
            raise NotAuthenticatedError("CDS Client JWT expired", code="token_expired") from None
        except (jwt.PyJWTError, TypeError, ValueError) as exc:  # TypeError: a key of another type than alg's
            reason = type(exc).__name__
            raise NotAuthenticatedError(f"CDS Client JWT rejected: {reason}", code="invalid_token") from None
        if int(claims["exp"]) - int(claims["iat"]) > MAX_LIFETIME_S:
            raise NotAuthenticatedError("CDS Client JWT lives longer than 5 minutes", code="invalid_token")
        return HookClient(issuer=client.issuer, subject=str(claims["sub"]), jti=str(claims["jti"]),
                          expires=int(claims["exp"]))

    def _key(self, client: TrustedClient, header: dict[str, Any]) -> Any:
        kid = header.get("kid") or ""
        jku = header.get("jku")
        if jku is not None:
            if jku not in client.jku_allow:
                raise NotAuthenticatedError("jku is not on the issuer's allow-list", code="untrusted_jku")
            try:
                keys = _keys(self.fetch(jku))
            except Exception as exc:  # noqa: BLE001 - any fetch or parse failure means no key
                raise NotAuthenticatedError(f"cannot load keys from jku: {type(exc).__name__}",
                                            code="jku_unavailable") from None  # fmt: skip
        else:
            keys = client.keys
        if kid not in keys:
            raise NotAuthenticatedError("CDS Client JWT signed by an unknown key", code="invalid_token")
        return keys[kid]

    @staticmethod
    def remember(session: Session, client: HookClient) -> None:
        """Record a verified call's ``jti`` (forgetting expired ones).

        Raises:
            NotAuthenticatedError: ``token_replayed``: the ``jti`` was used before.
        """
        now = dt.datetime.now(dt.UTC)
        session.execute(delete(SeenTokenRow).where(SeenTokenRow.expires_at < now))
        try:
            with session.begin_nested():
                session.add(SeenTokenRow(jti=client.jti, issuer=client.issuer,
                                         expires_at=dt.datetime.fromtimestamp(client.expires, dt.UTC)))
        except IntegrityError:
            raise NotAuthenticatedError("CDS Client JWT replayed (jti already used)", code="token_replayed") from None


class DevHookClient:
    """Dev mode only: a pretend EHR (issuer ``cds-dev-ehr``, ES384) whose tokens the service trusts."""

    issuer = "cds-dev-ehr"

    def __init__(self, keys: Path) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec

        self._key = dev_key(keys, "pretend-ehr", ec.SECP384R1())
        self.client = TrustedClient(self.issuer, {"dev-ehr": self._key.public_key()})

    def mint(self, audience: str, *, subject: str = "dev-ehr-app", lifetime_s: int = 300) -> str:
        """A CDS Client JWT for ``audience`` (the service URL), with a fresh ``jti``."""
        import secrets

        now = dt.datetime.now(dt.UTC)
        claims = {"iss": self.issuer, "sub": subject, "aud": audience, "iat": now,
                  "exp": now + dt.timedelta(seconds=lifetime_s), "jti": secrets.token_hex(16)}  # fmt: skip
        return jwt.encode(claims, self._key, algorithm="ES384", headers={"kid": "dev-ehr"})
