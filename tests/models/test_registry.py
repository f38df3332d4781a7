from pathlib import Path

import pytest
import yaml

from cds.errors import ArtifactIntegrityError, InvalidSpecError, ModelNotFoundError
from cds.models.card import urgency_section
from cds.models.registry import ModelRegistry, sha256_file
from cds.models.spec import BackendKind, Urgency, coerce_enum

REPO = Path(__file__).resolve().parents[2]

SPEC = Path("lesion-demo/1.1.0/spec.yaml")


def test_real_registry_lists_demo_model_and_verifies_every_artifact(registry: ModelRegistry) -> None:
    assert "lesion-demo" in registry.names()
    spec = registry.get("lesion-demo")
    verified = registry.verify(spec)
    assert set(verified) == {"onnx", "onnx_fp16", "torch"}
    for kind, path in verified.items():
        assert sha256_file(path) == spec.artifact(kind).sha256  # type: ignore[union-attr]
    assert spec.model_card.is_file()


def test_unknown_model_error_lists_known_models(registry: ModelRegistry) -> None:
    with pytest.raises(ModelNotFoundError) as err:
        registry.get("chest-xray")
    assert "lesion-demo" in err.value.message
    assert isinstance(err.value, LookupError)


def test_unknown_version_error_lists_versions(registry: ModelRegistry) -> None:
    with pytest.raises(ModelNotFoundError, match="registered versions: 1.1.0") as err:
        registry.get("lesion-demo", "9.9.9")
    assert err.value.code == "model_version_not_found"


def test_tampered_artifact_is_refused_naming_both_hashes(registry_copy: Path) -> None:
    registry = ModelRegistry.from_directory(registry_copy)
    spec = registry.get("lesion-demo")
    with spec.artifacts.onnx.path.open("ab") as handle:
        handle.write(b"\0")
    actual = sha256_file(spec.artifacts.onnx.path)
    with pytest.raises(ArtifactIntegrityError) as err:
        registry.verify(spec)
    assert err.value.code == "artifact_hash_mismatch"
    assert actual in err.value.message and spec.artifacts.onnx.sha256 in err.value.message


def test_missing_artifact_is_refused(registry_copy: Path) -> None:
    registry = ModelRegistry.from_directory(registry_copy)
    spec = registry.get("lesion-demo")
    spec.artifacts.torch.path.unlink()  # type: ignore[union-attr]
    with pytest.raises(ArtifactIntegrityError) as err:
        registry.verify(spec)
    assert err.value.code == "artifact_missing"


def _edit_spec(root: Path, **changes: object) -> None:
    path = root / SPEC
    data = yaml.safe_load(path.read_text())
    data.update(changes)
    path.write_text(yaml.safe_dump(data))


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"thresholds": {"nodule": 0.5}}, "unknown labels ['nodule']"),
        ({"thresholds": {"lesion": 1.5}}, "thresholds must lie in [0, 1]"),
        ({"task": "detection"}, "task"),
        ({"labels": ["lesion", "mass"]}, "one column per label"),
        ({"name": "Bad Name"}, "name"),
        ({"urgency": {"nodule": "critical"}}, "urgency for unknown labels ['nodule']"),
        ({"urgency": {"lesion": "stat"}}, "urgency.lesion"),
        ({"critical_thresholds": {"lesion": 0.9}}, "whose urgency is routine, not critical"),
        ({"urgency": {"lesion": "critical"}, "critical_thresholds": {"lesion": 0.01}}, "at least its operating"),
    ],
)
def test_invalid_spec_is_refused_with_the_field_named(registry_copy: Path, changes: dict, fragment: str) -> None:
    _edit_spec(registry_copy, **changes)
    with pytest.raises(InvalidSpecError) as err:
        ModelRegistry.from_directory(registry_copy)
    assert fragment in err.value.message


def test_spec_in_wrong_folder_is_refused(registry_copy: Path) -> None:
    _edit_spec(registry_copy, version="2.0.0")
    with pytest.raises(InvalidSpecError, match="folder must be name/version"):
        ModelRegistry.from_directory(registry_copy)


def test_unparsable_yaml_is_refused(registry_copy: Path) -> None:
    (registry_copy / SPEC).write_text("name: [unclosed")
    with pytest.raises(InvalidSpecError, match="cannot read model spec"):
        ModelRegistry.from_directory(registry_copy)


def test_missing_registry_folder(tmp_path: Path) -> None:
    with pytest.raises(InvalidSpecError, match="does not exist"):
        ModelRegistry.from_directory(tmp_path / "nope")


