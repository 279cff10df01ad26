"""Core benchmark: a Malbeacon response (bytes) -> the bundle's JSON, against the floor of plain JSON work.

For generated responses of several sizes, each measured in a fresh process (for its peak memory):
the standalone enrichment's wall time (read the JSON, normalise the records, build the STIX
objects, serialise the bundle) against the floor measured in the same run (`json.loads` of the
response plus `json.dumps` of the bundle produced), and the process's peak resident memory.

    python bench/core_bench.py [--sizes 10 100 1000 10000 50000] [--runs 3]
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from responses import generate_rows

from malbeacon_connector.malbeacon.client import _json
from malbeacon_connector.malbeacon.records import parse_records
from malbeacon_connector.pipeline import entity_for_value
from malbeacon_connector.stix.bundle import make_bundle
from malbeacon_connector.stix.convert import convert
from malbeacon_connector.stix.models import ConversionOptions, Findings, Lookup


def enrichment_json(body: bytes) -> str:
    """What the standalone enrichment does with a response: the bundle's JSON."""
    records = parse_records(_json(body)).records  # type: ignore[arg-type]
    entity = entity_for_value("203.0.113.7", "IPv4-Addr", "TLP:AMBER")
    objects = convert([Findings(entity, [Lookup("c2", records)])], ConversionOptions(), datetime.now(UTC)).objects
    return json.dumps(make_bundle(objects))


def measure_once(size: int) -> dict:
    """In this process: one size, timed, with the floor and the peak memory."""
    body = json.dumps(generate_rows(size, seed=size)).encode()
    started = time.perf_counter()
    bundle = enrichment_json(body)
    core = time.perf_counter() - started
    objects = json.loads(bundle)["objects"]
    started = time.perf_counter()
    json.loads(body)
    json.dumps({"type": "bundle", "objects": objects})
    floor = time.perf_counter() - started
    return {
        "seconds": core,
        "floor": floor,
        "objects": len(objects),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "bytes": len(body),
    }


def measure(size: int, runs: int) -> dict:
    results = [
        json.loads(
            subprocess.run(
                [sys.executable, __file__, "--one", str(size)], check=True, capture_output=True, text=True, timeout=600
            ).stdout
        )
        for _ in range(runs)
    ]
    return {key: statistics.median(result[key] for result in results) for key in results[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000, 10000, 50000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_once(args.one)))
        return
    rows = {size: measure(size, args.runs) for size in args.sizes}
    print("| records | response | objects | objects/record | enrichment | floor | x floor | peak RSS |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size, row in rows.items():
        print(
            f"| {size:,} | {row['bytes'] / 1e6:.2f} MB | {row['objects']:,.0f} | {row['objects'] / size:.2f} | "
            f"{row['seconds'] * 1000:.1f} ms | {row['floor'] * 1000:.1f} ms | {row['seconds'] / row['floor']:.1f} | "
            f"{row['peak_rss_mib']:.0f} MiB |"
        )
    if 10000 in rows and 50000 in rows:
        print(f"\n50,000 / 10,000 records: {rows[50000]['seconds'] / rows[10000]['seconds']:.1f}x the time")


if __name__ == "__main__":
    main()
