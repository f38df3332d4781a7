"""A shared Bundle verifies at another member holding the signer's key set, and any change to its content, to its
signature, or a key the member does not trust for that site fails with the reason."""

from __future__ import annotations

import base64
import copy
import json
import random
from collections.abc import Iterator
from typing import Any

import pytest

from cds.consortium.bundle_signature import sign_bundle, signing_kid, verify_bundle
from cds.consortium.shared_result import shareable_bundle
from cds.errors import InvalidInputError
from tests.consortium.conftest import signed_report

FAILURES = {"signature_invalid", "signer_mismatch", "signature_malformed", "unknown_signer", "unsigned"}


def _shared(member: Any) -> dict[str, Any]:
    return sign_bundle(shareable_bundle(signed_report(), site=member.site), member.ring)


def _refusal(bundle: dict[str, Any], store: Any) -> str | None:
    try:
        verify_bundle(bundle, store)
    except InvalidInputError as refused:
        return refused.code
    return None


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    else:
        yield path, value


def _set(document: Any, path: tuple[Any, ...], value: Any) -> None:
    for step in path[:-1]:
        document = document[step]
    document[path[-1]] = value


def test_a_member_holding_the_hubs_key_set_verifies_what_the_hub_signed(member: Any) -> None:
    hub, clinic = member("hub"), member("clinic-a")
    clinic.trust(hub)
    bundle = _shared(hub)
    verified = verify_bundle(json.loads(json.dumps(bundle, indent=3)), clinic.trust_store())  # reformatted: same
    assert (verified.site, verified.kid) == ("hub", hub.ring.active()[0]) == ("hub", signing_kid(bundle))
    assert verified.signed_at == bundle["signature"]["when"]
    assert _refusal(bundle, member("clinic-b").trust_store()) == "unknown_signer"  # does not hold the hub's keys


def test_every_changed_value_fails_verification(member: Any) -> None:
    hub, clinic = member("hub"), member("clinic-a")
    clinic.trust(hub)
    bundle, store = _shared(hub), clinic.trust_store()
    changed = 0
    for path, value in _leaves(bundle):
        tampered = copy.deepcopy(bundle)
        if isinstance(value, bool):
            new: Any = not value
        elif isinstance(value, int | float):
            new = value + 1
        else:
            new = str(value)[:-1] + ("x" if not str(value).endswith("x") else "y")
        _set(tampered, path, new)
        assert _refusal(tampered, store) in FAILURES, path
        changed += 1
    assert changed > 60  # every element of the report, observations, provenance and the signature itself
    reordered = copy.deepcopy(bundle)
    reordered["entry"].reverse()
    assert _refusal(reordered, store) == "signature_invalid"
    added = copy.deepcopy(bundle)
    added["entry"].append({"fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000000",
                           "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}})
    assert _refusal(added, store) == "signature_invalid"


def test_any_byte_changed_in_the_file_fails_unless_the_json_means_the_same(member: Any) -> None:
    hub, clinic = member("hub"), member("clinic-a")
    clinic.trust(hub)
    bundle, store = _shared(hub), clinic.trust_store()
    data = json.dumps(bundle, ensure_ascii=False, indent=1).encode()
    rng = random.Random(7)
    verified_after_change = 0
    for position in rng.sample(range(len(data)), 400):
        for flip in (0x01, 0x20):
            tampered = bytearray(data)
            tampered[position] ^= flip
            try:
                document = json.loads(bytes(tampered))
            except ValueError:
                continue  # not JSON any more: refused before any signature is looked at
            code = _refusal(document, store)
            if document == bundle:
                assert code is None  # only whitespace between tokens changed
                verified_after_change += 1
            else:
                assert code in FAILURES, (position, flip)
    assert verified_after_change < 400


def test_a_key_of_one_site_cannot_sign_for_another(member: Any) -> None:
    hub, rogue, clinic = member("hub"), member("clinic-b"), member("clinic-a")
    clinic.trust(hub)
    clinic.trust(rogue)
    forged = _shared(rogue)
    forged["signature"]["who"] = {"identifier": {"system": "urn:cds:site", "value": "hub"}, "display": "hub"}
    assert _refusal(forged, clinic.trust_store()) == "signer_mismatch"


def test_signatures_survive_rotation_until_their_key_is_revoked(member: Any) -> None:
    hub, clinic = member("hub"), member("clinic-a")
    before = _shared(hub)
    old_kid = hub.ring.active()[0]
    hub.ring.rotate()
    after = _shared(hub)
    assert signing_kid(after) != old_kid == signing_kid(before)
    assert [e.state for e in hub.ring.entries()] == ["retired", "active"]
    clinic.trust(hub)  # the set published after the rotation
    assert _refusal(before, clinic.trust_store()) is None and _refusal(after, clinic.trust_store()) is None
    hub.ring.revoke(old_kid)
    clinic.trust(hub)  # republished without the revoked key
    assert _refusal(before, clinic.trust_store()) == "unknown_signer"
    assert _refusal(after, clinic.trust_store()) is None


def test_malformed_and_downgraded_signatures_are_refused(member: Any) -> None:
    hub = member("hub")
    store, bundle = hub.trust_store(), _shared(hub)
    unsigned = copy.deepcopy(bundle)
    del unsigned["signature"]
    assert _refusal(unsigned, store) == "unsigned"
    garbage = copy.deepcopy(bundle)
    garbage["signature"]["data"] = "not base64!"
    assert _refusal(garbage, store) == "signature_malformed"
    token = base64.b64decode(bundle["signature"]["data"]).decode()
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    for alg in ("none", "HS256"):
        swapped = base64.urlsafe_b64encode(json.dumps({**header, "alg": alg}).encode()).rstrip(b"=").decode()
        downgraded = copy.deepcopy(bundle)
        downgraded["signature"]["data"] = base64.b64encode(f"{swapped}..{token.split('.')[2]}".encode()).decode()
        assert _refusal(downgraded, store) == "signature_malformed", alg
    attached = copy.deepcopy(bundle)
    attached["signature"]["data"] = base64.b64encode(token.replace("..", ".e30.").encode()).decode()
    assert _refusal(attached, store) == "signature_malformed"


def test_numbers_json_cannot_carry_exactly_are_refused_before_signing(member: Any) -> None:
    hub = member("hub")
    bundle = shareable_bundle(signed_report(), site="hub")
    bundle["entry"][0]["resource"]["extension"] = [{"url": "urn:x", "valueInteger": 2**60}]
    with pytest.raises(InvalidInputError) as refused:
        sign_bundle(bundle, hub.ring)
    assert refused.value.code == "not_canonicalisable"