def test_newest_version_is_default(registry_copy: Path) -> None:
    source = registry_copy / "lesion-demo" / "1.1.0"
    for version in ("1.10.0", "1.9.0"):
        target = registry_copy / "lesion-demo" / version
        target.mkdir()
        for file in source.iterdir():
            (target / file.name).write_bytes(file.read_bytes())
        data = yaml.safe_load((target / "spec.yaml").read_text())
        data["version"] = version
        data["model_card"] = str(source.resolve() / data["model_card"])
        (target / "spec.yaml").write_text(yaml.safe_dump(data))
    registry = ModelRegistry.from_directory(registry_copy)
    assert registry.versions("lesion-demo") == ["1.1.0", "1.9.0", "1.10.0"]
    assert registry.get("lesion-demo").version == "1.10.0"


def test_enum_coercion_lists_allowed_values() -> None:
    assert coerce_enum(BackendKind, "torch") is BackendKind.TORCH
    with pytest.raises(ValueError, match="allowed: onnxruntime, torch, triton"):
        coerce_enum(BackendKind, "tensorflow")


def test_every_shipped_model_has_a_card_that_matches_the_registry(registry: ModelRegistry) -> None:
    assert len(registry) >= 2
    for spec in registry:
        card = spec.model_card.read_text()
        assert f"# Model card: {spec.name} {spec.version}" in card
        for kind in ("onnx", "onnx_fp16", "torch"):
            artifact = spec.artifact(kind)
            if artifact is not None:
                assert artifact.sha256 in card, f"{spec.key} card lacks the {kind} sha256"
        for label, threshold in spec.thresholds.items():  # the card's operating points are the registry's
            shown = [float(row.split("|")[4]) for row in card.splitlines() if row.startswith(f"| {label} | ")
                     and len(row.split("|")) == 8]  # performance rows: label, prevalence, AUC, threshold, ...
            assert shown, f"{spec.key} card has no row for {label}"
            # the card shows 4 decimals of the threshold the spec keeps to 6
            assert all(abs(value - threshold) <= 5e-5 + 1e-9 for value in shown), (spec.key, label, shown, threshold)


def test_urgency_defaults_to_routine_and_a_critical_call_needs_its_own_threshold(registry_copy: Path) -> None:
    plain = ModelRegistry.from_directory(registry_copy).get("lesion-demo")  # a spec that names no urgency
    threshold = plain.thresholds["lesion"]
    assert plain.finding_urgency("lesion", 0.99, True) is Urgency.ROUTINE
    assert plain.finding_urgency("lesion", 0.99, False) is None and urgency_section(plain) == []
    _edit_spec(registry_copy, urgency={"lesion": "critical"})  # no critical threshold: the operating one
    fallback = ModelRegistry.from_directory(registry_copy).get("lesion-demo")
    assert fallback.finding_urgency("lesion", threshold, True) is Urgency.CRITICAL
    _edit_spec(registry_copy, critical_thresholds={"lesion": 0.9})
    strict = ModelRegistry.from_directory(registry_copy).get("lesion-demo")
    assert strict.finding_urgency("lesion", 0.95, True) is Urgency.CRITICAL
    assert strict.finding_urgency("lesion", 0.89, True) is Urgency.URGENT  # positive, but not the confident call


def test_shipped_urgencies_and_their_card(registry: ModelRegistry) -> None:
    spec = registry.get("chest-xray-demo")
    assert spec.urgency["Pneumothorax"] is Urgency.CRITICAL and spec.urgency["Emphysema"] is Urgency.ROUTINE
    assert {spec.urgency[label] for label in ("Effusion", "Pneumonia", "Mass", "Fracture")} == {Urgency.URGENT}
    assert spec.thresholds["Pneumothorax"] < spec.critical_thresholds["Pneumothorax"] <= 1
    for shipped in registry:  # the card's urgency table is the registry's
        card = shipped.model_card.read_text()
        assert all(line in card.splitlines() for line in urgency_section(shipped)), shipped.key


def test_every_card_belongs_to_a_shipped_model(registry: ModelRegistry) -> None:
    cards = {spec.model_card.resolve() for spec in registry}
    shipped = set((REPO / "model_cards").glob("*.md"))
    assert shipped and {p.resolve() for p in shipped} <= cards, sorted(p.name for p in shipped if p.resolve() not in cards)


def test_committed_model_artifacts_stay_under_40_mib(registry: ModelRegistry) -> None:
    total = sum(a.path.stat().st_size for spec in registry for k in ("onnx", "onnx_fp16", "torch")
                if (a := spec.artifact(k)) is not None)
    assert total < 40 * 2**20, f"{total / 2**20:.1f} MiB of model artifacts"
