"""A model's intended use in Chinese: optional in a spec (``intended_use_zh``), given by every shipped model, chosen
by :meth:`ModelSpec.intended_use_in` for any ``zh`` tag and otherwise English; the viewer's model facts follow it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from cds import REPO_ROOT
from cds.models.registry import ModelRegistry
from cds.models.spec import ModelSpec
from cds.serving.ui.viewer import model_info

HAN = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def registry() -> ModelRegistry:
    return ModelRegistry.from_directory(REPO_ROOT / "registry")


def test_every_shipped_model_states_its_intended_use_in_chinese(registry: ModelRegistry) -> None:
    for name in registry.names():
        spec = registry.get(name)
        assert spec.intended_use_zh is not None and HAN.search(spec.intended_use_zh), name
        assert not HAN.search(spec.intended_use), name
        for tag in ("zh-CN", "zh", "ZH-Hans"):
            assert spec.intended_use_in(tag) == spec.intended_use_zh
        for tag in ("en", "en-GB", "fr", ""):
            assert spec.intended_use_in(tag) == spec.intended_use


def test_a_spec_without_chinese_answers_in_english_and_an_empty_one_is_refused(registry: ModelRegistry) -> None:
    spec = registry.get("lesion-demo")
    english_only = spec.model_copy(update={"intended_use_zh": None})
    assert english_only.intended_use_in("zh-CN") == spec.intended_use
    data = spec.model_dump() | {"intended_use_zh": ""}
    with pytest.raises(ValidationError, match="intended_use_zh"):
        ModelSpec.model_validate(data, context={"base": Path(spec.artifacts.onnx.path).parent})


def test_the_viewers_model_facts_are_in_the_requested_language(registry: ModelRegistry) -> None:
    key = registry.get("chest-xray-demo").key
    assert "不是医疗器械" in model_info(registry, key, "zh-CN").intended_use
    assert "Not a medical device" in model_info(registry, key, "en").intended_use
    assert "Not a medical device" in model_info(registry, key).intended_use  # English unless asked
    gone = model_info(registry, "retired-model:0.1", "zh-CN")
    assert gone.not_for_diagnostic_use is True  # a model no longer registered keeps the caveat
