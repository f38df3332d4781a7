"""Fuzz the DICOM reader and the pixel decoders as the service runs them.

Each input goes the way an uploaded instance goes: ``read_instance`` parses it in this process, STOW-RS takes its
UIDs and its DICOM JSON metadata for the index, and a pre-read decodes, windows and scales its pixels in the
isolated decoder pool (timeout 3 s). A finding is any exception other than an
:class:`~cds.errors.InvalidInputError` with one of the reader's documented reason codes, or a hang (libFuzzer's
``-timeout``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

INSTRUMENT = ("cds", "pydicom")
REASONS = frozenset({
    "empty_file", "not_dicom", "corrupt_deflate", "inflated_too_large", "invalid_header", "no_pixel_data",
    "image_too_large", "pixel_data_short", "unsupported_transfer_syntax", "pixel_data_corrupt", "not_greyscale",
    "decoder_crashed", "decoder_timeout", "decoder_memory", "missing_uid", "truncated_file",
})  # fmt: skip
MAX_SEED_BYTES = 64 * 1024
MAX_PIXEL_BYTES = 64 << 20  # a fuzzer's input is small; its declared image need not be


def prepare() -> None:
    """Import the code under test (instrumented, when atheris calls this); decode isolated, time limit 3 s."""
    import pydicom
    import pydicom.pixels  # noqa: F401

    import cds.pipelines.imaging.dicom_reader
    import cds.pipelines.imaging.pixel_values
    import cds.store.dicom_index  # noqa: F401
    from cds.pipelines import isolation
    from cds.privacy import quiet_library_warnings

    quiet_library_warnings()
    isolation.configure(isolation.IsolationLimits(timeout_s=3.0, memory_bytes=1 << 30, workers=1))


def one_input(data: bytes) -> None:
    """Take ``data`` as STOW-RS and a pre-read take an uploaded instance."""
    from cds.errors import InvalidInputError
    from cds.pipelines.imaging.dicom_reader import read_instance
    from cds.pipelines.imaging.pixel_values import DISPLAY
    from cds.store.dicom_index import dicom_json, instance_uids

    try:
        instance = read_instance(data, name="fuzz.dcm")
        instance_uids(instance.dataset)
        dicom_json(instance.dataset)
        instance.pixels(MAX_PIXEL_BYTES, DISPLAY)
    except InvalidInputError as exc:
        if exc.code not in REASONS:
            raise


def seeds() -> Iterator[tuple[str, bytes]]:
    """The test files pydicom bundles, up to 64 KiB (every transfer syntax it ships), never downloaded."""
    import pydicom.data

    folder = Path(pydicom.data.__file__).parent / "test_files"
    for path in sorted(folder.rglob("*")):
        if path.is_file() and 0 < path.stat().st_size <= MAX_SEED_BYTES:
            yield path.name, path.read_bytes()


if __name__ == "__main__":
    from fuzz.harness import main

    main("fuzz.dicom_reader", INSTRUMENT)
