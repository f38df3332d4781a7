"""The attribute actions of DICOM PS3.15 Annex E, Table E.1-1 (Basic Application Level Confidentiality Profile).

The table is not typed in here by hand: it comes from ``dicom-anonymizer`` (KitwareMedical), which ships the basic
profile column of Table E.1-1 generated from the standard's own XML, one Python module per edition. This module
loads one edition (:data:`TABLE_EDITION`), turns it into a lookup from tag to action, and adds the few attribute
sets of the profile's options that cds supports (the option columns are not in that package).

Actions, as PS3.15 Table E.1-1a writes them: ``D`` replace with a dummy value, ``Z`` zero-length or dummy, ``X``
remove, ``U`` replace a UID consistently, and combinations (``X/Z``, ``X/D``, ``Z/D``, ``X/Z/D``, ``X/Z/U*``) that
the writer resolves per attribute.
"""

from __future__ import annotations

import importlib
from types import MappingProxyType
from typing import Final

from pydicom.tag import BaseTag

TABLE_EDITION: Final = "2026c"
"""The edition of PS3.15 whose Table E.1-1 is applied (a module name of dicom-anonymizer)."""

_CATEGORIES: Final = {
    "D_TAGS": "D",
    "Z_TAGS": "Z",
    "X_TAGS": "X",
    "U_TAGS": "U",
    "Z_D_TAGS": "Z/D",
    "X_Z_TAGS": "X/Z",
    "X_D_TAGS": "X/D",
    "X_Z_D_TAGS": "X/Z/D",
    "X_Z_U_STAR_TAGS": "X/Z/U*",
}

PATIENT_CHARACTERISTICS: Final = frozenset(
    {
        0x00100040,  # Patient's Sex
        0x00101010,  # Patient's Age
        0x00101020,  # Patient's Size
        0x00101030,  # Patient's Weight
    }
)
"""Kept under the Retain Patient Characteristics Option (the subset of its column that cds retains)."""

PATIENT_BIRTH_DATE: Final = 0x00100030
"""Not retained by the longitudinal options: the basic profile's action (Z) always applies."""


def _load() -> tuple[MappingProxyType[int, str], tuple[tuple[int, int, str], ...]]:
    module = importlib.import_module(f"dicomanonymizer.dicom_anonymization_databases.dicomfields_{TABLE_EDITION}")
    exact: dict[int, str] = {}
    masked: list[tuple[int, int, str]] = []
    for name, action in _CATEGORIES.items():
        for entry in getattr(module, name):
            if len(entry) == 2:
                exact[(entry[0] << 16) | entry[1]] = action
            else:  # (group, element, group mask, element mask): a repeating group such as 50xx or 60xx
                group, element, group_mask, element_mask = entry
                masked.append(((group << 16) | element, (group_mask << 16) | element_mask, action))
    return MappingProxyType(exact), tuple(masked)


_EXACT, _MASKED = _load()


def action_for(tag: BaseTag | int) -> str | None:
    """The basic profile's action for ``tag`` (``"X"``, ``"Z/D"``, ...), or None when the table does not list it.

    Args:
        tag: A DICOM tag (public; private tags are handled apart, they are all removed).

    Returns:
        The action string of Table E.1-1, or None for an attribute the profile keeps.
    """
    value = int(tag)
    action = _EXACT.get(value)
    if action is not None:
        return action
    for pattern, mask, masked_action in _MASKED:
        if value & mask == pattern:
            return masked_action
    return None


def listed_tags() -> frozenset[int]:
    """Every exact tag that Table E.1-1 lists (repeating groups apart), for tests and reports."""
    return frozenset(_EXACT)
