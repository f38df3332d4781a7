"""Alerts from early-warning scores: their levels (ordered) and the signal a score raises."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class AlertLevel(StrEnum):
    """How urgently a clinician must respond; ordered."""

    URGENT = "urgent"
    EMERGENCY = "emergency"


RANK = {AlertLevel.URGENT: 1, AlertLevel.EMERGENCY: 2}


@dataclass(frozen=True)
class Signal:
    """What a score asks for: the rules it met, the level, and the words a clinician reads."""

    rules: tuple[str, ...]
    level: AlertLevel
    text: str
