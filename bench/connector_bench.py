"""Connector benchmark: publish -> work processed through pycti's helper and a real RabbitMQ.

For API responses of several sizes (served by the Malbeacon simulator), it measures the time from
publishing the enrichment message to the work being reported processed, the objects pushed to
the broker and the process's peak resident memory, for this connector and, in the same run and
on the same responses, for a stand-in of the existing public connector (`legacy_connector.py`).
It also times, on the bundle this connector pushed, the sending alone: pycti's `send_stix2_bundle`
and this connector's `push_objects`, from a helper of the benchmark's own.

    python bench/connector_bench.py [--sizes 10 100 1000 10000 50000] [--runs 3] [--profile distinct]
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH)]

from harness import Stage, stage  # noqa: E402
from pycti import OpenCTIConnectorHelper  # noqa: E402
from responses import PROFILES, generate_rows  # noqa: E402

from e2e.connector_process import ConnectorProcess, connector_environment  # noqa: E402
from e2e.fake_opencti import FakeOpenCTI, decode_bundle  # noqa: E402
from malbeacon_connector.opencti.push import push_objects  # noqa: E402

LEGACY_COMMAND = (sys.executable, str(BENCH / "legacy_connector.py"))


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak_rss(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # Linux: reset VmHWM to the current RSS


@contextmanager
def legacy_connector(running: Stage) -> Iterator[ConnectorProcess]:
    """The stand-in of the existing connector, in its own process, on the same platform and simulator."""
    base_url = running.simulator.base_url + "/"  # it needs the trailing slash
    env = connector_environment(
        running.platform, running.simulator, CONNECTOR_LOG_LEVEL="error", MALBEACON_API_BASE_URL=base_url
    )
    with (
        tempfile.TemporaryDirectory() as workdir,
        ConnectorProcess(env, Path(workdir), command=LEGACY_COMMAND, name="legacy-connector") as legacy,
    ):
        legacy.wait_registered(running.platform, timeout=60)
        yield legacy


def measure(
    sizes: list[int], runs: int, profile: str = "repeating", legacy_up_to: int = 10_000, sending_up_to: int = 10_000
) -> list[dict]:
    """One result row per size: both connectors' figures (the existing one's up to `legacy_up_to` records)
    and the sending alone of this one's bundle (up to `sending_up_to` records)."""
    values = {size: [f"c2-{size}-{run}.example.net" for run in range(runs)] for size in sizes}
    data = {"c2": {value: generate_rows(size, seed=size, profile=profile) for size in sizes for value in values[size]}}
    rows, bundles = [], {}
    with stage(data, MALBEACON_MAX_RECORDS=str(max(sizes))) as running, legacy_connector(running) as legacy:
        for size in sizes:
            ours, theirs = _Runs(running.connector), _Runs(legacy)
            for value in values[size]:  # interleaved, so that both see the same machine
                bundles[size] = ours.enrich(running.platform, value)
                if size <= legacy_up_to:
                    theirs.enrich(running.platform, value)
            legacy_figures = theirs.figures() if theirs.durations else None
            rows.append({"records": size, "ours": ours.figures(), "legacy": legacy_figures})
        helper = _pycti_helper(running.platform)
        for row in rows:
            if row["records"] > sending_up_to:
                row["pycti_seconds"] = row["push_seconds"] = None
                continue
            sending = partial(_time_sending, running.platform, helper, bundles[row["records"]], runs)
            row["pycti_seconds"] = sending(OpenCTIConnectorHelper.send_stix2_bundle)
            row["push_seconds"] = sending(lambda helper, bundle: push_objects(helper, json.loads(bundle)["objects"]))
    return rows


