"""A simulator of the Malbeacon API, for demonstrations and tests. Loopback only.

It is a test double built from public knowledge of the API (two public client code
bases; Malbeacon publishes no reference), not Malbeacon itself: it answers
`GET /v1/c2/<endpoint>/<value>` from a JSON file shaped
`{"<endpoint>": {"<value>": [records...]}}`, with the known error answers (400 "ERROR:
No Results", 401 "ERROR: Unauthorized"), and can inject faults:

- `status`: answer a status code (with an optional JSON body and Retry-After)
- `slow`: wait `seconds` before answering normally
- `hang`: never answer (until the simulator stops)
- `malformed`: answer 200 with a body that is not JSON (or the `body` given; lone surrogates such as
  `\udcff` become the raw bytes they stand for, to send invalid UTF-8)
- `huge`: answer 200 with a JSON list of `size` bytes, streamed (never held in memory)
- `trickle`: send the answer one byte every `seconds`
- `slow-headers`: send the status line and headers one byte every `seconds`
- `reset`: close the connection in the middle of the body

Faults apply to one `(endpoint, value)` or to every request (`"*"`), for `times` requests
or until cleared. Tests drive it in-process (`MalbeaconSimulator`) or, when it runs as
its own process, through `/_sim/requests` (GET, DELETE) and `/_sim/faults` (POST, DELETE).
"""

import contextlib
import json
import socket
import ssl
import threading
import time
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import unquote

DEFAULT_API_KEY = "simulator-key"
HANG_LIMIT_SECONDS = 600.0


@dataclass
class Fault:
    """A misbehaviour to inject; see the module docstring for the kinds."""

    kind: str
    endpoint: str = "*"
    value: str = "*"
    status: int = 503
    body: str | None = None
    retry_after: str | None = None
    seconds: float = 1.0
    size: int = 0
    times: int | None = None

    KINDS = ("status", "slow", "hang", "malformed", "trickle", "slow-headers", "reset", "huge")

    def __post_init__(self) -> None:
        if self.kind not in self.KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; allowed: {', '.join(self.KINDS)}")

    def matches(self, endpoint: str, value: str) -> bool:
        return self.endpoint in ("*", endpoint) and self.value in ("*", value)


@dataclass
class RecordedRequest:
    """A request the simulator received."""

    method: str
    path: str
    endpoint: str | None
    value: str | None
    api_key: str | None
    headers: dict[str, str] = field(default_factory=dict)
    status: int | None = None  # the HTTP status answered (None when no answer was given)


def load_sample_data() -> dict[str, dict[str, list]]:
    """The bundled sample data (made-up actors on documentation address ranges)."""
    return json.loads(resources.files("malbeacon_connector").joinpath("data/simulator-sample.json").read_text("utf-8"))


