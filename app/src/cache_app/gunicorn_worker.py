"""gunicorn's threaded worker, answering the requests it refuses itself in JSON, as the app does.

gunicorn answers a request it cannot parse (a bad request line, a line or headers over its limits,
a bad chunked body...) with an HTML page that quotes the request back. Here gunicorn still decides
the status and logs as it always does; only the page it writes is replaced.
"""

from __future__ import annotations

import json
import socket
from typing import Any

from gunicorn import util
from gunicorn.http.errors import UnsupportedTransferCoding
from gunicorn.workers.gthread import ThreadWorker


class _StatusLine:
    """Stands in for the client's socket while gunicorn writes its error page; keeps the status."""

    def __init__(self) -> None:
        self.status = 500
        self.reason = "Internal Server Error"

    def gettimeout(self) -> float:
        return 0.0  # already non-blocking: gunicorn writes at once, changing nothing

    def sendall(self, data: bytes) -> None:
        # b"HTTP/1.1 414 URI Too Long\r\n..."
        _, status, reason = data.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
        self.status, self.reason = int(status), reason


def json_error(status: int, reason: str) -> bytes:
    """A complete HTTP/1.1 error answer, with the body the app gives for its own errors."""
    body = json.dumps({"error": reason, "status": status}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


class JsonErrorThreadWorker(ThreadWorker):
    def handle_error(self, req: Any, client: socket.socket, addr: Any, exc: BaseException) -> None:
        page = _StatusLine()
        super().handle_error(req, page, addr, exc)
        status, reason = page.status, page.reason
        if isinstance(exc, UnsupportedTransferCoding):
            # gunicorn's one 5xx for what a client sent (RFC 9112 allows 501); nothing a client
            # sends is a fault of the server here, so it is a 400 like any other bad framing.
            status, reason = 400, "Bad Request"
        try:
            util.write_nonblock(client, json_error(status, reason))
        except Exception:
            self.log.debug("Failed to send error message.")
