"""Site key rings keep private keys private and named by thumbprint; trust stores refuse key sets that lie."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from pathlib import Path
from typing import Any

import pytest

from cds.consortium.site_keys import SiteKeyRing, TrustStore, public_key_set, thumbprint
from cds.errors import ConfigurationError, InvalidInputError


def test_a_new_key_is_private_named_by_its_rfc7638_thumbprint_and_published_without_its_secret(
        tmp_path: Path) -> None:  # fmt: skip
    ring = SiteKeyRing(tmp_path / "keys", "hub")
    with pytest.raises(ConfigurationError) as missing:
        ring.active()
    assert missing.value.code == "site_keys_missing"
    entry = ring.rotate()
    kid, key = ring.active()
    assert kid == entry.kid == thumbprint(key.public_key()) and len(kid) == 43  # base64url of SHA-256
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "keys" / f"{kid}.pem").stat().st_mode) == 0o600
    published = public_key_set(ring)
    assert published["site"] == "hub" and [k["kid"] for k in published["keys"]] == [kid]
    assert set(published["keys"][0]) == {"kty", "crv", "x", "y", "kid", "use", "alg"}  # no "d"
    assert "PRIVATE" not in json.dumps(published)


def test_the_kid_is_the_rfc7638_thumbprint_whatever_the_member_order(tmp_path: Path) -> None:
    # RFC 7638 section 3: SHA-256 over the required members of an EC key, in lexicographic order, no whitespace
    ring = SiteKeyRing(tmp_path, "hub")
    ring.rotate()
    kid, _ = ring.active()
    members = public_key_set(ring)["keys"][0]
    spelled = f'{{"crv":"P-256","kty":"EC","x":"{members["x"]}","y":"{members["y"]}"}}'.encode()
    assert kid == base64.urlsafe_b64encode(hashlib.sha256(spelled).digest()).rstrip(b"=").decode()
    reordered = {name: members[name] for name in ("y", "x", "kty", "crv", "alg", "use", "kid")}
    trusted = TrustStore.load(None, own={"site": "hub", "keys": [reordered]}).get(kid)
    assert trusted is not None and thumbprint(trusted.key) == kid


def test_a_readable_key_file_or_another_sites_ring_is_refused(tmp_path: Path) -> None:
    ring = SiteKeyRing(tmp_path / "keys", "hub")
    kid = ring.rotate().kid
    (tmp_path / "keys" / f"{kid}.pem").chmod(0o644)
    with pytest.raises(ConfigurationError) as exposed:
        ring.active()
    assert exposed.value.code == "site_key_exposed"
    (tmp_path / "keys" / f"{kid}.pem").chmod(0o600)
    with pytest.raises(ConfigurationError) as other:
        SiteKeyRing(tmp_path / "keys", "clinic-a").active()
    assert other.value.code == "site_keys_invalid"
    with pytest.raises(InvalidInputError) as unknown:
        ring.revoke("no-such-key")
    assert unknown.value.code == "unknown_key"


def _published(tmp_path: Path, site: str) -> dict[str, Any]:
    ring = SiteKeyRing(tmp_path / site, site)
    ring.rotate()
    return public_key_set(ring)


@pytest.mark.parametrize("lie", ["kid is not the thumbprint", "one key claimed by two sites", "not JSON",
                                 "an RSA-less empty key", "no site"])  # fmt: skip
def test_key_sets_that_lie_are_refused(tmp_path: Path, lie: str) -> None:
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    hub = _published(tmp_path, "hub")
    if lie == "kid is not the thumbprint":
        hub["keys"][0]["kid"] = "chosen-by-the-sender"
        (trusted / "hub.jwks.json").write_text(json.dumps(hub))
    elif lie == "one key claimed by two sites":
        (trusted / "hub.jwks.json").write_text(json.dumps(hub))
        (trusted / "clinic.jwks.json").write_text(json.dumps({**hub, "site": "clinic-a"}))
    elif lie == "not JSON":
        (trusted / "hub.jwks.json").write_text("{")
    elif lie == "an RSA-less empty key":
        (trusted / "hub.jwks.json").write_text(json.dumps({"site": "hub", "keys": [{"kty": "EC"}]}))
    else:
        (trusted / "hub.jwks.json").write_text(json.dumps({"keys": hub["keys"]}))
    with pytest.raises(ConfigurationError) as refused:
        TrustStore.load(trusted)
    assert refused.value.code == "key_set_invalid"
