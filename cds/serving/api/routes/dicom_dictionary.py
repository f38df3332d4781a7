"""``/v1/dicom-dictionary``: the DICOM data dictionary's keyword, name and VR of tags, for the viewer's tag view.

DICOM JSON (what WADO-RS metadata answers) names attributes by tag only; the viewer asks here for the keywords of
the tags an instance holds. Repeating groups (overlays, curves) are resolved as the standard defines them; private
and unknown tags are left out. The answer holds nothing about any patient, so it is neither audited nor scoped, and
it may be cached.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel

from cds.serving.api.auth import Principal, Role
from cds.serving.api.deps import require

router = APIRouter(prefix="/v1/dicom-dictionary", tags=["imaging"])
Radiology = Annotated[Principal, Depends(require(Role.RADIOLOGIST, Role.ADMIN))]
MAX_TAGS = 1000  # 9 KB of query: well inside what HTTP servers take in a request line


class DictionaryEntryPublic(BaseModel):
    """One attribute of the data dictionary (PS3.6)."""

    keyword: str
    name: str
    vr: str


@router.get("")
def dictionary(
    principal: Radiology, response: Response,
    tags: Annotated[str, Query(pattern=rf"^[0-9A-Fa-f]{{8}}(,[0-9A-Fa-f]{{8}}){{0,{MAX_TAGS - 1}}}$",
                               description=f"tags as 8 hex digits, comma-separated (at most {MAX_TAGS})")],
) -> dict[str, DictionaryEntryPublic]:  # fmt: skip
    """The dictionary entries of ``tags`` (upper-case hex), private and unknown ones left out."""
    from pydicom.datadict import get_entry

    found: dict[str, DictionaryEntryPublic] = {}
    for tag in dict.fromkeys(t.upper() for t in tags.split(",")):
        number = int(tag, 16)
        if (number >> 16) % 2:  # odd groups are private
            continue
        try:
            vr, _vm, name, _retired, keyword = get_entry(number)
        except KeyError:
            continue
        found[tag] = DictionaryEntryPublic(keyword=keyword, name=name, vr=vr)
    response.headers["Cache-Control"] = "private, max-age=86400"
    return found
