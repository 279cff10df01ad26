"""Core benchmark: a Malbeacon answer (bytes) -> the bundle written, against the floor of plain JSON work.

For generated answers of several sizes, each measured in a fresh process (for its peak memory): what
the command line's `enrich` does once the answer has arrived (the answer read from the client's cache,
the records normalised, the STIX objects built with default settings, the bundle written to
/dev/null) against the floor measured in the same run (`json.loads` of the answer plus `json.dumps` of
the bundle produced), and the process's peak resident memory.

    python bench/core_bench.py [--sizes 10 100 1000 10000 50000] [--runs 3] [--profile repeating|distinct]
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from responses import PROFILES, generate_rows

from malbeacon_connector.cli import bundle_for
from malbeacon_connector.malbeacon.cache import AnswerCache
from malbeacon_connector.malbeacon.client import MalbeaconClient
from malbeacon_connector.pipeline import enrich_entities, entity_for_value
from malbeacon_connector.settings import MalbeaconSettings
from malbeacon_connector.stix import bundle as bundle_module

C2 = "203.0.113.7"


def _written(bundle: dict) -> None:
    """The bundle written as the command line writes it (to /dev/null)."""
    with open(os.devnull, "w", encoding="utf-8") as sink:
        if hasattr(bundle_module, "bundle_text"):
            sink.writelines(bundle_module.bundle_text(bundle))
        else:  # the command line before it wrote in pieces
            sink.write(json.dumps(bundle, indent=2, ensure_ascii=False) + "\n")


def enrichment(body: bytes, size: int) -> dict:
    """What `enrich` does with an answer: the bundle, written; returned for the floor's measure."""
    settings = MalbeaconSettings(api_key="bench-key", api_base_url="http://127.0.0.1:9/", max_records=max(size, 1))
    cache = AnswerCache(ttl=3600)
    cache.put("c2", C2, body)
    client = MalbeaconClient(settings.api_base_url, "bench-key", cache=cache)
    entity = entity_for_value(C2, "IPv4-Addr", "TLP:AMBER")
    enriched = enrich_entities(client, [entity], settings, datetime.now(UTC))
    assert enriched.outcomes[0].cached == 1 and not enriched.outcomes[0].error
    bundle = bundle_for(enriched)
    _written(bundle)
    return bundle


def measure_once(size: int, profile: str) -> dict:
    """In this process: one size, timed, with the floor and the peak memory."""
    body = json.dumps(generate_rows(size, seed=size, profile=profile)).encode()
    started = time.perf_counter()
    objects = enrichment(body, size)["objects"]
    core = time.perf_counter() - started
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


def measure(size: int, runs: int, profile: str) -> dict:
    command = [sys.executable, __file__, "--one", str(size), "--profile", profile]
    results = [
        json.loads(subprocess.run(command, check=True, capture_output=True, text=True, timeout=600).stdout)
        for _ in range(runs)
    ]
    return {key: statistics.median(result[key] for result in results) for key in results[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000, 10000, 50000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", choices=PROFILES, default="repeating", help="answers: see responses.py")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_once(args.one, args.profile)))
        return
    rows = {size: measure(size, args.runs, args.profile) for size in args.sizes}
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
