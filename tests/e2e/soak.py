"""A soak run: many enrichments in a row through the real broker, with mixed outcomes.

Used by the short soak test and by `bench/soak.py` (1,000 enrichments and more).
"""

import itertools
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from malbeacon_connector.malbeacon.simulator import Fault, MalbeaconSimulator

from .fake_opencti import FakeOpenCTI

# (entity type, value, markings, expected outcome); the simulator fails every lookup of fail.example.com
MIX = [
    ("Domain-Name", "panel.example.net", [], "found"),
    ("IPv4-Addr", "203.0.113.7", ["TLP:GREEN"], "found"),
    ("IPv4-Addr", "198.51.100.250", [], "not found"),
    ("IPv4-Addr", "203.0.113.7", ["TLP:RED"], "refused"),
    ("Domain-Name", "fail.example.com", [], "failed"),
    ("IPv6-Addr", "2001:db8::7", ["TLP:AMBER"], "found"),
]


def outcome_of(work: dict) -> str:
    message = work["message"] or ""
    if work["in_error"]:
        return "failed"
    if "above MALBEACON_MAX_TLP" in message:
        return "refused"
    return "not found" if "not found in Malbeacon" in message else "found"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


@dataclass
class SoakResult:
    enrichments: int
    seconds: float
    outcomes: Counter[str] = field(default_factory=Counter)
    wrong: list[str] = field(default_factory=list)  # works whose outcome was not the expected one
    reports: Counter[int] = field(default_factory=Counter)  # toProcessed calls per work -> how many works
    rss_after_first_hundred: float = 0.0
    rss_after_all: float = 0.0


def soak(fake: FakeOpenCTI, simulator: MalbeaconSimulator, connector_id: str, pid: int, count: int) -> SoakResult:
    """Enrich `count` entities one after the other (each waited for, bounded); what came of them."""
    simulator.add_fault(Fault(kind="status", status=401, value="fail.example.com"))
    started = time.monotonic()
    result = SoakResult(count, 0.0)
    work_ids = []
    for index, (entity_type, value, markings, expected) in zip(range(count), itertools.cycle(MIX), strict=False):
        work_id = fake.publish_enrichment(connector_id, fake.add_entity(entity_type, value, markings))
        work = fake.wait_work_processed(work_id, timeout=60)
        work_ids.append(work_id)
        result.outcomes[outcome_of(work)] += 1
        if outcome_of(work) != expected:
            result.wrong.append(f"{value}: {work['message']}")
        fake.take_pushed_messages(connector_id, timeout=30, expected_count=work["expectations"])
        if index == 99:
            result.rss_after_first_hundred = rss_mib(pid)
    result.seconds = time.monotonic() - started
    result.rss_after_all = rss_mib(pid)
    processed = Counter(call.variables["id"] for call in fake.calls_for("workEdit", "toProcessed"))
    result.reports = Counter(processed[work_id] for work_id in work_ids)
    return result
