"""Phrases: a sentence cds writes, as a message code and its values, for a reader to see in their own language.

A result keeps its English text (an ECG flag's evidence, a slide's warning) for files, FHIR and logs; beside it the
same sentence as a :class:`Phrase`. The workspace looks ``phrase.<code>`` up in its catalogues and fills in the
values; a code it does not know is shown as the English text, so an older client or a new sentence loses nothing.
Values are already at the precision the English shows (a share as a whole percentage, a ratio with two decimals), so
the client only formats them; a tuple is a list (leads, a lead's problems) that the client joins its own way.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

PhraseValue = str | int | float | tuple[str, ...]


class Phrase(BaseModel):
    """One sentence as ``code`` (``ecg.st_elevation``, ``slide.assumed_resolution``, ...) and its ``values``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
    values: dict[str, PhraseValue] = Field(default_factory=dict)


def phrase(code: str, **values: PhraseValue) -> Phrase:
    """The phrase ``code`` with ``values`` (``phrase("ecg.derived_leads", leads=("III", "aVR"))``)."""
    return Phrase(code=code, values=values)
