"""Imaging: DICOM read defensively, checked against a model's imaging contract, pre-read for findings or structures.

* :mod:`~cds.pipelines.imaging.dicom_reader`: size limits before decoding, one reason code per refusal.
* :mod:`~cds.pipelines.imaging.dicom_series`: series grouping and CT/MR volumes in slice order with their affine.
* :mod:`~cds.pipelines.imaging.dicom_contract`: a model's imaging contract checked from headers alone.
* :mod:`~cds.pipelines.imaging.radiograph`, :mod:`~cds.pipelines.imaging.plausibility`,
  :mod:`~cds.pipelines.imaging.saliency`, :mod:`~cds.pipelines.imaging.radiograph_preread`: display pixels, the
  pixel-level gate, occlusion heatmaps and the chest radiograph pre-read.
* :mod:`~cds.pipelines.imaging.ct_volume`, :mod:`~cds.pipelines.imaging.ct_segmentation`: the model grid and the
  CT segmentation with sliding windows.
"""
