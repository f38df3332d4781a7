"""The DICOM node beside the HTTP service: C-ECHO and C-STORE SCP (pynetdicom), on when ``CDS_DICOM_PORT`` is set.

Associations are accepted only from the calling AE titles in ``CDS_DICOM_CALLING_AES`` (``["*"]``: any) and only
when they call this node's AE title (``CDS_DICOM_AE_TITLE``); at most ``CDS_DICOM_MAX_ASSOCIATIONS`` at once, with
network, ACSE and DIMSE timeouts. Every storage SOP class is accepted in the transfer syntaxes the DICOM reader
decodes. Each instance is checked on arrival and held per study by :class:`cds.services.dicom_receiver.
StudyReceiver`; a background thread settles studies (stores them and queues one read) once nothing of them has
arrived for ``CDS_DICOM_SETTLE_S`` seconds.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from cds.services.dicom_receiver import StudyReceiver
from cds.services.engine import Engine

log = logging.getLogger(__name__)
TRANSFER_SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian,
                     ExplicitVRBigEndian, JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLosslessSV1, JPEGLSLossless,
                     JPEGLSNearLossless, JPEG2000Lossless, JPEG2000, RLELossless]  # fmt: skip
SUCCESS, OUT_OF_RESOURCES, CANNOT_UNDERSTAND, PROCESSING_FAILURE = 0x0000, 0xA700, 0xC000, 0x0110


class DicomNode:
    """The C-STORE/C-ECHO SCP and the thread that settles received studies."""

    def __init__(self, engine: Engine) -> None:
        settings = engine.settings
        self.settings = settings
        logging.getLogger("pynetdicom").setLevel(logging.WARNING)  # its INFO lines name SOP Instance UIDs
        self.receiver = StudyReceiver(engine, settle_s=settings.dicom_settle_s)
        self.ae = AE(ae_title=settings.dicom_ae_title)
        self.ae.require_called_aet = True
        if "*" not in settings.dicom_calling_aes:  # the settings require a list when the port is set
            self.ae.require_calling_aet = list(settings.dicom_calling_aes)
        self.ae.maximum_associations = settings.dicom_max_associations
        self.ae.network_timeout = self.ae.acse_timeout = 30
        self.ae.dimse_timeout = 60
        for context in AllStoragePresentationContexts:
            if context.abstract_syntax is not None:
                self.ae.add_supported_context(context.abstract_syntax, TRANSFER_SYNTAXES)
        self.ae.add_supported_context(Verification)
        self._server: Any = None
        self._stop = threading.Event()
        self._settler = threading.Thread(target=self._settle_loop, name="dicom-settle", daemon=True)

    def start(self) -> None:
        """Listen on ``CDS_DICOM_PORT`` and start settling (studies left from before a restart included)."""
        self._server = self.ae.start_server((self.settings.host, self.settings.dicom_port or 0), block=False,
                                            evt_handlers=[(evt.EVT_C_STORE, self._on_store)])  # fmt: skip
        self._settler.start()

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self._server.server_address[1])

    def stop(self) -> None:
        """Stop listening and settling (studies still waiting stay on disk for the next start)."""
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
        if self._settler.is_alive():
            self._settler.join(timeout=30)

    def _on_store(self, event: Any) -> Dataset | int:
        """One C-STORE: the instance is kept (0x0000) or refused with a status and the reason as ErrorComment."""
        calling = str(event.assoc.requestor.ae_title).strip()
        try:
            outcome = self.receiver.receive(bytes(event.encoded_dataset()), calling)
        except Exception as exc:  # noqa: BLE001 - a C-STORE is answered, never left hanging
            log.warning("C-STORE from %s failed: %s", calling, type(exc).__name__)
            return PROCESSING_FAILURE
        if outcome.reason is None:
            return SUCCESS
        status = Dataset()
        status.Status = OUT_OF_RESOURCES if outcome.too_large else CANNOT_UNDERSTAND
        status.ErrorComment = outcome.reason[:64]
        return status

    def _settle_loop(self) -> None:
        interval = max(0.1, min(1.0, self.settings.dicom_settle_s / 2))
        while not self._stop.wait(interval):
            try:
                self.receiver.settle()
            except Exception as exc:  # noqa: BLE001 - the loop must outlive one bad round
                log.warning("settling received studies failed: %s", type(exc).__name__)
