"""The workspace in Chinese, in a real browser against a real ``cds serve --dev``.

English is the default (Playwright's Chromium says en-US); the header's switch turns the page to 简体中文: ``<html
lang>``, headings, buttons, badges and dates (Intl, zh-CN) of the sign-in, the worklist, the study viewer (findings
and their names, review, sign-off), the risk panel, whose laboratory values stay in the units the laboratory sent
(mmol/L, µmol/L), monitoring, follow-up, referrals and the model dashboard; the pathologist's slide list and read
(score, tumour area, the slide viewer's controls and read-out) and the cardiologist's ECG list and read (rhythm, flags,
measurements in 次/分 and ms, calipers, review). What the server writes is in Chinese too: the ECG's flags, rhythm
evidence and warnings and the slide's warnings (from their phrases), the model's intended use, and a refused upload's
reason (its code in words, the server's English detail beside it). The choice survives a reload; contrast holds and no
Chinese label overflows its button or badge. Screenshots at 1280x800 and 390x844 go to ``$CDS_UI_ARTIFACTS`` (``zh-*.png``).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from playwright.sync_api import expect

from cds.pipelines.ecg.record import STANDARD_LEADS
from tests.pipelines.pathology.slides import tumour_layout
from tests.ui.conftest import LOW_CONTRAST, dev_headers, sign_in
from training.data.ecg_signals import generate_ecg
from training.data.he_slide import write_slide

pytestmark = [pytest.mark.ui, pytest.mark.browser, pytest.mark.slow]

PHONE = {"width": 390, "height": 844}
# Buttons, badges, links and headings whose text is wider than their box (cut off or spilling out); what is only
# for screen readers (clipped away, as a phone's slide review hides its table head) is not on screen to overflow.
OVERFLOWING = """() => Array.from(document.querySelectorAll("button, .badge, a, h1, h2, th, label, select"))
  .filter((el) => el.getClientRects().length && getComputedStyle(el).overflowX !== "auto"
    && el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).display !== "inline")
  .filter((el) => { for (let e = el; e; e = e.parentElement) {
    if (getComputedStyle(e).clip === "rect(0px, 0px, 0px, 0px)") return false; } return true; })
  .map((el) => `${el.tagName} "${el.textContent.trim().slice(0, 30)}" ${el.scrollWidth}>${el.clientWidth}`)"""
ZH_DATE_TIME = re.compile(r"^\d{4}/\d{1,2}/\d{1,2} \d{2}:\d{2}:\d{2}$")  # Intl zh-CN, dateStyle short
READ_TIMEOUT_S = 180


def _check_page(page: Any, artifacts: Path, name: str, *, phone_layout: bool = True) -> None:
    """Contrast and no overflow at 1280x800, then the same at 390x844 (``phone_layout``: the view has one)."""
    assert page.evaluate(LOW_CONTRAST) == []
    assert page.evaluate(OVERFLOWING) == []
    page.screenshot(path=artifacts / f"zh-{name}-1280x800.png")
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(300)  # layout settles
    page.screenshot(path=artifacts / f"zh-{name}-390x844.png", full_page=True)
    if phone_layout:
        assert page.evaluate(OVERFLOWING) == []
        assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    page.set_viewport_size({"width": 1280, "height": 800})


def test_workspace_switches_to_chinese_and_keeps_it(page: Any, server: str, study: dict[str, str],
                                                    artifacts: Path) -> None:  # fmt: skip
    page.goto(f"{server}/ui/")
    expect(page.get_by_role("heading", name="Sign in", exact=True)).to_be_visible()  # English by default
    assert page.evaluate("() => document.documentElement.lang") == "en"
    page.get_by_label("Language").select_option("zh-CN")
    expect(page.get_by_role("heading", name="登录", exact=True)).to_be_visible()
    assert page.evaluate("() => document.documentElement.lang") == "zh-CN"
    expect(page.get_by_role("link", name="跳到主要内容")).to_be_attached()
    page.get_by_label("角色").select_option("admin")
    expect(page.locator("#dev-role option:checked")).to_have_text("管理员")
    page.locator("#dev-signin").click()
    expect(page.locator("#whoami")).to_contain_text("管理员")
    expect(page.get_by_role("navigation", name="主导航").get_by_role("link")).to_have_text(
        ["工作列表", "病理", "心电图", "患者风险", "监测", "随访", "转诊", "模型"])

    # the worklist
    expect(page.get_by_role("heading", name="工作列表")).to_be_visible()
    expect(page.locator("#worklist-table thead th")).to_have_text(
        ["优先级", "患者", "检查", "检查类型", "状态", "AI 发现", "接收时间", "打开"])
    row = page.locator(f'tr[data-job="{study["job_id"]}"]')
    expect(row.locator(".urgency .badge").first).to_have_text(re.compile("^(危急|紧急|常规)$"))
    expect(row.locator("[data-read]")).to_have_text(re.compile("^(未读|已读|您已读)$"))
    expect(row.locator(".state .badge")).to_have_text("已完成")
    expect(row.locator("time")).to_have_text(ZH_DATE_TIME)
    expect(row.get_by_role("button", name=re.compile("^打开.*X 线片$"))).to_have_text("打开影像")
    expect(page.locator("#upload-button")).to_have_text("上传 DICOM…")
    expect(page.locator("#updated")).to_contain_text("更新于")
    _check_page(page, artifacts, "worklist")

    # the choice survives a reload (localStorage), whatever the browser says
    page.reload()
    expect(page.get_by_role("heading", name="工作列表")).to_be_visible()
    assert page.evaluate("() => document.documentElement.lang") == "zh-CN"
    expect(page.get_by_label("语言")).to_have_value("zh-CN")

    # the study viewer
    row.get_by_role("button", name=re.compile("^打开")).click()
    expect(page.get_by_role("heading", name="影像查看器")).to_be_visible()
    expect(page.get_by_role("heading", name="AI 发现")).to_be_visible()
    expect(page.locator("#findings-table thead th")).to_have_text(["发现", "概率与阈值", "您的审核"])
    expect(page.locator('#findings-table tr[data-label="Effusion"] .label')).to_have_text("胸腔积液")
    expect(page.locator('#findings-table tr[data-label="Effusion"] button.review')).to_have_text(["接受", "驳回"])
    expect(page.locator("#sign")).to_have_text("签发报告")
    expect(page.get_by_label("印象/诊断意见")).to_be_visible()
    expect(page.get_by_role("link", name="返回工作列表")).to_be_visible()
    expect(page.locator("#shortcuts summary")).to_have_text("快捷键")
    expect(page.locator("#image-caption")).to_contain_text("窗宽")
    _check_page(page, artifacts, "viewer")

    # the risk panel: Chinese words, server headlines in Chinese, laboratory units as sent
    page.goto(f"{server}/ui/#/risk")
    expect(page.get_by_role("heading", name="患者风险")).to_be_visible()
    page.get_by_role("button", name="载入示例患者").click()
    expect(page.locator("#panel-status")).to_contain_text("3 项中已评分 1 项")
    expect(page.locator("#topics h2")).to_have_text(["心血管", "糖尿病", "肾脏"])
    expect(page.locator("#headline-kidney")).to_contain_text("肾脏")
    expect(page.locator('#topic-kidney tr[data-field="creatinine"] .value')).to_have_text("88.42 µmol/L")
    expect(page.locator('#topic-cardiovascular tr[data-field="total_cholesterol"] .value')).to_have_text("5.508 mmol/L")
    expect(page.locator('#topic-cardiovascular tr[data-field="total_cholesterol"] th .block').first).to_have_text(
        "总胆固醇")
    expect(page.locator("#topics")).not_to_contain_text("mg/dL")
    expect(page.locator("#panel-evaluated")).to_have_text(re.compile(r"^\d{4}年\d{1,2}月\d{1,2}日$"))
    expect(page.locator("#band-cardiovascular")).to_have_text("未评分")
    expect(page.locator('#topic-kidney tr[data-field="age"] .value')).to_have_text("55 岁")
    expect(page.locator("#panel-gender")).to_have_text("女")
    _check_page(page, artifacts, "risk", phone_layout=False)  # the three cards stay side by side on a phone, in
    # English too: the panel has no phone layout yet (the screenshot shows it)

    # the other clinician views and the model dashboard
    for view, heading, text in (("monitoring", "监测", "最近 24 小时"), ("follow-up", "随访", "高血压"),
                                ("referrals", "转诊", "各机构及优先级的周转时间"), ("models", "模型看板", "已注册模型")):  # fmt: skip
        page.goto(f"{server}/ui/#/{view}")
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        expect(page.locator("main")).to_contain_text(text)
        assert page.evaluate(LOW_CONTRAST) == []
        assert page.evaluate(OVERFLOWING) == []
    page.goto(f"{server}/ui/#/risk")

    # back to English: everything follows at once
    page.get_by_label("语言").select_option("en")
    expect(page.get_by_role("heading", name="Patient risk")).to_be_visible()
    assert page.evaluate("() => document.documentElement.lang") == "en"


def test_deployment_language_applies_only_when_the_browser_names_neither(browser: Any, server: str) -> None:
    context = browser.new_context(locale="fr-FR")
    try:
        tab = context.new_page()
        tab.goto(f"{server}/ui/")  # this server sets no CDS_LANGUAGE: English
        expect(tab.get_by_role("heading", name="Sign in", exact=True)).to_be_visible()
        assert tab.evaluate("() => document.documentElement.lang") == "en"
    finally:
        context.close()
    context = browser.new_context(locale="zh-CN")
    try:
        tab = context.new_page()
        tab.goto(f"{server}/ui/")  # a Chinese browser gets Chinese with no choice made
        expect(tab.get_by_role("heading", name="登录", exact=True)).to_be_visible()
    finally:
        context.close()


def _read(server: str, kind: str, name: str, content: bytes, headers: dict[str, str], **params: str) -> str:
    """Upload ``content`` as a ``kind`` ("pathology" or "ecg") read over HTTP and wait for it; the job's id."""
    queued = httpx.post(f"{server}/v1/{kind}/jobs", params={"filename": name, **params}, content=content,
                        headers=headers | {"Content-Type": "application/octet-stream"}, timeout=60)  # fmt: skip
    assert queued.status_code == 202, queued.text
    location = f"{server}{queued.headers['Location']}"
    deadline = time.monotonic() + READ_TIMEOUT_S
    while time.monotonic() < deadline:
        status = httpx.get(location, headers=headers, timeout=30).json()
        if status["state"] in ("done", "failed"):
            assert status["state"] == "done", status
            return str(status["id"])
        time.sleep(0.25)
    raise AssertionError(f"{kind} read not finished in {READ_TIMEOUT_S} s")


