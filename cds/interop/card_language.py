"""The words of risk cards and panels in Simplified Chinese and English, and the units a site reads.

The language is chosen per request from ``Accept-Language`` (any ``zh`` tag gives Simplified Chinese, any ``en``
tag English, by the header's q-values), else the site default (``CDS_LANGUAGE``). What cds composes is translated:
topic names, bands, headlines, the fixed sentences of a card, input names. Free text that comes from a record or a
source (an equation's citation, a resource's own caveat sentence) is kept as written. Units follow the site's
population: a Chinese site reads laboratory values in SI units (cholesterol mmol/L, creatinine µmol/L), a US site
in conventional units (mg/dL).
"""

from __future__ import annotations

from enum import StrEnum

from cds.interop.units import FIELD_QUANTITIES, Quantity, from_canonical
from cds.models.risk.base import RiskBand, RiskPopulation, display_unit


class Language(StrEnum):
    """The languages cards and panels are written in."""

    EN = "en"
    ZH = "zh-CN"


TOPICS = {
    "cardiovascular": {Language.EN: "Cardiovascular", Language.ZH: "心血管"},
    "diabetes": {Language.EN: "Diabetes", Language.ZH: "糖尿病"},
    "kidney": {Language.EN: "Kidney", Language.ZH: "肾脏"},
}
BANDS = {
    RiskBand.LOW: "低危", RiskBand.BORDERLINE: "临界", RiskBand.SLIGHTLY_ELEVATED: "轻度升高",
    RiskBand.INTERMEDIATE: "中危", RiskBand.MODERATE: "中度", RiskBand.HIGH: "高危", RiskBand.VERY_HIGH: "很高危",
}  # fmt: skip
FIELDS_ZH = {
    "age": "年龄", "sex": "性别", "race": "种族", "total_cholesterol": "总胆固醇",
    "hdl_cholesterol": "高密度脂蛋白胆固醇", "ldl_cholesterol": "低密度脂蛋白胆固醇", "systolic_bp": "收缩压",
    "diastolic_bp": "舒张压", "bp_treated": "降压药治疗", "smoker": "吸烟", "diabetes": "糖尿病",
    "statin": "他汀治疗", "egfr": "eGFR", "creatinine": "血肌酐", "uacr": "尿白蛋白/肌酐比值",
    "hba1c": "糖化血红蛋白", "sdi_decile": "社会剥夺指数分位", "bmi": "体重指数", "waist_cm": "腰围",
    "physically_active": "每日体力活动≥30分钟", "daily_vegetables": "每日吃蔬菜水果",
    "high_glucose_history": "曾发现血糖偏高", "family_history": "糖尿病家族史", "fasting_glucose": "空腹血糖",
    "ogtt_2h_glucose": "OGTT 2小时血糖",
}  # fmt: skip
PHRASES = {
    "not_calculated": {Language.EN: "{topic} risk not calculated: {reason}",
                       Language.ZH: "{topic}风险未计算：{reason}"},
    "missing": {Language.EN: "missing {fields}", Language.ZH: "缺少{fields}"},
    "impossible": {Language.EN: "impossible value: {detail}", Language.ZH: "数值不可能：{detail}"},
    "out_of_range": {Language.EN: "{fields} outside the validated range", Language.ZH: "{fields}超出验证范围"},
    "secondary": {
        Language.EN: "{topic}: very high risk (established ASCVD); primary-prevention equations do not apply",
        Language.ZH: "{topic}：很高危（已确诊动脉粥样硬化性心血管疾病）；一级预防风险方程不适用",
    },
    "secondary_detail": {
        Language.EN: ("The record shows established atherosclerotic cardiovascular disease: {evidence}. Such a "
                      "patient is at very high risk and is managed for secondary prevention; the primary-prevention "
                      "equations (PREVENT, Pooled Cohort Equations, Framingham) were derived in people without it "
                      "and are not computed."),
        Language.ZH: ("病历显示已确诊动脉粥样硬化性心血管疾病（ASCVD）：{evidence}。此类患者属很高危，按二级预防管理；"
                      "一级预防风险方程（PREVENT、汇总队列方程、Framingham）源自无此病的人群，因此不予计算。"),
    },
    "known_diabetes": {
        Language.EN: "{topic}: already diagnosed ({evidence}); new-onset risk scores do not apply",
        Language.ZH: "{topic}：已确诊（{evidence}）；新发糖尿病风险评分不适用",
    },
    "needs": {Language.EN: "{method} could not be computed: {reason}.", Language.ZH: "{method}无法计算：{reason}。"},
    "outcome": {Language.EN: "Outcome: {outcome}.", Language.ZH: "预测结局：{outcome}。"},
    "largest": {Language.EN: "Largest contributions: {items}.", Language.ZH: "主要影响因素：{items}。"},
    "population": {Language.EN: "Population: {population}.", Language.ZH: "适用人群：{population}。"},
    "not_diagnostic": {Language.EN: "Not for diagnostic use.", Language.ZH: "仅供临床参考，不用于诊断。"},
    "caveats": {Language.EN: "Caveats: {items}.", Language.ZH: "注意：{items}。"},
    "about": {Language.EN: "About {method}", Language.ZH: "关于{method}"},
}  # fmt: skip
SEPARATOR = {Language.EN: ", ", Language.ZH: "、"}
# Laboratory quantities shown in SI units at a Chinese site: (unit, factor from the equation's unit).
SI_DISPLAY: dict[Quantity, tuple[str, float]] = {
    Quantity.CHOLESTEROL: ("mmol/L", 1 / 38.67),
    Quantity.CREATININE: ("umol/L", 88.42),
}


