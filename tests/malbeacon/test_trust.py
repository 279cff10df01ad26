"""What Malbeacon requests trust: MALBEACON_CA_BUNDLE (else certifi's bundle) plus HTTPS_CA_CERTIFICATES, checked
at start-up like every setting."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import certifi
import pytest

from malbeacon_connector.malbeacon.client import client_from_settings
from malbeacon_connector.malbeacon.trust import TrustStore, certificate_blocks
from malbeacon_connector.settings import (
    CA_FILE_MAX_BYTES,
    CommandLineSettings,
    MalbeaconSettings,
    SettingsError,
    settings_from,
)

MANAGED = "HTTPS_CA_CERTIFICATES"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in list(os.environ):
        if name.startswith("MALBEACON_") or name in (MANAGED, "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
            monkeypatch.delenv(name)


def malbeacon_settings(monkeypatch, managed: str | None = None, **malbeacon: object) -> MalbeaconSettings:
    """The `malbeacon` section as the command line reads it, with HTTPS_CA_CERTIFICATES set to `managed`."""
    if managed is not None:
        monkeypatch.setenv(MANAGED, managed)
    return settings_from(CommandLineSettings, {"malbeacon": {"api_key": "key", **malbeacon}}).malbeacon


def problems(monkeypatch, managed: str, **malbeacon: object) -> list[str]:
    with pytest.raises(SettingsError) as refused:
        malbeacon_settings(monkeypatch, managed, **malbeacon)
    return refused.value.problems


def test_certificate_blocks_keeps_the_certificates_only(tls_files, other_ca):
    ca, other = tls_files["ca"].read_text(), other_ca.read_text()
    text = f"# proxy CAs\n{ca}\n{tls_files['key'].read_text()}\n{other}"
    assert certificate_blocks(text) == ca.strip() + "\n" + other.strip() + "\n"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not a certificate", "no PEM certificate"),
        ("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "no PEM certificate"),
        ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", r"OpenSSL cannot read \(1 of 1\)"),
    ],
)
def test_certificate_blocks_refuses_what_holds_no_readable_certificate(text, reason):
    with pytest.raises(ValueError, match=reason):
        certificate_blocks(text)


def test_by_default_certifi_s_bundle_is_trusted_and_no_file_is_made(monkeypatch):
    settings = malbeacon_settings(monkeypatch)
    assert settings.managed_ca_certificates is None
    store = TrustStore(settings.ca_bundle, settings.managed_ca_certificates)
    assert store.path == certifi.where()
    store.close()
    assert Path(certifi.where()).is_file()


def test_managed_certificates_as_pem_text_are_added_to_certifi_s_bundle(monkeypatch, tls_files):
    pem = tls_files["ca"].read_text()
    settings = malbeacon_settings(monkeypatch, "\n" + pem + "\n")
    assert settings.managed_ca_certificates == pem.strip() + "\n"
    store = TrustStore(settings.ca_bundle, settings.managed_ca_certificates)
    combined = Path(store.path)
    assert combined != Path(certifi.where())
    assert stat.S_IMODE(combined.stat().st_mode) == 0o600
    assert combined.read_bytes() == Path(certifi.where()).read_bytes() + b"\n" + pem.strip().encode() + b"\n"
    store.close()
    assert not combined.exists()


def test_managed_certificates_as_a_path_are_added_to_the_ca_bundle_which_replaces_certifi_s(
    monkeypatch, tls_files, other_ca
):
    settings = malbeacon_settings(monkeypatch, f" {tls_files['ca']} ", ca_bundle=str(other_ca))
    store = TrustStore(settings.ca_bundle, settings.managed_ca_certificates)
    try:
        assert Path(store.path).read_text() == other_ca.read_text() + "\n" + tls_files["ca"].read_text()
    finally:
        store.close()


def test_the_client_trusts_the_combined_file_and_removes_it_when_closed(monkeypatch, tls_files):
    settings = malbeacon_settings(monkeypatch, str(tls_files["ca"]))
    client = client_from_settings(settings)
    combined = Path(client._verify)
    assert combined.is_file() and tls_files["ca"].read_text() in combined.read_text()
    client.close()
    assert not combined.exists()


def test_a_combined_file_left_open_is_removed_at_exit(tls_files):
    script = (
        "import sys; from malbeacon_connector.malbeacon.trust import TrustStore; "
        "print(TrustStore(None, open(sys.argv[1]).read()).path)"
    )
    done = subprocess.run([sys.executable, "-c", script, str(tls_files["ca"])], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    path = Path(done.stdout.decode().strip())
    assert path.name.startswith("malbeacon-ca-") and not path.exists()


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_value_is_unset(monkeypatch, value):
    assert malbeacon_settings(monkeypatch, value).managed_ca_certificates is None


def test_a_value_neither_pem_nor_a_readable_file_is_refused_naming_the_setting(monkeypatch, tmp_path, tls_files):
    empty, large, binary = tmp_path / "empty.pem", tmp_path / "large.pem", tmp_path / "binary.pem"
    empty.write_text("no certificate here\n")
    large.write_bytes(tls_files["ca"].read_bytes() + b"#" * CA_FILE_MAX_BYTES)
    binary.write_bytes(b"\xff\xfe\x00")
    cases = {
        "not a certificate": "'not a certificate' cannot be read (No such file or directory)",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----": "its PEM text holds a certificate OpenSSL",
        str(tmp_path / "missing.pem"): "cannot be read (No such file or directory)",
        str(tmp_path): "cannot be read (not a regular file)",
        str(empty): "holds no PEM certificate",
        str(large): "cannot be read (larger than 1 MiB)",
        str(binary): "is not PEM text (not UTF-8)",
    }
    for value, reason in cases.items():
        (line,) = problems(monkeypatch, value)
        assert line.startswith(f"{MANAGED}: ") and reason in line and "\n" not in line, line
        assert "allowed: PEM text holding at least one certificate" in line and "file of at most 1 MiB" in line


def test_the_managed_certificates_problem_is_reported_with_the_others(monkeypatch):
    lines = problems(monkeypatch, "-----BEGIN nothing", max_tlp="purple")
    assert [line.split(":")[0] for line in lines] == ["MALBEACON_MAX_TLP (malbeacon.max_tlp)", MANAGED]
