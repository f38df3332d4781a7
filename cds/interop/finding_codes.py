"""Standard codes for AI findings, so that a PACS or EHR can read them without knowing this engine.

Each chest finding label maps to its SNOMED CT concept where one could be checked against a published source: the
DICOM standard's code tables as pydicom ships them (:data:`pydicom.sr.codedict.codes`), or, for Pneumonia
(233604007), the OHDSI vocabulary listings. Labels without a checked concept (Atelectasis, Consolidation,
Infiltration, Emphysema, Pleural_Thickening, Hernia, Fracture, Lung Opacity, Enlarged Cardiomediastinum) keep
the local scheme ``99CDS``, which every SR declares in its Coding Scheme Identification; a code is never guessed.
"""

from __future__ import annotations

from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from cds.interop.dicom_seg import local_code

SNOMED_FINDINGS: dict[str, Code] = {
    "Pneumothorax": codes.SCT.Pneumothorax,  # 36118008
    "Edema": codes.SCT.PulmonaryEdema,  # 19242006
    "Fibrosis": codes.SCT.Fibrosis,  # 112674009
    "Effusion": codes.SCT.PleuralEffusion,  # 60046008
    "Pneumonia": Code("233604007", "SCT", "Pneumonia"),
    "Cardiomegaly": codes.SCT.Cardiomegaly,  # 287272002
    "Nodule": codes.SCT.Nodule,  # 27925004
    "Mass": codes.SCT.Mass,  # 4147007
    "Lung Lesion": codes.SCT.Lesion,  # 52988006
}


def finding_code(label: str) -> Code:
    """The SNOMED CT code of a finding label when it has a checked one, else its local ``99CDS`` code."""
    return SNOMED_FINDINGS.get(label) or local_code(label)