def negotiate(accept_language: str | None, default: Language) -> Language:
    """The language an ``Accept-Language`` header prefers among those cards are written in, else ``default``."""
    ranked: list[tuple[float, int, Language]] = []
    for index, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        primary = tag.strip().lower().split("-")[0]
        language = {"zh": Language.ZH, "en": Language.EN}.get(primary)
        if language is not None and quality > 0:
            ranked.append((-quality, index, language))
    return min(ranked)[2] if ranked else default


def phrase(key: str, language: Language, **values: object) -> str:
    """The phrase ``key`` in ``language`` with ``values`` filled in."""
    return PHRASES[key][language].format(**values)


def topic_name(topic: str, language: Language) -> str:
    """A panel topic's name."""
    return TOPICS.get(topic, {}).get(language, topic.capitalize())


def band_name(band: RiskBand, language: Language) -> str:
    """A band as people say it."""
    return BANDS[band] if language is Language.ZH else band.value.replace("_", " ")


def field_names(names: tuple[str, ...] | list[str], language: Language) -> str:
    """Input names joined for a sentence (Chinese labels in Chinese; the field names in English)."""
    shown = [FIELDS_ZH.get(n, n) for n in names] if language is Language.ZH else list(names)
    return SEPARATOR[language].join(shown)


def display_value(name: str, value: float | None, unit: str, population: RiskPopulation,
                  arrived: str = "") -> tuple[float | None, str]:  # fmt: skip
    """A value (or ``None``) in the unit it arrived in, else the unit the site reads, and that unit as people write it.

    ``value`` is in the equation's ``unit``; ``arrived`` is the UCUM unit the record gave it in (a laboratory's
    mmol/L stays mmol/L wherever the site is). Without one (a value derived, answered or read in mixed units): SI
    laboratory units at a Chinese site (cholesterol mmol/L, creatinine µmol/L), else the equation's unit.
    """
    quantity = FIELD_QUANTITIES.get(name)
    if quantity is not None and arrived:
        converted = None if value is None else from_canonical(value, arrived, quantity)
        if value is None or converted is not None:
            return converted, display_unit(arrived)
    if population is RiskPopulation.CHINA and quantity in SI_DISPLAY:
        si_unit, factor = SI_DISPLAY[quantity]
        return (None if value is None else value * factor), display_unit(si_unit)
    return value, display_unit(unit)
