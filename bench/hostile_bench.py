"""Memory under hostile answers: distinct huge fields across many enrichments must not pile up.

Each enriched value's answer holds three records whose AS name is a distinct 4 MB text. The
standalone enrichment of 6 and then 36 such values runs in a fresh process (the simulator in
another one, so that its copy of the answers is not counted), with the answer cache at its
default and switched off; the row gives the wall time and the process's peak resident memory.

    python bench/hostile_bench.py [--counts 6 36] [--field-mb 4]
"""

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def answers(count: int, field_mb: int) -> dict:
    """The simulator's data: `count` C2 values, each with three records holding a distinct huge AS name."""
    c2 = {}
    for number in range(count):
        name = f"AS{64500 + number} " + chr(ord("a") + number % 26) * (field_mb * 1024 * 1024)
        c2[f"198.51.{number // 250}.{number % 250 + 1}"] = [
            {"tstamp": f"2024-05-0{day} 10:00:00", "actorip": f"192.0.2.{day}", "actorasnorg": name}
            for day in (1, 2, 3)
        ]
    return {"c2": c2}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def measure_once(values: list[str]) -> dict:
    """In this process: enrich the values as the command line does; time and peak memory."""
    from malbeacon_connector.cli import bundle_for, enrich_values
    from malbeacon_connector.settings import CommandLineSettings

    settings = CommandLineSettings().malbeacon
    started = time.perf_counter()
    enriched = enrich_values([("IPv4-Addr", value) for value in values], "TLP:CLEAR", settings)
    text = json.dumps(bundle_for(enriched))
    return {
        "seconds": time.perf_counter() - started,
        "found": sum(outcome.found for outcome in enriched.outcomes),
        "bundle_mb": len(text) / 1e6,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run(count: int, field_mb: int, cache_ttl: str) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "answers.json"
        # written by a child: the measured process, forked from this one, must not inherit its memory peak
        subprocess.run([sys.executable, __file__, "--write", str(data), str(count), str(field_mb)], check=True)
        port = free_port()
        simulator = subprocess.Popen(
            [sys.executable, "-m", "malbeacon_connector", "simulate", "--port", str(port), "--data", str(data)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", str(ROOT / "src"))},
        )
        try:
            assert simulator.stdout is not None and "listening" in simulator.stdout.readline()
            env = {
                **os.environ,
                "MALBEACON_API_KEY": "simulator-key",
                "MALBEACON_API_BASE_URL": f"http://127.0.0.1:{port}/v1/",
                "MALBEACON_CACHE_TTL": cache_ttl,
            }
            values = sorted(answers(count, 0)["c2"])
            command = [sys.executable, __file__, "--one", json.dumps(values)]
            output = subprocess.run(command, env=env, check=True, capture_output=True, text=True, timeout=900).stdout
            return json.loads(output)
        finally:
            simulator.terminate()
            simulator.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", type=int, nargs="+", default=[6, 36])
    parser.add_argument("--field-mb", type=int, default=4)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--write", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write:
        path, count, field_mb = args.write
        Path(path).write_text(json.dumps(answers(int(count), int(field_mb))))
        return
    if args.one:
        print(json.dumps(measure_once(json.loads(args.one))))
        return
    print("| values | AS name | cache | found | time | bundle | peak RSS |")
    print("|---:|---:|---|---:|---:|---:|---:|")
    for cache_ttl in ("3600", "0"):
        for count in args.counts:
            row = run(count, args.field_mb, cache_ttl)
            print(
                f"| {count} | {args.field_mb} MB | {'default' if cache_ttl != '0' else 'off'} | {row['found']} | "
                f"{row['seconds']:.2f} s | {row['bundle_mb']:.1f} MB | {row['peak_rss_mib']:.0f} MiB |",
                flush=True,
            )


if __name__ == "__main__":
    main()
