"""The follow-up card's wording: how long a patient has been above target, in days then months."""

from __future__ import annotations

from cds.interop.card_language import Language
from cds.interop.follow_up_card import _span


def test_the_card_names_the_span_in_days_then_months() -> None:
    assert [_span(d, Language.EN) for d in (1, 20, 30, 95)] == ["1 day", "20 days", "1 month", "3 months"]
    assert [_span(d, Language.ZH) for d in (20, 95)] == ["20天", "3个月"]
