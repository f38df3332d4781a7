"""Site signing keys for results shared in a consortium: a key ring per site, rotation, and the members' key sets.

Each site signs what it shares with its own ECDSA P-256 key (JWS ``ES256``, which every JOSE library verifies).
A key is named by its RFC 7638 JWK thumbprint (``kid``), so a verifier can tell keys apart without trusting a
label.

- **Key ring** (:class:`SiteKeyRing`, ``CDS_SITE_KEYS_DIR``): this site's private keys, one PEM file each (mode
  0600, in a folder of mode 0700), and ``keyring.json`` listing them with their state. Exactly one key is
  ``active`` and signs; :meth:`SiteKeyRing.rotate` makes a new active key and retires the old one, which stays in
  the published key set so results signed before the rotation still verify. A compromised key is ``revoked``:
  left out of the published set, so nothing signed with it verifies anywhere once members load the new set.
- **Key sets** (:func:`public_key_set`): what a site publishes to the other members, a JWK Set with the site's
  code (``{"site": "hub", "keys": [...]}``), public keys only.
- **Trust store** (:class:`TrustStore`, ``CDS_CONSORTIUM_KEYS_DIR``): the key sets of the members this site
  accepts results from, one ``*.jwks.json`` file each, plus this site's own. A ``kid`` is looked up there and gives
  the key and the one site it belongs to.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import rfc8785
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from jwt.exceptions import InvalidKeyError

from cds.errors import ConfigurationError, InvalidInputError

ALGORITHM = "ES256"
RING_FILE = "keyring.json"
KeyState = Literal["active", "retired", "revoked"]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_jwk(key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    """The public key as a JWK with only its required members (``kty``, ``crv``, ``x``, ``y``)."""
    jwk = ECAlgorithm.to_jwk(key, as_dict=True)
    return {name: str(jwk[name]) for name in ("kty", "crv", "x", "y")}


def thumbprint(key: ec.EllipticCurvePublicKey) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url): the key's ``kid``."""
    return _b64url(hashlib.sha256(rfc8785.dumps(public_jwk(key))).digest())


@dataclass(frozen=True)
class RingEntry:
    """One key of a site's ring.

    Attributes:
        kid: The key's thumbprint.
        created: When it was made (UTC, ISO 8601).
        state: ``active`` (signs), ``retired`` (verifies what it signed) or ``revoked`` (verifies nothing).
    """

    kid: str
    created: str
    state: KeyState


class SiteKeyRing:
    """This site's signing keys in ``folder`` (see the module docstring)."""

    def __init__(self, folder: Path, site: str) -> None:
        self.folder = folder
        self.site = site

    @property
    def _ring_path(self) -> Path:
        return self.folder / RING_FILE

    def entries(self) -> list[RingEntry]:
        """The ring's keys, oldest first; empty before the first key is made.

        Raises:
            ConfigurationError: ``site_keys_invalid``: the ring file is not this site's or cannot be read.
        """
        if not self._ring_path.exists():
            return []
        try:
            document = json.loads(self._ring_path.read_text(encoding="utf-8"))
            entries = [RingEntry(kid=str(e["kid"]), created=str(e["created"]), state=e["state"])
                       for e in document["keys"]]  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigurationError(f"{self._ring_path} cannot be read ({type(exc).__name__})",
                                     code="site_keys_invalid") from None  # fmt: skip
        if document.get("site") != self.site:
            raise ConfigurationError(f"{self._ring_path} holds the keys of site {document.get('site')!r}, not "
                                     f"{self.site!r} (CDS_SITE)", code="site_keys_invalid")  # fmt: skip
        return entries

    def _write(self, entries: list[RingEntry]) -> None:
        document = {"site": self.site, "keys": [e.__dict__ for e in entries]}
        temporary = self._ring_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        temporary.chmod(0o600)
        temporary.replace(self._ring_path)

    def private_key(self, kid: str) -> ec.EllipticCurvePrivateKey:
        """The private key ``kid``.

        Raises:
            ConfigurationError: ``site_keys_invalid`` (missing, unreadable, or not the key its name says) or
                ``site_key_exposed`` (the file may be read by others than its owner).
        """
        path = self.folder / f"{kid}.pem"
        try:
            if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise ConfigurationError(f"{path} may be read by others; chmod 600 it", code="site_key_exposed")
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigurationError(f"signing key {kid} cannot be read ({type(exc).__name__})",
                                     code="site_keys_invalid") from None  # fmt: skip
        if not isinstance(key, ec.EllipticCurvePrivateKey) or thumbprint(key.public_key()) != kid:
            raise ConfigurationError(f"{path.name} is not the P-256 key {kid}", code="site_keys_invalid")
        return key

    def active(self) -> tuple[str, ec.EllipticCurvePrivateKey]:
        """The active key's ``kid`` and private key.

        Raises:
            ConfigurationError: ``site_keys_missing`` when the ring has no active key (``cds consortium keys
                rotate`` makes one).
        """
        active = [e for e in self.entries() if e.state == "active"]
        if not active:
            raise ConfigurationError(f"no active signing key in {self.folder}; make one with "
                                     "`cds consortium keys rotate`", code="site_keys_missing")  # fmt: skip
        return active[-1].kid, self.private_key(active[-1].kid)

    def rotate(self, *, now: dt.datetime | None = None) -> RingEntry:
        """Make a new active key; the active one before it is retired (it still verifies what it signed)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o700)
        entries = self.entries()
        key = ec.generate_private_key(ec.SECP256R1())
        kid = thumbprint(key.public_key())
        path = self.folder / f"{kid}.pem"
        path.touch(mode=0o600)
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
        created = (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")
        entry = RingEntry(kid=kid, created=created, state="active")
        retired = [RingEntry(e.kid, e.created, "retired") if e.state == "active" else e for e in entries]
        self._write([*retired, entry])
        return entry

    def revoke(self, kid: str) -> None:
        """Mark ``kid`` revoked: it leaves the published key set (and stops signing, if it was active).

        Raises:
            InvalidInputError: ``unknown_key``.
        """
        entries = self.entries()
        if kid not in {e.kid for e in entries}:
            raise InvalidInputError(f"no key {kid} in {self.folder}", code="unknown_key")
        self._write([RingEntry(e.kid, e.created, "revoked") if e.kid == kid else e for e in entries])


def public_key_set(ring: SiteKeyRing) -> dict[str, Any]:
    """The key set the site publishes: its active and retired public keys, never a private one or a revoked key."""
    keys = []
    for entry in ring.entries():
        if entry.state == "revoked":
            continue
        jwk = public_jwk(ring.private_key(entry.kid).public_key())
        keys.append({**jwk, "kid": entry.kid, "use": "sig", "alg": ALGORITHM})
    return {"site": ring.site, "keys": keys}


@dataclass(frozen=True)
class TrustedKey:
    """A member's public key: the site it belongs to and the key."""

    site: str
    kid: str
    key: ec.EllipticCurvePublicKey


