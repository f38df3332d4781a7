"""Writers of a read's standard outputs (JSON, FHIR, DICOM SR/SEG/SC, PNG), placed where the output layout says.

* :mod:`~cds.interop.outputs.radiograph`: a radiograph pre-read.
* :mod:`~cds.interop.outputs.segmentation`: a CT segmentation.
* :mod:`~cds.interop.outputs.slide`: a slide read.

Each takes a typed answer from :mod:`cds.results` and writes the files :class:`cds.results.layout.OutputLayout`
names; none calls a model.
"""
