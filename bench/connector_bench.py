"""Connector benchmark: publish -> work processed through pycti's helper and a real RabbitMQ.

For API responses of several sizes (served by the Malbeacon simulator), it measures the time
from publishing the enrichment message to the work being reported processed, the objects
pushed to the broker, and the connector process's peak resident memory; and, in the same run,
the time pycti alone needs to send a bundle of the same objects (`send_stix2_bundle` on the
pre-built bundle, from a helper of its own), so that the connector's own share shows.

    python bench/connector_bench.py [--sizes 10 100 1000 10000] [--runs 3]
"""

import argparse
import json
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent)]

from harness import stage  # noqa: E402
from pycti import OpenCTIConnectorHelper  # noqa: E402
from responses import generate_rows  # noqa: E402

from e2e.connector_process import ConnectorProcess  # noqa: E402
from e2e.fake_opencti import FakeOpenCTI, decode_bundle  # noqa: E402


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak_rss(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # Linux: reset VmHWM to the current RSS


def measure(sizes: list[int], runs: int) -> list[dict]:
    """One result row per size: median seconds, objects pushed, peak RSS, pycti's own sending time."""
    values = {size: [f"c2-{size}-{run}.example.net" for run in range(runs)] for size in sizes}
    data = {"c2": {value: generate_rows(size, seed=size) for size in sizes for value in values[size]}}
    rows, bundles = [], {}
    with stage(data) as running:
        for size in sizes:
            row, bundles[size] = _measure_size(
                running.platform, running.connector, running.connector_id, size, values[size]
            )
            rows.append(row)
        pycti_alone = _pycti_helper(running.platform)
        for row in rows:
            row["pycti_seconds"] = _measure_pycti(running.platform, pycti_alone, bundles[row["records"]], runs)
    return rows


def _measure_size(
    platform: FakeOpenCTI, connector: ConnectorProcess, connector_id: str, size: int, values: list[str]
) -> tuple[dict, str]:
    """Enrich each value (same response size); the figures and the bundle of the objects pushed."""
    _reset_peak_rss(connector.pid)
    durations, pushed = [], []
    for value in values:
        objects: dict[str, dict] = {}  # the last run's objects make the bundle pycti sends alone
        entity_id = platform.add_entity("Domain-Name", value)
        started = time.time()
        work_id = platform.publish_enrichment(connector_id, entity_id)
        work = platform.wait_work_processed(work_id, timeout=600)
        assert not work["in_error"], work["message"]
        durations.append(work["processed_at"] - started)
        pushed.append(work["expectations"])
        for message in platform.take_pushed_messages(connector_id, timeout=60, expected_count=work["expectations"]):
            for stix_object in decode_bundle(message)["objects"]:
                stix_object.pop("nb_deps", None)  # added by pycti's splitter
                objects[stix_object["id"]] = stix_object
    row = {
        "records": size,
        "seconds": statistics.median(durations),
        "all_seconds": durations,
        "objects": pushed[0],
        "peak_rss_mib": _peak_rss_mib(connector.pid),
    }
    return row, json.dumps({"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": list(objects.values())})


def _pycti_helper(platform: FakeOpenCTI) -> OpenCTIConnectorHelper:
    """A helper of its own, registered with the fake platform, to time pycti's sending alone."""
    config = {
        "opencti": {"url": platform.url, "token": platform.token},
        "connector": {
            "id": str(uuid.uuid4()),
            "type": "INTERNAL_ENRICHMENT",
            "name": "pycti-alone",
            "scope": "Domain-Name",
            "log_level": "error",
        },
    }
    return OpenCTIConnectorHelper(config)


def _measure_pycti(platform: FakeOpenCTI, helper: OpenCTIConnectorHelper, bundle: str, runs: int) -> float:
    """Median seconds of `send_stix2_bundle` for a pre-built bundle, with a work as the connector has."""
    durations = []
    for _ in range(runs):
        work_id = platform.create_work(helper.connect_id, None)
        started = time.perf_counter()
        helper.send_stix2_bundle(bundle, work_id=work_id, cleanup_inconsistent_bundle=True)
        durations.append(time.perf_counter() - started)
        expected = platform.works[work_id]["expectations"]
        platform.take_pushed_messages(helper.connect_id, timeout=60, expected_count=expected)
    return statistics.median(durations)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000, 10000])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(
        "| records | publish -> processed (median) | runs (s) | objects pushed | ms per object | pycti alone (median) "
        "| connector's own share | peak RSS |"
    )
    print("|---:|---:|---|---:|---:|---:|---:|---:|")
    for row in measure(args.sizes, args.runs):
        runs = ", ".join(f"{seconds:.3f}" for seconds in row["all_seconds"])
        per_object = 1000 * row["seconds"] / max(row["objects"], 1)
        share = (row["seconds"] - row["pycti_seconds"]) / row["seconds"]
        print(
            f"| {row['records']:,} | {row['seconds']:.3f} s | {runs} | {row['objects']:,} | {per_object:.2f} | "
            f"{row['pycti_seconds']:.3f} s | {share:.0%} | {row['peak_rss_mib']:.0f} MiB |"
        )


if __name__ == "__main__":
    main()
