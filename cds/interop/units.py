"""UCUM unit conversion for the laboratory and vital-sign values the risk equations take.

Each quantity has one canonical unit (the one the equations declare); other units convert by a fixed factor.
Factors: cholesterol 1 mmol/L = 38.67 mg/dL (molar mass 386.65 g/mol); creatinine 1 mg/dL = 88.42 umol/L
(113.12 g/mol); glucose 1 mmol/L = 18.016 mg/dL (180.16 g/mol); urine ACR 1 mg/mmol = 8.842 mg/g; pressure
1 kPa = 7.50062 mm[Hg]; length 1 [in_i] = 2.54 cm. HbA1c in IFCC units (mmol/mol) converts to NGSP % by the
IFCC-NGSP master equation, NGSP = 0.09148 * IFCC + 2.152 (Hoelzel et al., Clin Chem 2004;50:166-174, as the NGSP
publishes it), the one conversion that is not a factor.
"""

from __future__ import annotations

from enum import StrEnum

from cds.errors import InvalidInputError
from cds.models.risk.base import display_unit


class Quantity(StrEnum):
    """Kinds of measured quantity, each with a canonical UCUM unit."""

    CHOLESTEROL = "cholesterol"
    CREATININE = "creatinine"
    PRESSURE = "pressure"
    LENGTH = "length"
    BMI = "bmi"
    ACR = "acr"
    HBA1C = "hba1c"
    EGFR = "egfr"
    GLUCOSE = "glucose"
    RATE = "rate"
    SATURATION = "saturation"
    TEMPERATURE = "temperature"
    MASS = "mass"


CANONICAL = {
    Quantity.CHOLESTEROL: "mg/dL",
    Quantity.CREATININE: "mg/dL",
    Quantity.PRESSURE: "mm[Hg]",
    Quantity.LENGTH: "cm",
    Quantity.BMI: "kg/m2",
    Quantity.ACR: "mg/g",
    Quantity.HBA1C: "%",
    Quantity.EGFR: "mL/min/{1.73_m2}",
    Quantity.GLUCOSE: "mmol/L",
    Quantity.RATE: "/min",
    Quantity.SATURATION: "%",
    Quantity.TEMPERATURE: "Cel",
    Quantity.MASS: "kg",
}
_FACTORS: dict[Quantity, dict[str, float]] = {
    Quantity.CHOLESTEROL: {"mg/dL": 1.0, "mmol/L": 38.67},
    Quantity.CREATININE: {"mg/dL": 1.0, "umol/L": 1 / 88.42, "mmol/L": 1000 / 88.42},
    Quantity.PRESSURE: {"mm[Hg]": 1.0, "kPa": 7.50062},
    Quantity.LENGTH: {"cm": 1.0, "m": 100.0, "mm": 0.1, "[in_i]": 2.54},
    Quantity.BMI: {"kg/m2": 1.0},
    Quantity.ACR: {"mg/g": 1.0, "mg/mmol": 8.842, "ug/mg": 1.0},
    Quantity.HBA1C: {"%": 1.0},
    Quantity.EGFR: {"mL/min/{1.73_m2}": 1.0},
    Quantity.GLUCOSE: {"mmol/L": 1.0, "mg/dL": 1 / 18.016},
    Quantity.RATE: {"/min": 1.0},
    Quantity.SATURATION: {"%": 1.0},
    Quantity.TEMPERATURE: {"Cel": 1.0},
    Quantity.MASS: {"kg": 1.0, "g": 0.001, "[lb_av]": 0.45359237},
}
FAHRENHEIT = ("[degF]",)  # Cel = (degF - 32) * 5 / 9
IFCC_TO_NGSP = (0.09148, 2.152)  # NGSP % = slope * IFCC mmol/mol + intercept
IFCC_UNITS = ("mmol/mol",)
# Which quantity each input field is measured as (fields not listed are counts, booleans or categories).
FIELD_QUANTITIES: dict[str, Quantity] = {
    "total_cholesterol": Quantity.CHOLESTEROL, "hdl_cholesterol": Quantity.CHOLESTEROL,
    "ldl_cholesterol": Quantity.CHOLESTEROL, "creatinine": Quantity.CREATININE, "systolic_bp": Quantity.PRESSURE,
    "diastolic_bp": Quantity.PRESSURE, "waist_cm": Quantity.LENGTH, "bmi": Quantity.BMI, "uacr": Quantity.ACR,
    "hba1c": Quantity.HBA1C, "egfr": Quantity.EGFR, "fasting_glucose": Quantity.GLUCOSE,
    "ogtt_2h_glucose": Quantity.GLUCOSE, "respiratory_rate": Quantity.RATE, "heart_rate": Quantity.RATE,
    "spo2": Quantity.SATURATION, "temperature": Quantity.TEMPERATURE, "glucose": Quantity.GLUCOSE,
    "weight_kg": Quantity.MASS,
}  # fmt: skip