class _Runs:
    """A connector's enrichments of one response size: durations, objects pushed, peak memory."""

    def __init__(self, connector: ConnectorProcess) -> None:
        self.connector = connector
        self.connector_id = connector.env["CONNECTOR_ID"]
        self.durations: list[float] = []
        self.pushed: list[int] = []
        _reset_peak_rss(connector.pid)

    def enrich(self, platform: FakeOpenCTI, value: str) -> str:
        """Enrich a domain; the bundle of the objects pushed (as the platform's workers receive them)."""
        entity_id = platform.add_entity("Domain-Name", value)
        started = time.time()
        work_id = platform.publish_enrichment(self.connector_id, entity_id)
        work = platform.wait_work_processed(work_id, timeout=900)
        assert not work["in_error"] and work["expectations"], work["message"]
        self.durations.append(work["processed_at"] - started)
        self.pushed.append(work["expectations"])
        objects: dict[str, dict] = {}
        messages = platform.take_pushed_messages(self.connector_id, timeout=60, expected_count=work["expectations"])
        for message in messages:
            for stix_object in decode_bundle(message)["objects"]:
                stix_object.pop("nb_deps", None)  # added by pycti's splitter
                objects[stix_object["id"]] = stix_object
        return json.dumps({"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": list(objects.values())})

    def figures(self) -> dict:
        seconds = statistics.median(self.durations)
        return {
            "seconds": seconds,
            "all_seconds": self.durations,
            "objects": self.pushed[0],
            "ms_per_object": 1000 * seconds / max(self.pushed[0], 1),
            "peak_rss_mib": _peak_rss_mib(self.connector.pid),
        }


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


def _time_sending(
    platform: FakeOpenCTI, helper: OpenCTIConnectorHelper, bundle: str, runs: int, send: Callable[..., object]
) -> float:
    """Median seconds of one way of sending a pre-built bundle, with a work as the connector has."""
    durations = []
    helper.draft_id = ""  # as the helper's listener sets it for a message without a draft
    for _ in range(runs):
        helper.work_id = platform.create_work(helper.connect_id, None)
        started = time.perf_counter()
        send(helper, bundle)
        durations.append(time.perf_counter() - started)
        expected = platform.works[helper.work_id]["expectations"]
        platform.take_pushed_messages(helper.connect_id, timeout=60, expected_count=expected)
    return statistics.median(durations)


def _runs(figures: dict) -> str:
    return ", ".join(f"{seconds:.3f}" for seconds in figures["all_seconds"])


def print_tables(rows: list[dict]) -> None:
    print("| records | this connector (median) | runs (s) | objects | ms per object | peak RSS ", end="")
    print("| existing stand-in (median) | runs (s) | objects | ms per object | peak RSS ", end="")
    print("| time, this / existing | ms per object, this / existing |")
    print("|---:|---:|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    for row in rows:
        ours, theirs = row["ours"], row["legacy"]
        cells = [f"{row['records']:,}"]
        for figures in (ours, theirs):
            cells += (
                [
                    f"{figures['seconds']:.3f} s",
                    _runs(figures),
                    f"{figures['objects']:,}",
                    f"{figures['ms_per_object']:.2f}",
                    f"{figures['peak_rss_mib']:.0f} MiB",
                ]
                if figures is not None
                else ["(not run)", "", "", "", ""]
            )
        if theirs is not None:
            cells.append(f"{ours['seconds'] / theirs['seconds']:.2f}")
            cells.append(f"{ours['ms_per_object'] / theirs['ms_per_object']:.2f}")
        else:
            cells += ["", ""]
        print("| " + " | ".join(cells) + " |")
    print()
    print("| records | this connector (median) | pycti's send_stix2_bundle alone ", end="")
    print("| share beyond pycti's sending ", end="")
    print("| push_objects alone | share beyond its own sending |")
    print("|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        seconds = row["ours"]["seconds"]
        if row["pycti_seconds"] is None:
            continue
        print(
            f"| {row['records']:,} | {seconds:.3f} s | {row['pycti_seconds']:.3f} s | "
            f"{(seconds - row['pycti_seconds']) / seconds:.0%} | {row['push_seconds']:.3f} s | "
            f"{(seconds - row['push_seconds']) / seconds:.0%} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000, 10000, 50000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", choices=PROFILES, default="repeating", help="responses: see responses.py")
    parser.add_argument("--legacy-up-to", type=int, default=10_000, help="largest size the existing one enriches")
    parser.add_argument("--sending-up-to", type=int, default=10_000, help="largest size whose sending is timed")
    args = parser.parse_args()
    print_tables(measure(args.sizes, args.runs, args.profile, args.legacy_up_to, args.sending_up_to))


if __name__ == "__main__":
    main()
