"""Text the server writes, in the workspace's languages: every phrase the ECG and pathology pipelines emit
(``phrase("<code>", name=...)``) has ``phrase.<code>`` in both catalogues with exactly those placeholders, and every
such catalogue entry is emitted; the refusal codes a user meets when an upload is refused (DICOM reader, ECG readers,
slide readers, uploads) have ``error.<code>``. Then, in Node, the renderers (phrases.js, api.js's errorParts,
stow.js) in Chinese: a known phrase or code in Chinese with the server's detail kept, an unknown one in English."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.ui import test_i18n_catalogues as shared

STATIC, catalogues = shared.STATIC, shared.catalogues  # the catalogues as Node reads them (a fixture)
_placeholders = shared._placeholders

ROOT = Path(__file__).parents[2]
PHRASE_SOURCES = [*sorted((ROOT / "cds" / "pipelines" / "ecg").glob("*.py")),
                  *sorted((ROOT / "cds" / "pipelines" / "pathology").glob("*.py"))]  # fmt: skip
# Where upload refusals come from, and how their codes are written there.
REFUSAL_SOURCES = {
    "cds/pipelines/imaging/dicom_reader.py": r'_refuse\([\w.]+, "([a-z_]+)"',
    "cds/pipelines/pathology/dicom_slide.py": r'refuse\([\w.]+, "([a-z_]+)"',
    "cds/pipelines/pathology/image_tile.py": r'refuse\([\w.]+, "([a-z_]+)"',
    "cds/pipelines/pathology/openslide_slide.py": r'refuse\([\w.]+, "([a-z_]+)"',
    "cds/pipelines/pathology/slide.py": r'refuse\([\w.]+, "([a-z_]+)"',
    "cds/pipelines/ecg/readers.py": r'code="([a-z_]+)"',
    "cds/pipelines/ecg/quality.py": r'code="([a-z_]+)"',
    "cds/serving/api/uploads.py": r'code="([a-z_]+)"',
}


def _literals(expression: ast.expr) -> list[str]:
    """The strings an expression can be: a literal, or either branch of a conditional."""
    if isinstance(expression, ast.Constant) and isinstance(expression.value, str):
        return [expression.value]
    if isinstance(expression, ast.IfExp):
        return _literals(expression.body) + _literals(expression.orelse)
    return []


def emitted_phrases() -> dict[str, set[str]]:
    """Each phrase code the pipelines write, with the value names it is given (every call site)."""
    found: dict[str, set[str]] = {}
    for path in PHRASE_SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "phrase"):
                continue
            names = {keyword.arg for keyword in node.keywords}
            assert None not in names, f"{path.name}:{node.lineno}: name each value (no **)"
            codes = _literals(node.args[0])
            assert codes, f"{path.name}:{node.lineno}: a phrase's code is a literal"
            for code in codes:
                assert found.setdefault(code, names) == names, f"{code}: values differ between call sites"
    return found  # type: ignore[return-value]


def test_every_phrase_the_server_writes_is_in_both_catalogues(catalogues: dict[str, dict[str, object]]) -> None:
    emitted = emitted_phrases()
    assert {"ecg.st_elevation", "ecg.qtc_limit_sex_unknown", "ecg.rhythm_irregular", "slide.no_tissue_glass"} <= set(
        emitted)
    for language, catalogue in catalogues.items():
        wrong = {code: (sorted(names), sorted(_placeholders(catalogue.get(f"phrase.{code}", ""))))
                 for code, names in emitted.items()
                 if f"phrase.{code}" not in catalogue or _placeholders(catalogue[f"phrase.{code}"]) != names}
        assert wrong == {}, language
    unused = {key for key in catalogues["en"] if key.startswith("phrase.") and key.count(".") > 1
              and key.removeprefix("phrase.") not in emitted}  # fmt: skip
    assert unused == set()


def test_every_upload_refusal_has_a_message(catalogues: dict[str, dict[str, object]]) -> None:
    codes = {code for path, pattern in REFUSAL_SOURCES.items()
             for code in re.findall(pattern, (ROOT / path).read_text(encoding="utf-8"))}  # fmt: skip
    assert {"not_dicom", "truncated_file", "not_ecg", "unreadable_ecg", "not_a_slide", "empty_input"} <= codes
    for language, catalogue in catalogues.items():
        assert sorted(code for code in codes if f"error.{code}" not in catalogue) == [], language


RENDER = """
globalThis.document = { documentElement: {} };
const base = process.argv[1];
const { setLanguage } = await import(`${base}/i18n.js`);
const { phraseText, phrasesText, phrasedList } = await import(`${base}/phrases.js`);
const { ApiError, errorParts } = await import(`${base}/api.js`);
const { stowSummary } = await import(`${base}/stow.js`);
const out = {};
for (const tag of ["zh-CN", "en"]) {
  setLanguage(tag);
  const st = [{ code: "ecg.st_elevation", values: { levels: ["II +3.0 mm", "III +2.9 mm"] } },
    { code: "ecg.st_not_new", values: {} }];
  out[tag] = {
    flag: phrasesText(st, "English flag"),
    unknownFlag: phrasesText([...st, { code: "ecg.not_yet_known", values: {} }], "English flag"),
    evidence: phraseText({ code: "ecg.rhythm_too_few_beats", values: { count: 1, needed: 4 } }, "English"),
    problems: phraseText({ code: "ecg.lead_not_measured", values: { lead: "V1", problems: ["flat", "noisy"] } }, "x",
      { problems: (p) => p.toUpperCase() }),
    warnings: phrasedList(["a", "b"], [{ code: "slide.not_for_diagnostic_use", values: {} },
      { code: "slide.not_yet_known", values: {} }]),
    unpaired: phrasedList(["a", "b"], [{ code: "slide.not_for_diagnostic_use", values: {} }]),
    refused: errorParts(new ApiError(422, "not_dicom", "part 1: not a DICOM Part 10 file", {})),
    unknown: errorParts(new ApiError(422, "brand_new_code", "what the server said", {})),
    message: new ApiError(422, "not_ecg", "scan.pdf: no ECG found", {}).message,
    job: errorParts("unreadable_ecg: ecg.csv: too few usable leads to read (V1: flat)"),
    bareCode: errorParts("truncated"),
    stow: stowSummary({ "00081198": { Value: [{ "00000902": { Value: ["truncated_file"] } },
      { "00000902": { Value: ["some_new_reason"] } }] } }).reasons,
  };
}
console.log(JSON.stringify(out));
"""


def test_the_workspace_says_server_text_in_chinese_and_keeps_the_english_detail() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("needs Node.js 20+")
    run = subprocess.run([node, "--input-type=module", "-e", RENDER, (STATIC / "modules").as_posix()],
                         capture_output=True, text=True, check=True, timeout=60)  # fmt: skip
    zh, en = (json.loads(run.stdout)[tag] for tag in ("zh-CN", "en"))
    assert zh["flag"] == "J 点处 ST 段抬高：II +3.0 mm、III +2.9 mm（按第四版心肌梗死全球统一定义的界值）。仅凭一份心电图无法判断是否为新发。"
    assert en["flag"] == ("ST elevation at the J point in II +3.0 mm, III +2.9 mm (4th UDMI cut-points). Whether it "
                          "is new cannot be known from one ECG.")
    assert zh["unknownFlag"] == en["unknownFlag"] == "English flag"  # one sentence unknown: the server's English
    assert zh["evidence"] == "仅检出 1 个心搏；至少需要 4 个。" and en["evidence"].startswith("1 beat found;")
    assert zh["problems"] == "V1 导联未测量：FLAT、NOISY。"
    assert zh["warnings"] == ["不可用于诊断。", "b"]  # a phrase the catalogues do not know: as written
    assert zh["unpaired"] == ["a", "b"]  # phrases that do not pair one for one are not guessed at
    assert zh["refused"] == {"main": "不是 DICOM 文件", "detail": "part 1: not a DICOM Part 10 file"}
    assert en["refused"] == {"main": "Not a DICOM file", "detail": "part 1: not a DICOM Part 10 file"}
    assert zh["unknown"] == {"main": "what the server said", "detail": ""}
    assert zh["message"] == "不是心电图（scan.pdf: no ECG found）"
    assert zh["job"] == {"main": "可用导联过少，无法判读心电图", "detail": "ecg.csv: too few usable leads to read (V1: flat)"}
    assert zh["bareCode"] == {"main": "文件不完整（被截断）", "detail": ""}
    assert zh["stow"] == ["文件不完整（被截断）", "some_new_reason"]
