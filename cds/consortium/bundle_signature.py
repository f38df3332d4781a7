"""A JSON Web Signature on a FHIR Bundle, so a member site can prove where a shared result came from.

What is signed: the Bundle's canonical form, JCS (RFC 8785: keys sorted, no whitespace, numbers and strings in
one spelling) of the Bundle as JSON with ``Bundle.signature.data`` left out, so every element, the signature's
own ``type``, ``when`` and ``who`` included, is covered, and reformatting the JSON (indentation, key order) is not
a change. How: a JWS (RFC 7515) with ``ES256``, the key's thumbprint as ``kid`` and the payload detached and
unencoded (RFC 7797, ``b64: false``), as ``Bundle.signature.data`` (base64 of the compact serialisation,
``sigFormat`` ``application/jose``). The signature is the site's: ``Bundle.signature.who`` names the site
(identifier ``urn:cds:site``), and a verifier accepts it only when the key that verifies it belongs to that site in
its trust store (:class:`~cds.consortium.site_keys.TrustStore`).

Refusals are :class:`~cds.errors.InvalidInputError` with a reason code: ``unsigned``, ``signature_malformed``,
``unknown_signer`` (a ``kid`` no trusted member has), ``signer_mismatch`` (a key of another site than the one
named), ``signature_invalid`` (the content changed after signing, or a forged signature).
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
from dataclasses import dataclass
from typing import Any

import rfc8785
from jwt import api_jws
from jwt.exceptions import InvalidSignatureError, PyJWTError

from cds.consortium.site_keys import ALGORITHM, SiteKeyRing, TrustStore
from cds.errors import InvalidInputError

SITE_SYSTEM = "urn:cds:site"
JOSE = "application/jose"
SIGNED_FORMAT = "application/fhir+json"
SIGNATURE_TYPES = "urn:iso-astm:E1762-95:2013"
SOURCE_SIGNATURE = {"system": SIGNATURE_TYPES, "code": "1.2.840.10065.1.12.1.14", "display": "Source Signature"}


@dataclass(frozen=True)
class VerifiedSignature:
    """A signature that verified: whose it is and when it was made.

    Attributes:
        site: The signing site's code.
        kid: The key that signed.
        signed_at: The signing time (the protected header's ``sigT``, also ``Bundle.signature.when``).
    """

    site: str
    kid: str
    signed_at: str


def canonical_form(bundle: dict[str, Any]) -> bytes:
    """The bytes a signature covers: JCS of the Bundle without ``signature.data``.

    Raises:
        InvalidInputError: ``not_canonicalisable``: numbers JSON cannot carry exactly (NaN, integers over 2^53).
    """
    content = copy.deepcopy(bundle)
    signature = content.get("signature")
    if isinstance(signature, dict):
        signature.pop("data", None)
    try:
        return bytes(rfc8785.dumps(content))
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise InvalidInputError(f"the Bundle has values JSON canonicalisation refuses ({exc})",
                                code="not_canonicalisable") from None  # fmt: skip


def sign_bundle(bundle: dict[str, Any], ring: SiteKeyRing, *, when: dt.datetime | None = None) -> dict[str, Any]:
    """A copy of ``bundle`` with this site's signature in ``Bundle.signature`` (any earlier signature replaced).

    Raises:
        ConfigurationError: The key ring has no usable active key.
    """
    kid, key = ring.active()
    signed_at = (when or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).isoformat(timespec="seconds")
    signed = copy.deepcopy(bundle)
    signed["signature"] = {
        "type": [SOURCE_SIGNATURE],
        "when": signed_at,
        "who": {"identifier": {"system": SITE_SYSTEM, "value": ring.site}, "display": ring.site},
        "targetFormat": SIGNED_FORMAT,
        "sigFormat": JOSE,
    }
    token = api_jws.encode(canonical_form(signed), key, algorithm=ALGORITHM, is_payload_detached=True,
                           headers={"kid": kid, "typ": None, "cty": SIGNED_FORMAT, "sigT": signed_at})  # fmt: skip
    signed["signature"]["data"] = base64.b64encode(token.encode("ascii")).decode("ascii")
    return signed


def _token(bundle: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The signature element and its compact JWS.

    Raises:
        InvalidInputError: ``unsigned`` or ``signature_malformed``.
    """
    signature = bundle.get("signature")
    if not isinstance(signature, dict) or not signature.get("data"):
        raise InvalidInputError("the Bundle carries no signature", code="unsigned")
    if signature.get("sigFormat") != JOSE:
        raise InvalidInputError(f"signature format {signature.get('sigFormat')!r}; {JOSE} is verified",
                                code="signature_malformed")  # fmt: skip
    try:
        token = base64.b64decode(str(signature["data"]), validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInputError("Bundle.signature.data is not base64 of a JWS", code="signature_malformed") from None
    parts = token.split(".")
    if len(parts) != 3 or parts[1]:
        raise InvalidInputError("Bundle.signature.data is not a compact JWS with a detached payload",
                                code="signature_malformed")  # fmt: skip
    return signature, token


def signing_kid(bundle: dict[str, Any]) -> str:
    """The ``kid`` a signed Bundle names (unverified: for records, not for trust).

    Raises:
        InvalidInputError: ``unsigned`` or ``signature_malformed``.
    """
    return str(_header(_token(bundle)[1]).get("kid", ""))


def _header(token: str) -> dict[str, Any]:
    """The JWS's header, unverified.

    Raises:
        InvalidInputError: ``signature_malformed``.
    """
    try:
        return dict(api_jws.get_unverified_header(token))
    except PyJWTError:
        raise InvalidInputError("the JWS header cannot be read", code="signature_malformed") from None


def verify_bundle(bundle: dict[str, Any], trust: TrustStore) -> VerifiedSignature:
    """Check a shared Bundle's signature against the members' keys.

    Raises:
        InvalidInputError: See the module docstring for the reasons.
    """
    signature, token = _token(bundle)
    header = _header(token)
    if header.get("alg") != ALGORITHM:
        raise InvalidInputError(f"JWS algorithm {header.get('alg')!r}; {ALGORITHM} is accepted",
                                code="signature_malformed")  # fmt: skip
    trusted = trust.get(str(header.get("kid", "")))
    if trusted is None:
        raise InvalidInputError(f"signed with key {header.get('kid')!r}, which no trusted member site has "
                                f"(trusted: {', '.join(trust.sites()) or 'none'})", code="unknown_signer")  # fmt: skip
    who = signature.get("who") or {}
    named = (who.get("identifier") or {}) if isinstance(who, dict) else {}
    if named.get("system") != SITE_SYSTEM or named.get("value") != trusted.site:
        raise InvalidInputError(f"signed with a key of site {trusted.site!r} but names {named.get('value')!r}",
                                code="signer_mismatch")  # fmt: skip
    try:
        api_jws.decode_complete(token, trusted.key, algorithms=[ALGORITHM], detached_payload=canonical_form(bundle))
    except InvalidSignatureError:
        raise InvalidInputError("the signature does not match the Bundle: its content changed after signing, or "
                                "the signature is not this key's", code="signature_invalid") from None  # fmt: skip
    except PyJWTError as exc:
        raise InvalidInputError(f"the JWS cannot be verified ({type(exc).__name__})",
                                code="signature_malformed") from None  # fmt: skip
    if header.get("sigT") != signature.get("when"):
        raise InvalidInputError("Bundle.signature.when differs from the signed time", code="signature_invalid")
    return VerifiedSignature(site=trusted.site, kid=trusted.kid, signed_at=str(header.get("sigT")))
