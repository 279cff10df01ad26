"""Soak: thousands of enrichments in a row through pycti's helper and a real RabbitMQ, mixed outcomes
(found, not found, refused, failed); every work must finish exactly once and memory must stay flat.

    python bench/soak.py [--count 1000]
"""

import argparse
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent)]

from harness import stage  # noqa: E402

from e2e.soak import soak  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1000)
    args = parser.parse_args()
    with stage(MALBEACON_CACHE_TTL="0") as running:
        result = soak(running.platform, running.simulator, running.connector_id, running.connector.pid, args.count)
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
