"""Debian's Orthanc with its DICOMweb plugin as the hospital PACS in tests, on loopback ports of its own.

Nothing is downloaded: ``make pytest`` installs the Debian packages ``orthanc`` and ``orthanc-dicomweb`` (no service
is started by them); a test that finds no ``Orthanc`` binary skips with the install line.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from cds.serving.triton.launcher import free_port

DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


@dataclass(frozen=True)
class OrthancServer:
    """A running Orthanc: its REST root (DICOMweb under ``/dicom-web``), DICOM port and AE title."""

    url: str
    dicom_port: int
    ae_title: str = "ORTHANC"


@contextmanager
def orthanc(folder: Path, *, modalities: dict[str, tuple[str, str, int]]) -> Iterator[OrthancServer]:
    """Orthanc with ``modalities`` (name: AE title, host, port) it may send to; stopped on exit."""
    binary = shutil.which("Orthanc")
    if binary is None or not DICOMWEB_PLUGIN.is_file():
        pytest.skip("the PACS tests need Debian's Orthanc: apt-get install -y orthanc orthanc-dicomweb")
    folder.mkdir(parents=True, exist_ok=True)
    http, dicom = free_port(), free_port()
    config = {"Name": "cds-test-pacs", "StorageDirectory": str(folder / "storage"),
              "IndexDirectory": str(folder / "index"), "HttpPort": http, "DicomPort": dicom, "DicomAet": "ORTHANC",
              "RemoteAccessAllowed": False, "AuthenticationEnabled": False, "HttpServerEnabled": True,
              "Plugins": [str(DICOMWEB_PLUGIN)], "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
              "DicomModalities": {name: list(address) for name, address in modalities.items()},
              "DicomScuTimeout": 10, "StableAge": 1}  # fmt: skip
    (folder / "orthanc.json").write_text(json.dumps(config), encoding="utf-8")
    with (folder / "orthanc.log").open("wb") as log:
        process = subprocess.Popen([binary, str(folder / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{http}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{url}/system", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"Orthanc did not start: {(folder / 'orthanc.log').read_text()[-2000:]}")
                time.sleep(0.2)
            yield OrthancServer(url, dicom)
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