class MalbeaconSimulator:
    """The simulator as an object: `start()`, `base_url`, `requests`, `add_fault()`, `stop()`."""

    def __init__(
        self,
        data: dict[str, dict[str, Any]] | None = None,
        *,
        api_key: str = DEFAULT_API_KEY,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        self.data = load_sample_data() if data is None else data
        self.api_key = api_key
        self.requests: list[RecordedRequest] = []
        self.faults: list[Fault] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._scheme = "http"
        if tls is not None:  # (certificate chain, private key), PEM
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self._scheme = "https"
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"{self._scheme}://{self._server.server_address[0]}:{self.port}/v1"

    def start(self) -> "MalbeaconSimulator":
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="malbeacon-simulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "MalbeaconSimulator":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def clear(self) -> None:
        """Forget the recorded requests and the faults."""
        with self._lock:
            self.faults.clear()
            self.requests.clear()

    def api_requests(self) -> list[RecordedRequest]:
        """The requests made to the API (not to the control endpoints)."""
        with self._lock:
            return [request for request in self.requests if request.endpoint is not None]

    def take_fault(self, endpoint: str, value: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(endpoint, value):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self.faults.remove(fault)
                    return fault
        return None

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def wait_stopping(self, seconds: float) -> None:
        self._stopping.wait(seconds)


def _handler_for(simulator: MalbeaconSimulator) -> type[BaseHTTPRequestHandler]:
    class Handler(_SimulatorHandler):
        sim = simulator

    return Handler


class _SimulatorHandler(BaseHTTPRequestHandler):
    sim: MalbeaconSimulator
    _recorded: RecordedRequest | None = None  # the API request being answered
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body leave at once: no 40 ms delayed-ACK stall

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read requests, not logs
        pass

    def do_GET(self) -> None:
        self._recorded = None
        if self.path.startswith("/_sim/"):
            self._control("GET")
            return
        parts = self.path.split("?")[0].split("/")
        endpoint = value = None
        if len(parts) == 5 and parts[:3] == ["", "v1", "c2"]:
            endpoint, value = parts[3], unquote(parts[4])
        self._recorded = RecordedRequest(
            "GET", self.path, endpoint, value, self.headers.get("X-Api-Key"), dict(self.headers.items())
        )
        self.sim.record(self._recorded)
        if endpoint is None or value is None:
            self._json(404, {"message": "ERROR: Not Found"})
            return
        if self.headers.get("X-Api-Key") != self.sim.api_key:
            self._json(401, {"message": "ERROR: Unauthorized"})
            return
        fault = self.sim.take_fault(endpoint, value)
        if fault is not None and self._misbehave(fault):
            return
        rows = self.sim.data.get(endpoint, {}).get(value)
        if not rows and rows != []:
            self._json(400, {"message": "ERROR: No Results"})
        else:
            self._json(200, rows)

    def do_POST(self) -> None:
        self._control("POST")

    def do_DELETE(self) -> None:
        self._control("DELETE")

    def _control(self, method: str) -> None:
        self._recorded = None
        route = self.path.split("?")[0]
        if route == "/_sim/requests" and method == "GET":
            self._json(200, [asdict(request) for request in self.sim.api_requests()])
        elif route in ("/_sim/requests", "/_sim/faults") and method == "DELETE":
            self.sim.clear()
            self._json(200, {"cleared": True})
        elif route == "/_sim/faults" and method == "POST":
            length = int(self.headers.get("Content-Length") or 0)
            try:
                self.sim.add_fault(Fault(**json.loads(self.rfile.read(length))))
            except (ValueError, TypeError) as error:
                self._json(400, {"message": str(error)})
                return
            self._json(200, {"added": True})
        else:
            self._json(404, {"message": "unknown control endpoint"})

    def _misbehave(self, fault: Fault) -> bool:
        """Apply a fault; True when the answer has been given (or withheld)."""
        if fault.kind == "slow":
            self.sim.wait_stopping(fault.seconds)
            return False
        if fault.kind == "hang":
            self.sim.wait_stopping(HANG_LIMIT_SECONDS)
            self.close_connection = True
            return True
        if fault.kind == "status":
            body = fault.body if fault.body is not None else json.dumps({"message": f"simulated HTTP {fault.status}"})
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            self._send(fault.status, body.encode("utf-8"), headers)
        elif fault.kind == "malformed":
            body = fault.body if fault.body is not None else "<html><body>Bad Gateway</body></html>"
            self._send(200, body.encode("utf-8", "surrogateescape"))
        elif fault.kind == "huge":
            self._stream_huge(fault.size)
        elif fault.kind == "trickle":
            self._trickle(b'[{"actorip": "192.0.2.1"}]', fault.seconds)
        elif fault.kind == "slow-headers":
            self._drip(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Padding: " + b"x" * 200, fault.seconds)
            self.close_connection = True
        else:
            self._reset()
        return True

    def _stream_huge(self, size: int) -> None:
        """A `size`-byte JSON list of records, written chunk by chunk until done or the client leaves."""
        record = b'{"actorip": "192.0.2.1", "tags": "huge"},'
        chunk = record * (65536 // len(record))
        self._head(200, size)
        sent = 0
        with contextlib.suppress(OSError):
            self.wfile.write(b"[")
            sent = 1
            while sent < size - 1 and not self.sim.stopping:
                piece = chunk[: size - 1 - sent]
                self.wfile.write(piece)
                sent += len(piece)
            self.wfile.write(b"]")
        self.close_connection = True

    def _trickle(self, body: bytes, seconds: float) -> None:
        self._head(200, len(body))
        self._drip(body, seconds)

    def _drip(self, data: bytes, seconds: float) -> None:
        """Write one byte every `seconds` until done, the client gone or the simulator stopping."""
        for byte in data:
            if self.sim.stopping:
                break
            try:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            except OSError:
                break
            time.sleep(seconds)

    def _reset(self) -> None:
        self._head(200, 1000)
        self.wfile.write(b'[{"actorip": "192.0.2.1", ')
        self.wfile.flush()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        self.close_connection = True

    def _json(self, status: int, document: Any) -> None:
        self._send(status, json.dumps(document).encode("utf-8"))

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self._head(status, len(body), headers)
        self.wfile.write(body)

    def _head(self, status: int, length: int, headers: dict[str, str] | None = None) -> None:
        if self._recorded is not None:
            self._recorded.status = status
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(length))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()


def read_data_file(path: Path) -> dict[str, dict[str, Any]]:
    """Simulator data from a JSON file `{"<endpoint>": {"<value>": [records...]}}`."""
    document = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict) or not all(isinstance(values, dict) for values in document.values()):
        raise ValueError(f'{path}: expected {{"<endpoint>": {{"<value>": [records...]}}}}')
    return document
