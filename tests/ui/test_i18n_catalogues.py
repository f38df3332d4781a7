"""The workspace's message catalogues (``modules/messages/en.js`` and ``zh-CN.js``) and the views that use them.

Both catalogues hold the same keys with the same ``{placeholders}`` (read by Node, as the browser reads them), and a
translated view holds no user-facing English of its own: every sentence it shows comes from the catalogues.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

STATIC = Path(__file__).parents[2] / "cds" / "serving" / "ui" / "static"
# Every module of the workspace speaks only through the catalogues (i18n.js is the one that reads them), a new
# module included.
TRANSLATED = ["app.js", *sorted(f"modules/{path.name}" for path in (STATIC / "modules").glob("*.js")
                                if path.name != "i18n.js")]  # fmt: skip
READ_CATALOGUES = """
const [en, zh] = await Promise.all(["en", "zh-CN"].map((n) => import(`${process.argv[1]}/${n}.js`)));
console.log(JSON.stringify({ en: en.default, "zh-CN": zh.default }));
"""
# A string or template literal that reads as English words: a capitalised word then another word.
ENGLISH = re.compile(r"""(?<![\w.])(["`])([A-Z][a-z]+[ ,:;'][^"`]*?)\1""")
# One capitalised word as an element's text: h("button", {...}, "Accept").
ELEMENT_WORD = re.compile(r"""\},\s*(["`])([A-Z][a-z]+)\1\s*[,)]""")


@pytest.fixture(scope="module")
def catalogues() -> dict[str, dict[str, object]]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("the catalogue check needs Node.js 20+ (apt-get install -y nodejs)")
    folder = STATIC / "modules" / "messages"
    out = subprocess.run([node, "--input-type=module", "-e", READ_CATALOGUES, folder.as_posix()],
                         capture_output=True, text=True, check=True, timeout=60)  # fmt: skip
    result: dict[str, dict[str, object]] = json.loads(out.stdout)
    return result


def _placeholders(message: object) -> set[str]:
    forms = message.values() if isinstance(message, dict) else [message]
    return {name for form in forms for name in re.findall(r"\{(\w+)\}", str(form))}


def test_both_catalogues_have_the_same_keys(catalogues: dict[str, dict[str, object]]) -> None:
    en, zh = catalogues["en"], catalogues["zh-CN"]
    assert sorted(set(en) - set(zh)) == [], "missing in zh-CN.js"
    assert sorted(set(zh) - set(en)) == [], "missing in en.js"


def test_messages_have_the_same_placeholders(catalogues: dict[str, dict[str, object]]) -> None:
    en, zh = catalogues["en"], catalogues["zh-CN"]
    differ = {key: (sorted(_placeholders(en[key])), sorted(_placeholders(zh[key]))) for key in en
              if key in zh and _placeholders(en[key]) != _placeholders(zh[key])}  # fmt: skip
    assert differ == {}


def test_plurals_have_the_forms_of_their_language(catalogues: dict[str, dict[str, object]]) -> None:
    for language, needed in (("en", {"one", "other"}), ("zh-CN", {"other"})):
        for key, message in catalogues[language].items():
            if isinstance(message, dict):
                assert set(message) == needed, f"{language} {key}: {sorted(message)}"
            else:
                assert isinstance(message, str) and message.strip(), f"{language} {key}"


def test_chinese_messages_are_written_in_chinese(catalogues: dict[str, dict[str, object]]) -> None:
    en, zh = catalogues["en"], catalogues["zh-CN"]
    # Names that stay as they are (units, acronyms) may equal the English; a sentence may not.
    same = [key for key, message in zh.items() if message == en[key] and len(str(message).split()) > 2]
    assert same == []


@pytest.mark.parametrize("name", TRANSLATED)
def test_a_translated_view_has_no_english_of_its_own(name: str) -> None:
    found = []
    for number, line in enumerate((STATIC / name).read_text(encoding="utf-8").splitlines(), start=1):
        code = line.split("//", 1)[0] if not line.lstrip().startswith(("//", "*", "/*")) else ""
        matches = [*ENGLISH.finditer(code), *ELEMENT_WORD.finditer(code)]
        found += [f"{name}:{number}: {match.group(2)}" for match in matches]
    assert found == []


def test_the_language_is_the_users_else_the_browsers_else_the_deployments() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("needs Node.js 20+")
    script = """
const { chooseLanguage } = await import(`${process.argv[1]}/i18n.js`);
console.log(JSON.stringify([
  chooseLanguage("zh-CN", ["en-US"], "en"), chooseLanguage(null, ["en-US", "zh-CN"], "zh-CN"),
  chooseLanguage(null, ["zh-TW"], "en"), chooseLanguage(null, ["fr-FR", "de"], "zh-CN"),
  chooseLanguage(null, ["fr-FR"], null), chooseLanguage("xx", [], undefined)]));
"""
    out = subprocess.run([node, "--input-type=module", "-e", script, (STATIC / "modules").as_posix()],
                         capture_output=True, text=True, check=True, timeout=60)  # fmt: skip
    assert json.loads(out.stdout) == ["zh-CN", "en", "zh-CN", "zh-CN", "en", "en"]
