"""The fake driver's test-control surface: an HTTP endpoint on a private Unix socket.

``GET /state`` returns the driver, node, active fault, gRPC call counts by
full method name, prepared claims and how often the driver has started.
``PUT /fault`` with ``{"fault": NAME, "delay": SECONDS}`` changes the fault.
The socket has mode 0600 inside the driver's 0700 state directory, so only
the run's owner can reach it.
"""

from __future__ import annotations

import http.client
import http.server
import json
import logging
import os
import socket
import socketserver
import threading
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger("draconf.control")

SOCKET_NAME = "control.sock"


class ControlError(Exception):
    """The control surface could not be reached or refused a request."""


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class ControlServer:
    def __init__(self, path: Path, state: Callable[[], dict[str, Any]],
                 set_fault: Callable[[str, float | None], None]):
        self.path = path
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.unlink(missing_ok=True)

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                log.debug("control: " + format, *args)

            def _reply(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body, indent=1).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                if self.path != "/state":
                    return self._reply(404, {"error": f"no such path {self.path}; use /state"})
                self._reply(200, state())

            def do_PUT(self) -> None:  # noqa: N802
                # Read the body before any reply, so the client never writes into a
                # closed connection.
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path != "/fault":
                    return self._reply(404, {"error": f"no such path {self.path}; use /fault"})
                try:
                    body = json.loads(raw)
                    set_fault(body["fault"], body.get("delay"))
                except (ValueError, KeyError, TypeError) as error:
                    return self._reply(400, {"error": str(error)})
                self._reply(200, state())

        self.server = _UnixHTTPServer(str(path), Handler)
        os.chmod(path, 0o600)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.path.unlink(missing_ok=True)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


class ControlClient:
    """Reads and steers one fake driver instance."""

    def __init__(self, path: Path, timeout: float = 10.0):
        self.path = path
        self.timeout = timeout

    def _request(self, method: str, url: str, body: dict[str, Any] | None = None
                 ) -> dict[str, Any]:
        connection = _UnixConnection(self.path, self.timeout)
        try:
            data = json.dumps(body).encode() if body is not None else None
            headers = {"Content-Type": "application/json"} if data else {}
            connection.request(method, url, body=data, headers=headers)
            response = connection.getresponse()
            payload = json.loads(response.read() or b"{}")
        except (OSError, ValueError, http.client.HTTPException) as error:
            raise ControlError(f"the fake driver's control socket {self.path} cannot be "
                               f"reached: {error}") from None
        finally:
            connection.close()
        if response.status != 200:
            raise ControlError(f"{method} {url} on {self.path} failed: "
                               f"{payload.get('error', response.status)}")
        return payload

    def state(self) -> dict[str, Any]:
        return self._request("GET", "/state")

    def set_fault(self, fault: str, delay: float | None = None) -> dict[str, Any]:
        return self._request("PUT", "/fault", {"fault": fault, "delay": delay})
