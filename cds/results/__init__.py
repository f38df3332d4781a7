"""The corridors between cds's rooms: typed results, the images they refer to, job payloads and outcomes, outputs.

Everything that crosses from one package to another (a pipeline's answer on its way to a writer, a job's payload
on its way through the queue, a job's outcome on its way to a route, the files a read leaves behind) is one of
these types, validated where it is read:

* :mod:`~cds.results.identity`: the hashes that identify an input (tensors, files).
* :mod:`~cds.results.classification`, :mod:`~cds.results.segmentation`, :mod:`~cds.results.slide`,
  :mod:`~cds.results.risk`: results, each carrying the identity of what produced it and of its input.
* :mod:`~cds.results.imaging`: the DICOM images and volumes a result refers to, and a pre-read's whole answer
  (result, display image, heatmaps, label volume) on its way to the writers in :mod:`cds.interop`.
* :mod:`~cds.results.jobs`: job kinds, the payload each kind takes and the outcome it leaves.
* :mod:`~cds.results.layout`: :class:`~cds.results.layout.OutputLayout`, the one place that names every output file
  and its media type, for writers and readers alike.

Imports go downward only: this package imports :mod:`cds.models` and :mod:`cds.errors`, nothing above them.
"""
