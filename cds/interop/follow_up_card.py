"""The CDS Hooks card of a registry patient's follow-up, in Simplified Chinese or English.

"Hypertension follow-up overdue 20 days; BP above target since 2026-09-01 (3 months)" when the chart opens: the
indicator is critical when a referral is advised, a warning when the follow-up is overdue or the patient is not
controlled, else info.
"""

from __future__ import annotations

import uuid

from cds.interop.card_language import Language
from cds.interop.cds_hooks import Card, Source
from cds.results.follow_up import Control, FollowUpStatus

SOURCE = "国家基本公共卫生服务规范（第三版）/ National Basic Public Health Service Specification, 3rd edition (2017)"
CONDITIONS = {"hypertension": {Language.EN: "Hypertension", Language.ZH: "高血压"},
              "diabetes": {Language.EN: "Type 2 diabetes", Language.ZH: "2型糖尿病"}}  # fmt: skip
MEASURES = {"office_bp": {Language.EN: "BP", Language.ZH: "血压"},
            "home_bp": {Language.EN: "home BP", Language.ZH: "家庭血压"},
            "fasting_glucose": {Language.EN: "fasting glucose", Language.ZH: "空腹血糖"},
            "hba1c": {Language.EN: "HbA1c", Language.ZH: "糖化血红蛋白"}}  # fmt: skip
PHRASES = {
    "overdue": {Language.EN: "{condition} follow-up overdue {days} days", Language.ZH: "{condition}随访已逾期{days}天"},
    "due": {Language.EN: "{condition}: next follow-up {due}", Language.ZH: "{condition}：下次随访{due}"},
    "above_since": {Language.EN: "{measure} above target since {since} ({span})",
                    Language.ZH: "{measure}自{since}起未达标（{span}）"},
    "above": {Language.EN: "{measure} {value} {unit} above target {target}",
              Language.ZH: "{measure}{value} {unit}，未达标（目标{target}）"},
    "controlled": {Language.EN: "controlled at the last follow-up", Language.ZH: "上次随访控制满意"},
    "never": {Language.EN: "no follow-up yet", Language.ZH: "尚无随访记录"},
    "refer": {Language.EN: "Referral to a higher-level hospital is advised: {reason}.",
              Language.ZH: "建议转诊至上级医院：{reason}。"},
    "why_due": {Language.EN: "Next follow-up due {due} ({reason}).", Language.ZH: "下次随访日期{due}（{reason}）。"},
    "count": {Language.EN: "{count} follow-up(s) in the past year (at least 4 a year).",
              Language.ZH: "过去一年随访{count}次（每年至少4次）。"},
    "source": {Language.EN: "Schedule and targets: {source}.", Language.ZH: "随访安排与控制目标依据：{source}。"},
}
SEPARATOR = {Language.EN: "; ", Language.ZH: "；"}
REASONS_ZH = {
    "no_follow_up": "纳入管理后尚无随访", "quarterly": "控制满意：按季度随访", "recheck": "控制不满意：2周内随访",
    "refer_consecutive": "连续两次控制不满意：建议转诊，2周内随访转诊情况",
    "refer_now": "上次随访出现需紧急转诊的数值：建议转诊，2周内随访",
}  # fmt: skip


def _say(key: str, language: Language, **values: object) -> str:
    return PHRASES[key][language].format(**values)


def _reason(status: FollowUpStatus, language: Language) -> str:
    return REASONS_ZH.get(status.reason_code, status.reason) if language is Language.ZH else status.reason


def _span(days: int, language: Language) -> str:
    """"20 days" under a month, else "3 months" (whole 30-day months)."""
    count, unit = (days, "day") if days < 30 else (days // 30, "month")
    if language is Language.ZH:
        return f"{count}{'天' if unit == 'day' else '个月'}"
    return f"{count} {unit}{'' if count == 1 else 's'}"


def _value(control: Control) -> str:
    return "/".join(f"{v:g}" for v in control.value)


def follow_up_card(status: FollowUpStatus, language: Language = Language.EN) -> Card:
    """The card of one registry patient's follow-up."""
    condition = CONDITIONS[status.entry.condition][language]
    parts = [_say("overdue", language, condition=condition, days=status.overdue_days) if status.overdue_days
             else _say("due", language, condition=condition, due=status.due.isoformat())]  # fmt: skip
    office = status.controls[0]
    if status.uncontrolled_since is not None:
        parts.append(_say("above_since", language, measure=MEASURES[office.measure][language],
                          since=status.uncontrolled_since.isoformat(),
                          span=_span((status.as_of - status.uncontrolled_since).days, language)))  # fmt: skip
    elif status.controlled is None:
        parts.append(_say("never", language))
    else:
        parts.append(_say("controlled", language))
    for control in status.controls[1:]:
        if control.controlled is False:
            parts.append(_say("above", language, measure=MEASURES[control.measure][language], value=_value(control),
                              unit=control.unit, target=control.target))  # fmt: skip
    detail = [_say("why_due", language, due=status.due.isoformat(), reason=_reason(status, language)),
              _say("count", language, count=status.follow_ups_past_year)]  # fmt: skip
    if status.referral_advised:
        detail.insert(0, _say("refer", language, reason=_reason(status, language)))
    detail.append(_say("source", language, source=SOURCE))
    uncontrolled = status.controlled is False or any(c.controlled is False for c in status.controls)
    indicator = "critical" if status.referral_advised else "warning" if status.overdue_days or uncontrolled else "info"
    return Card(uuid=str(uuid.uuid4()), summary=SEPARATOR[language].join(parts)[:140], detail="\n\n".join(detail),
                indicator=indicator, source=Source(label="cds follow-up"))  # fmt: skip
