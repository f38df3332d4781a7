"""Write a STOW-RS request body (multipart/related, boundary ``cds-stow-7f3a9c``) holding a generated chest
radiograph and, with ``--ct``, a generated abdominal CT series: the sample study of the README's curl sequence.

    .venv/bin/python -m training.data.stow_sample study.multipart [--ct]

The images are synthetic (training/data generators); the patient is SYNTH-0 / SYNTH-CT-0.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from training.data.chest_xray import render
from training.data.ct_volumes import generate_case
from training.data.dicom_files import write_radiograph

BOUNDARY = "cds-stow-7f3a9c"


def multipart_body(parts: list[bytes], boundary: str = BOUNDARY, part_type: str = "application/dicom") -> bytes:
    """``parts`` as the body of a ``multipart/related; type="application/dicom"`` request."""
    head = f"--{boundary}\r\nContent-Type: {part_type}\r\n\r\n".encode()
    return b"".join(head + part + b"\r\n" for part in parts) + f"--{boundary}--\r\n".encode()


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--ct", action="store_true", help="add a generated CT series (about 60 slices)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        files = [write_radiograph(Path(folder) / "cr.dcm", render(1024, 7, 0)[0])]
        if args.ct:
            files += generate_case(7, 0).write_dicom(Path(folder) / "ct")
        args.output.write_bytes(multipart_body([f.read_bytes() for f in files]))
    sys.stdout.write(f"wrote {args.output}: {len(files)} instances; send with "
                     f'Content-Type: multipart/related; type="application/dicom"; boundary={BOUNDARY}\n')


if __name__ == "__main__":
    main()
