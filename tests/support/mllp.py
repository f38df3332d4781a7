"""An MLLP listener playing the hospital information system: it keeps every HL7 message and answers an ACK."""

from __future__ import annotations

import socketserver
import threading
from typing import Any

import hl7

START, END = b"\x0b", b"\x1c\r"


class MllpListener:
    """Listens on 127.0.0.1:``port``; ``ack_code`` (AA, AE, AR) is what it answers."""

    def __init__(self, port: int, ack_code: str = "AA") -> None:
        self.port, self.ack_code, self.messages = port, ack_code, []
        self._server: socketserver.ThreadingTCPServer | None = None
        listener = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                buffer = b""
                while chunk := self.request.recv(65536):
                    buffer += chunk
                    while START in buffer and END in buffer:
                        frame, buffer = buffer.split(END, 1)
                        text = frame.split(START, 1)[1].decode("utf-8")
                        listener.messages.append(text)
                        ack = hl7.parse(text).create_ack(listener.ack_code, application="HIS")
                        self.request.sendall(START + str(ack).encode("utf-8") + END)

        self._handler: Any = Handler

    def start(self) -> MllpListener:
        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), self._handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
