"""The workspace in Chinese, in a real browser against a real ``cds serve --dev``.

English is the default (Playwright's Chromium says en-US); the header's switch turns the page to 简体中文: ``<html
lang>``, headings, buttons, badges and dates (Intl, zh-CN) of the sign-in, the worklist, the study viewer (findings
and their names, review, sign-off), the risk panel, whose laboratory values stay in the units the laboratory sent
(mmol/L, µmol/L), monitoring, follow-up, referrals and the model dashboard. The choice survives a reload; contrast
holds and no Chinese label overflows its button or badge. Screenshots at 1280x800 and 390x844 go to
``$CDS_UI_ARTIFACTS`` (``zh-*.png``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.ui.conftest import LOW_CONTRAST

pytestmark = [pytest.mark.ui, pytest.mark.browser, pytest.mark.slow]

PHONE = {"width": 390, "height": 844}
# Buttons, badges, links and headings whose text is wider than their box (cut off or spilling out).
OVERFLOWING = """() => Array.from(document.querySelectorAll("button, .badge, a, h1, h2, th, label, select"))
  .filter((el) => el.getClientRects().length && getComputedStyle(el).overflowX !== "auto"
    && el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).display !== "inline")
  .map((el) => `${el.tagName} "${el.textContent.trim().slice(0, 30)}" ${el.scrollWidth}>${el.clientWidth}`)"""
ZH_DATE_TIME = re.compile(r"^\d{4}/\d{1,2}/\d{1,2} \d{2}:\d{2}:\d{2}$")  # Intl zh-CN, dateStyle short


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
