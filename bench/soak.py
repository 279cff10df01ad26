"""Soak: thousands of enrichments in a row through pycti's helper and a real RabbitMQ, mixed outcomes
(found, not found, refused, failed); every work must finish exactly once and memory must stay flat.

    python bench/soak.py [--count 1000]
"""

import argparse
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests")]

from e2e.broker import RabbitMQ  # noqa: E402
from e2e.connector_process import ConnectorProcess  # noqa: E402
from e2e.fake_opencti import FakeOpenCTI  # noqa: E402
from e2e.soak import soak  # noqa: E402
from malbeacon_connector.simulator import MalbeaconSimulator  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        broker = RabbitMQ().start(Path(workdir) / "rabbitmq")
        try:
            with FakeOpenCTI(broker) as platform, MalbeaconSimulator() as simulator:
                env = {
                    "OPENCTI_URL": platform.url,
                    "OPENCTI_TOKEN": platform.token,
                    "CONNECTOR_ID": str(uuid.uuid4()),
                    "CONNECTOR_TYPE": "INTERNAL_ENRICHMENT",
                    "CONNECTOR_NAME": "Malbeacon",
                    "CONNECTOR_SCOPE": "IPv4-Addr,IPv6-Addr,Domain-Name",
                    "CONNECTOR_LOG_LEVEL": "error",
                    "MALBEACON_API_KEY": simulator.api_key,
                    "MALBEACON_API_BASE_URL": simulator.base_url,
                    "MALBEACON_CACHE_TTL": "0",
                }
                with ConnectorProcess(env, Path(workdir), name="soak-connector") as connector:
                    connector.wait_registered(platform, timeout=60)
                    result = soak(platform, simulator, env["CONNECTOR_ID"], connector.pid, args.count)
        finally:
            broker.stop()
    print("| enrichments | time | outcomes | wrong outcomes | reports per work | RSS after 100 | RSS after all |")
    print("|---:|---:|---|---:|---|---:|---:|")
    outcomes = ", ".join(f"{name} {count}" for name, count in sorted(result.outcomes.items()))
    reports = ", ".join(f"{times}x: {works}" for times, works in sorted(result.reports.items()))
    print(
        f"| {result.enrichments:,} | {result.seconds:.0f} s | {outcomes} | {len(result.wrong)} | {reports} | "
        f"{result.rss_after_first_hundred:.1f} MiB | {result.rss_after_all:.1f} MiB |"
    )


if __name__ == "__main__":
    main()
