"""TLS to the Malbeacon API: certificates are verified by default; a custom CA bundle can be trusted."""

import json
import os
import select
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from malbeacon_connector.malbeacon.client import client_from_settings
from malbeacon_connector.malbeacon.errors import Unavailable
from malbeacon_connector.malbeacon.simulator import MalbeaconSimulator
from malbeacon_connector.settings import CommandLineSettings, MalbeaconSettings, settings_from


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


MANAGED = "HTTPS_CA_CERTIFICATES"
_TRUST_VARIABLES = (MANAGED, "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")


def over_https(monkeypatch, simulator: MalbeaconSimulator, **malbeacon: object) -> MalbeaconSettings:
    """The `malbeacon` settings of the command line, pointed at the simulator, from this environment."""
    for name in list(os.environ):
        if name.startswith("MALBEACON_"):
            monkeypatch.delenv(name)
    section = {"api_key": simulator.api_key, "api_base_url": simulator.base_url, "max_retries": 0, **malbeacon}
    return settings_from(CommandLineSettings, {"malbeacon": section}).malbeacon


def rows_over_https(settings: MalbeaconSettings) -> int:
    client = client_from_settings(settings)
    try:
        return len(client.lookup("c2", "203.0.113.7"))
    finally:
        client.close()


@pytest.fixture
def no_trust_variables(monkeypatch):
    for name in _TRUST_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("form", ["pem", "path"])
def test_the_managed_ca_is_trusted_given_as_pem_text_or_a_path(
    monkeypatch, no_trust_variables, tls_simulator, tls_files, form
):
    with pytest.raises(Unavailable, match="not trusted"):
        rows_over_https(over_https(monkeypatch, tls_simulator))
    monkeypatch.setenv(MANAGED, tls_files["ca"].read_text() if form == "pem" else str(tls_files["ca"]))
    assert rows_over_https(over_https(monkeypatch, tls_simulator)) == 6


def test_the_managed_ca_is_trusted_besides_malbeacon_ca_bundle(
    monkeypatch, no_trust_variables, tls_simulator, tls_files, other_ca
):
    monkeypatch.setenv(MANAGED, str(tls_files["ca"]))
    assert rows_over_https(over_https(monkeypatch, tls_simulator, ca_bundle=str(other_ca))) == 6
    monkeypatch.setenv(MANAGED, str(other_ca))
    assert rows_over_https(over_https(monkeypatch, tls_simulator, ca_bundle=str(tls_files["ca"]))) == 6
    monkeypatch.delenv(MANAGED)
    with pytest.raises(Unavailable, match="not trusted"):  # the bundle replaces certifi's, not the managed CA
        rows_over_https(over_https(monkeypatch, tls_simulator, ca_bundle=str(other_ca)))


def test_requests_and_openssl_variables_neither_widen_nor_narrow_what_malbeacon_requests_trust(
    monkeypatch, no_trust_variables, tls_simulator, tls_files, other_ca
):
    """pycti points REQUESTS_CA_BUNDLE and SSL_CERT_FILE at a bundle of its own when HTTPS_CA_CERTIFICATES is set."""
    for name in _TRUST_VARIABLES[1:]:
        monkeypatch.setenv(name, str(tls_files["ca"]))
    with pytest.raises(Unavailable, match="not trusted"):
        rows_over_https(over_https(monkeypatch, tls_simulator))
    for name in _TRUST_VARIABLES[1:]:
        monkeypatch.setenv(name, str(other_ca))
    monkeypatch.setenv(MANAGED, str(tls_files["ca"]))
    assert rows_over_https(over_https(monkeypatch, tls_simulator)) == 6


def test_the_command_line_trusts_the_managed_ca_and_leaves_no_file(tls_simulator, tls_files, tmp_path):
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OPENCTI_", "CONNECTOR_", "MALBEACON_"))},
        "MALBEACON_API_KEY": tls_simulator.api_key,
        "MALBEACON_API_BASE_URL": tls_simulator.base_url,
        "MALBEACON_MAX_RETRIES": "0",
        "TMPDIR": str(temporary),
    }
    for name in _TRUST_VARIABLES:
        env.pop(name, None)

    def enrich(**variables: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "malbeacon_connector", "enrich", "203.0.113.7"]
        return subprocess.run(command, env={**env, **variables}, cwd=tmp_path, capture_output=True, timeout=60)

    refused = enrich()
    assert refused.returncode == 1 and b"is not trusted" in refused.stderr
    for value in (tls_files["ca"].read_text(), str(tls_files["ca"])):
        done = enrich(**{MANAGED: value})
        assert done.returncode == 0, done.stderr.decode()
        assert b"203.0.113.7 (IPv4-Addr): 6 records" in done.stderr
        assert json.loads(done.stdout)["type"] == "bundle"
    invalid = enrich(**{MANAGED: str(tmp_path / "missing.pem")})
    assert invalid.returncode == 2 and invalid.stdout == b""
    (line,) = [line for line in invalid.stderr.decode().splitlines() if MANAGED in line]
    assert line.startswith(f"  - {MANAGED}: the file ") and "allowed: PEM text" in line
    assert b"Traceback" not in invalid.stderr
    assert list(temporary.iterdir()) == []
