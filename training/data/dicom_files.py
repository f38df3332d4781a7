"""Write generated images as real DICOM files (CR/DX radiographs, CT series) that the ingest path reads back."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    ComputedRadiographyImageStorage,
    CTImageStorage,
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
    ds.PatientOrientation = ["L", "F"]  # a PA film: rows run to the patient's left, columns to the feet
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


def write_ct_series(
    folder: Path,
    hounsfield: np.ndarray,
    *,
    spacing_mm: tuple[float, float, float] = (2.5, 0.8, 0.8),
    origin_mm: tuple[float, float, float] = (-200.0, -200.0, -100.0),
    patient_id: str = "SYNTH-CT-0",
    shuffle_seed: int | None = None,
) -> list[Path]:
    """Write a volume (float HU [slices, rows, columns]) as an axial CT series, one file per slice.

    Stored values are HU + 1024 (RescaleIntercept -1024). ``shuffle_seed`` shuffles InstanceNumber against position,
    as some scanners and exports do, so readers that sort by InstanceNumber get the wrong order.
    """
    slices, rows, columns = hounsfield.shape
    study_uid, series_uid, frame_uid = generate_uid(), generate_uid(), generate_uid()
    numbers = np.arange(1, slices + 1)
    if shuffle_seed is not None:
        np.random.default_rng(shuffle_seed).shuffle(numbers)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(slices):
        stored = np.clip(np.round(hounsfield[k] + 1024), 0, 4095).astype(np.uint16)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.Modality, ds.BodyPartExamined = "CT", "ABDOMEN"
        ds.PatientID, ds.PatientName = patient_id, "SYNTHETIC^VOLUME"
        ds.SeriesNumber, ds.InstanceNumber = 1, int(numbers[k])
        ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [origin_mm[2], origin_mm[1], origin_mm[0] + k * spacing_mm[0]]
        ds.PixelSpacing = [spacing_mm[1], spacing_mm[2]]
        ds.SliceThickness = spacing_mm[0]
        ds.Rows, ds.Columns = rows, columns
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = -1024, 1, "HU"
        ds.WindowCenter, ds.WindowWidth = 40, 400
        ds.PixelData = stored.tobytes()
        path = folder / f"slice-{k:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