@pytest.fixture(scope="module")
def reads(server: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A slide read with a tumour (the pathologist's) and an ECG read with inferior ST elevation (the cardiologist's)."""
    folder = tmp_path_factory.mktemp("zh-reads")
    slide = write_slide(folder / "tumour-slide.tif", 2048, 1536, seed=8, mpp=0.5, tile=256, factor=2,
                        layout=tumour_layout(2048, 1536))  # fmt: skip
    ecg = generate_ecg(np.random.default_rng([710_000, 1]), "sinus_rhythm", sampling_hz=500, duration_s=10,
                       st_mv={"II": 0.3, "III": 0.3, "aVF": 0.3})  # fmt: skip
    rows = ["# sampling_hz: 500", "# unit: uV", ",".join(STANDARD_LEADS)]
    rows += [",".join(f"{v * 1000:.0f}" for v in sample) for sample in ecg.signals.T]
    return {
        "slide": _read(server, "pathology", slide.path.name, slide.path.read_bytes(),
                       dev_headers(server, "pathologist", subject="dev-pathologist")),
        "ecg": _read(server, "ecg", "inferior-st.csv", ("\n".join(rows) + "\n").encode(),
                     dev_headers(server, "cardiologist", subject="dev-cardiologist"), sex="male", age="60"),
    }


def test_slide_and_ecg_reads_in_chinese(page: Any, server: str, reads: dict[str, str], artifacts: Path) -> None:
    sign_in(page, server, "pathologist")  # in English, the default
    page.get_by_label("Language").select_option("zh-CN")

    # the pathologist's list and the slide read
    expect(page.get_by_role("heading", name="病理", exact=True)).to_be_visible()
    expect(page.locator("#slides-table thead th")).to_have_text(
        ["文件", "患者", "状态", "AI 判读", "切片评分与阈值", "肿瘤面积", "接收时间", "打开"])
    row = page.locator(f'#slides-table tr[data-job="{reads["slide"]}"]')
    expect(row.locator(".state")).to_have_text("已完成")
    expect(row.locator(".result")).to_have_text("疑似肿瘤")
    expect(row.locator("time")).to_have_text(ZH_DATE_TIME)
    expect(page.locator("#slides-updated")).to_contain_text("更新于")
    expect(page.locator("#slide-upload")).to_have_text("上传切片或图块…")
    row.get_by_role("button", name=re.compile("^打开 .* 的判读结果$")).click()
    expect(page.get_by_role("heading", name="病理切片判读")).to_be_visible(timeout=60_000)
    expect(page.locator("#slide-call")).to_have_text("疑似肿瘤")
    expect(page.locator("#slide-score")).to_have_text(re.compile(r"^[01]\.\d{3}（阈值 0\.490）$"))
    expect(page.locator("#tumour-area")).to_have_text(re.compile(r"^\d+\.\d%（\d+ 个组织图块中有 \d+ 个达到或超过阈值）$"))
    expect(page.locator("#slide-patient")).to_have_text("上传时未提供")
    expect(page.locator("#nfdu strong")).to_have_text("不可用于诊断。")
    expect(page.locator("#nfdu")).to_contain_text("不是医疗器械")  # the model's intended use, in Chinese
    expect(page.locator("#nfdu")).not_to_contain_text("Demonstration")
    expect(page.locator(".slide-panel .warnings li").first).to_have_text("不可用于诊断。")
    expect(page.get_by_role("heading", name="AI 发现")).to_be_visible()
    tumour = page.locator('#findings-table tr[data-label="tumour"]')
    expect(tumour.locator(".label")).to_have_text("肿瘤")
    expect(tumour.locator("button.review")).to_have_text(["接受", "驳回"])
    expect(page.locator("#sign")).to_have_text("签发报告")
    expect(page.get_by_role("link", name="返回病理")).to_be_visible()
    expect(page.get_by_role("button", name="下载 FHIR 报告")).to_be_visible()
    if page.locator("#bundle-missing").count():  # no workspace bundle: the server-rendered zoom
        expect(page.locator("#zoom-caption")).to_contain_text("像素")
        expect(page.get_by_label("放大倍数", exact=True)).to_be_visible()
    else:  # the slide viewer
        expect(page.locator("#slide-home")).to_have_text("全片")
        expect(page.get_by_role("button", name="显示整张切片")).to_be_visible()
        expect(page.get_by_label("热力图不透明度")).to_be_visible()
        expect(page.locator("#heat-opacity-value")).to_have_text("45%")
        expect(page.locator("#slide-readout")).to_contain_text("每个切片像素 0.5 µm", timeout=30_000)
        expect(page.locator("#slide-scalebar .scalebar-text")).to_have_text(re.compile(r"^[\d.]+ (µm|mm)$"))
    _check_page(page, artifacts, "slide")

    # the cardiologist's list and the ECG read
    page.get_by_role("button", name="退出登录").click()
    page.get_by_label("角色").select_option("cardiologist")
    page.locator("#dev-signin").click()
    expect(page.get_by_role("heading", name="心电图判读", exact=True)).to_be_visible()
    expect(page.locator("#ecgs-table thead th")).to_have_text(
        ["优先级", "文件", "患者", "状态", "节律", "心率", "提示", "接收时间", "打开"])
    row = page.locator(f'#ecgs-table tr[data-job="{reads["ecg"]}"]')
    expect(row).to_contain_text("危急")
    expect(row.locator(".state")).to_contain_text("已完成")
    expect(row.locator(".rate")).to_have_text(re.compile(r"^\d+ 次/分$"))
    expect(row.locator(".flags")).to_contain_text("疑似 STEMI — 需紧急审核")
    expect(page.get_by_role("button", name="上传心电图")).to_be_visible()
    expect(page.get_by_label("性别（用于 ST 段与 QTc 界值）")).to_be_visible()
    # a refused upload: what was wrong in Chinese, the server's detail (naming what it refused) beside it
    page.locator("#ecg-file").set_input_files(files=[{"name": "empty.csv", "mimeType": "text/csv", "buffer": b""}])
    page.get_by_role("button", name="上传心电图").click()
    refused = page.locator("#ecg-upload-status")
    expect(refused).to_contain_text("上传失败（empty_input）：未上传任何内容：文件为空")
    expect(refused.locator(".error-detail")).to_have_text("the uploaded file is empty")
    row.get_by_role("button", name=re.compile("^打开 .* 的心电图判读$")).click()
    expect(page.locator("#ecg-rhythm")).to_be_visible(timeout=60_000)
    expect(page.locator("#ecg-critical .critical-title")).to_contain_text("疑似 STEMI — 需紧急审核")
    expect(page.locator("#ecg-critical .critical-leads")).to_contain_text("导联")
    # the flags, the rhythm's evidence, the warnings and the model's intended use as the server wrote them, in Chinese
    expect(page.locator("#ecg-critical")).to_contain_text(re.compile(r"J 点处 ST 段抬高：(II|III|aVF) \+\d\.\d mm"))
    stemi = page.locator('#ecg-flags li[data-code="possible_stemi"] .flag-text')
    expect(stemi).to_contain_text("仅凭一份心电图无法判断是否为新发。")
    expect(stemi).not_to_contain_text("ST elevation")
    expect(page.locator("#rhythm-evidence")).to_have_text(re.compile(r"^\d+% 的心搏前有 P 波，.*心室率 \d+ 次/分。$"))
    expect(page.locator("#ecg-warnings li").first).to_have_text("不可用于诊断：这是在生成的心电图上训练的演示用节律分类器。")
    expect(page.locator("#nfdu")).to_contain_text("不是医疗器械")
    expect(page.locator("main")).not_to_contain_text("Demonstration")
    expect(page.locator("#ecg-rhythm")).to_have_text("窦性心律")
    expect(page.locator("#ecg-rate")).to_have_text(re.compile(r"^\d+ 次/分$"))
    expect(page.locator("#ecg-measurements thead th")).to_have_text(["项目", "AI 值", "您的审核", "接受", "更正"])
    expect(page.locator('#ecg-measurements tr[data-item="qt_ms"] th')).to_have_text("QT 间期")
    expect(page.locator("#ai-qt_ms")).to_have_text(re.compile(r"^\d+ ms$"))
    expect(page.locator("#ai-heart_rate_bpm")).to_have_text(re.compile(r"^\d+ 次/分$"))
    expect(page.get_by_role("heading", name="J 点处 ST 段水平")).to_be_visible()
    expect(page.locator("#ecg-st .st-flagged dd").first).to_have_text(re.compile(r"^\+\d\.\d mm ▲$"))
    expect(page.locator("#strip-heading")).to_have_text("节律条：II 导联，10 秒")
    expect(page.locator("#ecg-scale")).to_contain_text(re.compile(r"本屏幕上 1 mm = [\d.]+ 像素"))
    expect(page.locator("#ecg-leads-paper .lead-label")).to_have_count(12)  # lead names stay as printed: I, aVR, V1
    page.get_by_label("分规起点（ms）").fill("1000")
    page.get_by_label("分规终点（ms）").fill("1600")
    expect(page.locator("#caliper-readout")).to_have_text("间期 600 ms · 相当于 100 次/分")
    page.get_by_role("button", name="接受心率", exact=True).click()
    expect(page.locator("#review-heart_rate_bpm")).to_have_text("已接受 · dev-cardiologist")
    expect(page.locator("#review-history tbody tr").first).to_contain_text("已接受")
    expect(page.get_by_role("button", name="打印图（PDF）")).to_be_visible()
    expect(page.get_by_role("link", name="返回心电图判读列表")).to_be_visible()
    _check_page(page, artifacts, "ecg", phone_layout=False)  # the twelve leads need 540 px at the smallest legible
    # scale (4 px/mm, 6 x 2): the read has no phone layout, in English either (the screenshot shows it)
