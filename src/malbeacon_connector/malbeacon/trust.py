"""The CA certificates Malbeacon requests trust, always as an explicit file.

`MALBEACON_CA_BUNDLE` when set, else certifi's bundle; plus the certificates of `HTTPS_CA_CERTIFICATES`
(a managed deployment's proxy CA) when given, combined once into a private file (mode 0600) removed
when the client closes, or at exit. requests is always given that path, so `REQUESTS_CA_BUNDLE`,
`CURL_CA_BUNDLE` and `SSL_CERT_FILE` (pycti sets two of them for its own calls) never change it.
"""

import atexit
import contextlib
import os
import re
import ssl
import tempfile
from pathlib import Path

import certifi

_CERTIFICATE = re.compile(r"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]*?-----END CERTIFICATE-----")


def certificate_blocks(text: str) -> str:
    """The PEM certificates of `text`, one after the other (anything else, a private key say, left out);
    ValueError naming what it holds instead: no certificate, or one OpenSSL cannot read."""
    blocks = _CERTIFICATE.findall(text)
    if not blocks:
        raise ValueError("no PEM certificate")
    for number, block in enumerate(blocks, start=1):
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=block)
        except (ssl.SSLError, ValueError):
            raise ValueError(f"a certificate OpenSSL cannot read ({number} of {len(blocks)})") from None
    return "".join(f"{block}\n" for block in blocks)


class TrustStore:
    """The CA file requests verifies Malbeacon's certificate with: `path`; `close()` removes it if it was made."""

    def __init__(self, ca_bundle: Path | None = None, extra_certificates: str | None = None) -> None:
        base = str(ca_bundle) if ca_bundle is not None else certifi.where()
        self._made: str | None = None
        self.path = base
        if not extra_certificates:
            return
        descriptor, path = tempfile.mkstemp(prefix="malbeacon-ca-", suffix=".pem")  # mode 0600
        self._made = path
        atexit.register(self.close)
        try:
            with os.fdopen(descriptor, "wb") as combined, open(base, "rb") as bundle:
                while chunk := bundle.read(64 * 1024):
                    combined.write(chunk)
                combined.write(b"\n" + extra_certificates.encode("ascii"))
        except BaseException:
            self.close()
            raise
        self.path = path

    def close(self) -> None:
        """Remove the combined file, if one was made (the base bundle is never touched)."""
        made, self._made = self._made, None
        if made is not None:
            atexit.unregister(self.close)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(made)