class TrustStore:
    """The members' key sets this site accepts signatures from (see the module docstring)."""

    def __init__(self, keys: dict[str, TrustedKey]) -> None:
        self._keys = keys

    @classmethod
    def load(cls, folder: Path | None, *, own: dict[str, Any] | None = None) -> TrustStore:
        """The key sets in ``folder`` (``*.jwks.json``) and this site's own published set.

        Raises:
            ConfigurationError: ``key_set_invalid``: a file that is not a key set of P-256 keys with a site code,
                a ``kid`` that is not its key's thumbprint, or one ``kid`` claimed by two sites.
        """
        files = sorted(folder.glob("*.jwks.json")) if folder is not None and folder.is_dir() else []
        sets: list[tuple[str, Any]] = []
        for path in files:
            try:
                sets.append((path.name, json.loads(path.read_text(encoding="utf-8"))))
            except (OSError, ValueError) as exc:
                raise ConfigurationError(f"{path.name}: not a JSON key set ({type(exc).__name__})",
                                         code="key_set_invalid") from None  # fmt: skip
        if own is not None:
            sets.append(("this site's key ring", own))
        keys: dict[str, TrustedKey] = {}
        for name, document in sets:
            for trusted in _read_key_set(name, document):
                known = keys.get(trusted.kid)
                if known is not None and known.site != trusted.site:
                    raise ConfigurationError(f"key {trusted.kid} is claimed by sites {known.site!r} and "
                                             f"{trusted.site!r}", code="key_set_invalid")  # fmt: skip
                keys[trusted.kid] = trusted
        return cls(keys)

    def get(self, kid: str) -> TrustedKey | None:
        """The trusted key ``kid``, or ``None``."""
        return self._keys.get(kid)

    def sites(self) -> list[str]:
        """The sites with at least one trusted key."""
        return sorted({k.site for k in self._keys.values()})


def _read_key_set(name: str, document: Any) -> list[TrustedKey]:
    """The keys of one member's key set.

    Raises:
        ConfigurationError: ``key_set_invalid``.
    """
    try:
        site = str(document["site"])
        found = []
        for jwk in document["keys"]:
            key = ECAlgorithm.from_jwk(json.dumps(jwk))
            if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
                raise ValueError("not a P-256 public key")
            if jwk.get("kid") != thumbprint(key):
                raise ValueError(f"kid {jwk.get('kid')!r} is not the key's thumbprint")
            found.append(TrustedKey(site=site, kid=str(jwk["kid"]), key=key))
    except (KeyError, TypeError, ValueError, InvalidKeyError) as exc:
        raise ConfigurationError(f"{name}: not a key set of P-256 public keys with a site ({exc})",
                                 code="key_set_invalid") from None  # fmt: skip
    return found
