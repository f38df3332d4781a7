"""Write generated images as real DICOM files (CR/DX radiographs) that pydicom and the ingest path read back."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    ComputedRadiographyImageStorage,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    generate_uid,
)

STORAGE = {"CR": ComputedRadiographyImageStorage, "DX": DigitalXRayImageStorageForPresentation}
BITS = 12


def write_radiograph(
    path: Path,
    pixels: np.ndarray,
    *,
    modality: str = "CR",
    patient_id: str = "SYNTH-0",
    sex: str = "O",
    study_uid: str | None = None,
    series_uid: str | None = None,
    pixel_spacing_mm: float = 0.7,
    monochrome1: bool = False,
) -> Path:
    """Store ``pixels`` (float [H, W] in [0, 1], bright = dense) as a 12-bit frontal chest radiograph.

    ``monochrome1`` stores inverted values with PhotometricInterpretation MONOCHROME1, as some CR vendors do.
    Patient identity is synthetic (``patient_id``; name ``SYNTHETIC^IMAGE``).
    """
    if modality not in STORAGE:
        raise ValueError(f"modality must be one of {sorted(STORAGE)}, got {modality!r}")
    stored = np.round(np.clip(pixels, 0.0, 1.0) * (2**BITS - 1)).astype(np.uint16)
    if monochrome1:
        stored = (2**BITS - 1) - stored
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = STORAGE[modality]
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    now = dt.datetime.now(dt.UTC)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.Modality = modality
    ds.PatientID, ds.PatientName, ds.PatientSex = patient_id, "SYNTHETIC^IMAGE", sex
    ds.StudyDate = ds.SeriesDate = now.strftime("%Y%m%d")
    ds.StudyTime = now.strftime("%H%M%S")
    ds.BodyPartExamined, ds.ViewPosition = "CHEST", "PA"
    if modality == "DX":
        ds.PresentationIntentType = "FOR PRESENTATION"
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.SeriesNumber, ds.InstanceNumber = 1, 1
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME1" if monochrome1 else "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, BITS, BITS - 1, 0
    ds.PixelSpacing = [pixel_spacing_mm, pixel_spacing_mm]
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "US"
    ds.WindowCenter, ds.WindowWidth = 2**(BITS - 1), 2**BITS
    ds.PixelData = stored.tobytes()
    ds.BurnedInAnnotation = "NO"
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path
