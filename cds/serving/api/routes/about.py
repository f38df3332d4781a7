"""``/about/risk/{method}``: a public page per risk method, for the link on a CDS Hooks card.

A clinician follows a card's source link from inside the EHR, without a cds token, so the page is public. It
describes the method only (source, version, population, outcome, inputs with units and validated ranges); nothing
about any patient is on it.
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from cds.errors import NotFoundError
from cds.models.risk import available_equations
from cds.models.risk.base import display_unit
from cds.pipelines.risk.panel import SECONDARY_PREVENTION

router = APIRouter(prefix="/about", tags=["about"])
SECONDARY = (
    "<h1>Secondary prevention: established ASCVD</h1><p>When a patient's record shows established atherosclerotic "
    "cardiovascular disease (myocardial infarction, angina or chronic ischaemic heart disease, ischaemic stroke or "
    "TIA, peripheral arterial disease, or coronary revascularisation; coded in ICD-10 of any edition or SNOMED CT), "
    "the patient is at very high risk and is managed for secondary prevention. The primary-prevention equations "
    "(PREVENT, Pooled Cohort Equations, Framingham) were derived in people without known cardiovascular disease and "
    "are not computed for such a patient.</p>"
)
PAGE = ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
        "content=\"width=device-width, initial-scale=1\"><title>{title}</title><style>body{{font-family:system-ui,"
        "sans-serif;max-width:50rem;margin:1rem auto;padding:0 1rem;line-height:1.45}}table{{border-collapse:"
        "collapse}}td,th{{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}}</style></head><body>{body}"
        "<p><small>cds: decision support, not for diagnostic use.</small></p></body></html>")  # fmt: skip


@router.get("/risk/{method}", response_class=HTMLResponse)
def about_method(method: str) -> HTMLResponse:
    """What a risk method computes, from which source, for whom, and from which inputs (public; no patient data)."""
    if method == SECONDARY_PREVENTION:
        return HTMLResponse(PAGE.format(title="Secondary prevention", body=SECONDARY))
    equation = available_equations().get(method)
    if equation is None:
        raise NotFoundError(f"no risk method {method[:64]!r}", code="method_not_found")
    rows = "".join(
        f"<tr><td>{escape(f.description)}</td><td>{escape(display_unit(f.unit))}</td>"
        f"<td>{'' if f.valid is None else f'{f.valid[0]:g}–{f.valid[1]:g}'}"
        f"{escape(', '.join(f.categories))}</td><td>{'yes' if f.required else 'no'}</td></tr>"
        for f in equation.fields
    )
    body = (f"<h1>{escape(equation.title)}</h1><p>Version {escape(equation.version)}. Source: "
            f"{escape(equation.source)}.</p><p>Predicts: {escape(equation.outcome)}.</p><p>Population: "
            f"{escape(equation.population)}."
            + (" Not for patients with established cardiovascular disease." if equation.primary_prevention else "")
            + "</p><table><tr><th>Input</th><th>Unit</th><th>Validated range or values</th><th>Required</th></tr>"
            f"{rows}</table>")  # fmt: skip
    return HTMLResponse(PAGE.format(title=escape(equation.title), body=body))
