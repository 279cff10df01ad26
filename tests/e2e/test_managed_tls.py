"""A managed deployment: HTTPS_CA_CERTIFICATES (read by pycti too) is trusted for Malbeacon over HTTPS, and the
connector still stops cleanly on SIGTERM, leaving no certificate file behind."""

import signal
import time

from .connector_process import connector_environment
from .test_connector import C2_IP, enrich, start_slow_enrichment


def test_the_managed_ca_is_trusted_for_malbeacon_and_sigterm_still_stops_within_10_s(
    start_connector, fake_opencti, tls_simulator, tls_files, tmp_path
):
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    env = connector_environment(
        fake_opencti, tls_simulator, HTTPS_CA_CERTIFICATES=tls_files["ca"].read_text(), TMPDIR=str(temporary)
    )
    process = start_connector(env)
    process.wait_registered(fake_opencti)
    assert tls_simulator.base_url.startswith("https://")
    work = enrich(fake_opencti, env["CONNECTOR_ID"], C2_IP)
    assert work["in_error"] is False and "6 records" in work["message"], work["message"]

    work_id = start_slow_enrichment(fake_opencti, env["CONNECTOR_ID"], tls_simulator, seconds=2.0)
    stopped = time.monotonic()
    process.signal(signal.SIGTERM)
    assert process.wait_exit(timeout=12) == 0
    assert time.monotonic() - stopped < 10
    work = fake_opencti.works[work_id]
    assert work["processed"] and work["in_error"] is False and "3 records" in work["message"], work["message"]
    assert "Malbeacon connector stopped" in process.log_text()  # the connector's own stop, not pycti's
    assert list(temporary.iterdir()) == []  # neither the connector's CA file nor pycti's is left
