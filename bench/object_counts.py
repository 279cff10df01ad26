"""Objects per enrichment with the core mapping only and with every kind of context, on the same responses.

python bench/object_counts.py [--sizes 10 100 1000 10000]
"""

import argparse
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from responses import generate_rows

from malbeacon_connector.malbeacon.records import parse_records
from malbeacon_connector.pipeline import entity_for_value
from malbeacon_connector.stix.convert import convert
from malbeacon_connector.stix.models import ConversionOptions, Findings, Lookup

CORE = ConversionOptions(infrastructure=False, autonomous_systems=False, countries=False)
FULL = ConversionOptions(user_agents=True)


def count(size: int, options: ConversionOptions) -> Counter[str]:
    entity = entity_for_value("203.0.113.7", "IPv4-Addr", "TLP:AMBER")
    records = parse_records(generate_rows(size, seed=size)).records
    objects = convert([Findings(entity, [Lookup("c2", records)])], options, datetime.now(UTC)).objects
    return Counter(o["relationship_type"] if o["type"] == "relationship" else o["type"] for o in objects)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000, 10000])
    args = parser.parse_args()
    print("| records | core objects | default objects | with user agents | per record (default) | added by default |")
    print("|---:|---:|---:|---:|---:|---|")
    for size in args.sizes:
        core, default, full = count(size, CORE), count(size, ConversionOptions()), count(size, FULL)
        added = ", ".join(
            f"{kind} {default[kind] - core[kind]:+d}" for kind in sorted(default | core) if default[kind] != core[kind]
        )
        print(
            f"| {size:,} | {core.total():,} | {default.total():,} | {full.total():,} | "
            f"{default.total() / size:.2f} | {added} |"
        )


if __name__ == "__main__":
    main()