# Spellings seen in EHR feeds that mean the same UCUM unit.
_ALIASES = {"mg/dl": "mg/dL", "mmol/l": "mmol/L", "µmol/L": "umol/L", "μmol/L": "umol/L", "umol/l": "umol/L",
            "mmHg": "mm[Hg]", "mm Hg": "mm[Hg]", "kg/m^2": "kg/m2", "in": "[in_i]",
            "mL/min/1.73m2": "mL/min/{1.73_m2}", "mL/min/{1.73m2}": "mL/min/{1.73_m2}", "mmol/mol": "mmol/mol",
            "mmol/mol Hb": "mmol/mol", "mmol/mol{Hb}": "mmol/mol", "mg/mmol{creat}": "mg/mmol", "mg/g{creat}": "mg/g",
            "mL/min/1.73 m2": "mL/min/{1.73_m2}", "mL/min/1.73m²": "mL/min/{1.73_m2}", "{beats}/min": "/min",
            "{breaths}/min": "/min", "beats/min": "/min", "breaths/min": "/min", "bpm": "/min", "min-1": "/min",
            "°C": "Cel", "degC": "Cel", "C": "Cel", "°F": "[degF]", "degF": "[degF]", "lb": "[lb_av]",
            "lbs": "[lb_av]"}  # fmt: skip


def to_canonical(value: float, unit: str, quantity: Quantity) -> float:
    """``value`` in ``unit`` expressed in the quantity's canonical unit.

    Raises:
        InvalidInputError: A unit this quantity cannot be converted from (the allowed units are listed).
    """
    code = unit_code(unit)
    factors = _FACTORS[quantity]
    if quantity is Quantity.HBA1C and code in IFCC_UNITS:
        slope, intercept = IFCC_TO_NGSP
        return slope * value + intercept
    if quantity is Quantity.TEMPERATURE and code in FAHRENHEIT:
        return (value - 32) * 5 / 9
    if code not in factors:
        supported = [*factors, *(IFCC_UNITS if quantity is Quantity.HBA1C else ()),
                     *(FAHRENHEIT if quantity is Quantity.TEMPERATURE else ())]
        raise InvalidInputError(
            f"cannot convert {quantity.value} from unit {unit!r}; supported: {', '.join(supported)}",
            code="unsupported_unit",
        )
    return value * factors[code]


def unit_code(unit: str) -> str:
    """The UCUM code a unit as written in a feed means (``mmol/l`` -> ``mmol/L``, ``µmol/L`` -> ``umol/L``)."""
    return _ALIASES.get(unit.strip(), unit.strip())


def from_canonical(value: float, unit: str, quantity: Quantity) -> float | None:
    """``value`` in the quantity's canonical unit expressed in ``unit`` (the inverse of :func:`to_canonical`).

    ``None`` when ``unit`` is not one this quantity converts.
    """
    code = unit_code(unit)
    if quantity is Quantity.HBA1C and code in IFCC_UNITS:
        slope, intercept = IFCC_TO_NGSP
        return (value - intercept) / slope
    if quantity is Quantity.TEMPERATURE and code in FAHRENHEIT:
        return value * 9 / 5 + 32
    factor = _FACTORS[quantity].get(code)
    return None if factor is None else value / factor


def unit_hint(name: str, value: float, plausible: tuple[float, float] | None) -> str:
    """The hint for a value impossible in ``name``'s canonical unit but possible in another; else ``""``.

    The hint names the unit the value looks like and how to state it.
    """
    quantity = FIELD_QUANTITIES.get(name)
    if quantity is None or plausible is None:
        return ""
    low, high = plausible
    candidates = [u for u in (*_FACTORS[quantity], *(IFCC_UNITS if quantity is Quantity.HBA1C else ()))
                  if u != CANONICAL[quantity]]
    for unit in candidates:
        converted = to_canonical(value, unit, quantity)
        if low <= converted <= high:
            canonical = display_unit(CANONICAL[quantity])
            return (f"; {value:g} looks like {display_unit(unit)} ({converted:.4g} {canonical}):"
                    f' send {{"value": {value:g}, "unit": "{unit}"}} to state the unit')
    return ""
