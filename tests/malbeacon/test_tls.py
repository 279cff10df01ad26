"""TLS to the Malbeacon API: certificates are verified by default; a custom CA bundle can be trusted."""

import select
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from certificates import write_certificates
from malbeacon_connector.malbeacon.client import client_from_settings
from malbeacon_connector.malbeacon.errors import Unavailable
from malbeacon_connector.malbeacon.simulator import MalbeaconSimulator
from malbeacon_connector.settings import MalbeaconSettings


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory) -> dict[str, Path]:
    """A private CA and a server certificate for 127.0.0.1 signed by it (PEM files)."""
    return write_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_simulator(tls_files):
    with MalbeaconSimulator(tls=(tls_files["cert"], tls_files["key"])) as simulator:
        yield simulator


def test_an_untrusted_certificate_is_refused_by_default_with_a_clear_message(tls_simulator):
    settings = MalbeaconSettings(api_key=tls_simulator.api_key, api_base_url=tls_simulator.base_url)
    with pytest.raises(Unavailable, match=r"not trusted.*MALBEACON_CA_BUNDLE"):
        client_from_settings(settings).lookup("c2", "203.0.113.7")
    assert tls_simulator.api_requests() == []  # nothing, the key included, was sent


def test_a_custom_ca_bundle_is_trusted(tls_simulator, tls_files):
    settings = MalbeaconSettings(
        api_key=tls_simulator.api_key, api_base_url=tls_simulator.base_url, ca_bundle=tls_files["ca"]
    )
    assert tls_simulator.base_url.startswith("https://")
    assert len(client_from_settings(settings).lookup("c2", "203.0.113.7")) == 6


def test_a_missing_ca_bundle_file_is_a_settings_error(tmp_path):
    with pytest.raises(ValueError, match="not a readable file of CA certificates"):
        MalbeaconSettings(api_key="key", ca_bundle=tmp_path / "missing.pem")


class _TunnelProxyHandler(BaseHTTPRequestHandler):
    """An HTTPS proxy: answers CONNECT, then relays bytes both ways, keeping what the client sent."""

    targets: list[str]
    sent: bytearray

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_CONNECT(self) -> None:
        self.targets.append(self.path)
        host, port = self.path.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as upstream:
            self.send_response(200, "Connection established")
            self.end_headers()
            self._relay(self.connection, upstream)

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        peers = {client: upstream, upstream: client}
        while True:
            readable, _, _ = select.select(list(peers), [], [], 5)
            if not readable:
                return
            for source in readable:
                data = source.recv(65536)
                if not data:
                    return
                if source is client:
                    self.sent.extend(data)
                peers[source].sendall(data)


def test_https_goes_through_the_proxy_s_tunnel_which_never_sees_the_key(tls_simulator, tls_files, monkeypatch):
    targets: list[str] = []
    sent = bytearray()
    handler = type("Handler", (_TunnelProxyHandler,), {"targets": targets, "sent": sent})
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as proxy:
        proxy.daemon_threads = True
        thread = threading.Thread(target=proxy.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        for name in ("HTTPS_PROXY", "https_proxy"):
            monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.server_address[1]}")
        settings = MalbeaconSettings(
            api_key=tls_simulator.api_key, api_base_url=tls_simulator.base_url, ca_bundle=tls_files["ca"]
        )
        client = client_from_settings(settings)
        try:
            assert len(client.lookup("c2", "203.0.113.7")) == 6
        finally:
            client.close()
            proxy.shutdown()
            thread.join(timeout=5)
    assert targets == [f"127.0.0.1:{tls_simulator.port}"]
    assert [request.api_key for request in tls_simulator.api_requests()] == [tls_simulator.api_key]
    assert len(sent) > 0 and tls_simulator.api_key.encode() not in sent  # only TLS records crossed the proxy
