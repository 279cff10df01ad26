"""The command line: run the connector (default), `enrich` values standalone, `simulate` the API, `demo`."""

import argparse
import json
import signal
import sys
import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from . import __version__
from .bundle import make_bundle, merge_objects
from .client import client_from_settings
from .converter import convert
from .enrichment import EnrichmentResult, conversion_options, enrich, entity_for_value, lookup_plan
from .settings import EnrichSettings, MalbeaconSettings, SettingsError, load_settings
from .simulator import MalbeaconSimulator, load_sample_data, read_data_file
from .tlp import MARKING_DEFINITIONS, normalise_tlp, tlp_rank
from .values import STIX_TYPES, normalise_value

EXIT_OK, EXIT_API_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad arguments or settings: exit status 2 with this message."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m malbeacon_connector",
        description="Malbeacon enrichment: attacker infrastructure behind C2 panels, as STIX 2.1.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument("--config", type=Path, default=Path("config.yml"), help="settings file (default: ./config.yml)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", help="without one: run the OpenCTI connector")

    enrich_parser = commands.add_parser("enrich", help="enrich values and write a STIX 2.1 bundle")
    enrich_parser.add_argument("values", nargs="*", metavar="VALUE", help="IP addresses or domain names")
    enrich_parser.add_argument(
        "--type", choices=list(STIX_TYPES), help="the type of every value (inferred when omitted)"
    )
    enrich_parser.add_argument(
        "--tlp", default="TLP:CLEAR", help="TLP of the values, given to what is derived from them"
    )
    enrich_parser.add_argument("--input", type=Path, help="a file of values, one per line (# starts a comment)")
    enrich_parser.add_argument("--output", default="-", help="bundle file, - for standard output (default)")

    simulate_parser = commands.add_parser("simulate", help="serve the Malbeacon API simulator on loopback")
    simulate_parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    simulate_parser.add_argument("--data", type=Path, help="JSON data file (default: the bundled sample)")
    simulate_parser.add_argument("--api-key", default="simulator-key", help="the key it accepts")

    demo_parser = commands.add_parser("demo", help="enrich sample values against the bundled simulator")
    demo_parser.add_argument("--output", default="demo-bundle.json", help="bundle file (default: demo-bundle.json)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "enrich":
            return run_enrich(args, load_settings(EnrichSettings, args.config).malbeacon)
        if args.command == "simulate":
            return run_simulator(args)
        if args.command == "demo":
            return run_demo(args)
        from .connector import run  # pycti is imported only to run the connector

        return run(args.config)
    except SettingsError as error:
        print(f"malbeacon-connector: {error}", file=sys.stderr)
        return EXIT_USAGE
    except UsageError as error:
        print(f"malbeacon-connector: {error}", file=sys.stderr)
        return EXIT_USAGE


def _read_values(args: argparse.Namespace) -> list[str]:
    values = list(args.values)
    if args.input is not None:
        try:
            lines = args.input.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise UsageError(f"--input {args.input}: cannot be read ({error.__class__.__name__})") from None
        values += [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]
    if not values:
        raise UsageError("nothing to enrich: give values or --input FILE")
    return values


def _targets(values: Iterable[str], entity_type: str | None) -> list[tuple[str, str]]:
    targets: dict[tuple[str, str], None] = {}
    problems = []
    for value in values:
        try:
            targets[normalise_value(value, entity_type)] = None
        except ValueError as error:
            problems.append(str(error))
    if problems:
        raise UsageError("cannot enrich:\n" + "\n".join(f"  - {problem}" for problem in problems))
    return list(targets)


def run_enrich(args: argparse.Namespace, settings: MalbeaconSettings) -> int:
    try:
        tlp = normalise_tlp(args.tlp)
    except ValueError as error:
        raise UsageError(f"--tlp: {error}") from None
    if tlp_rank(tlp) > tlp_rank(settings.max_tlp):
        raise UsageError(f"--tlp: {tlp} is above MALBEACON_MAX_TLP ({settings.max_tlp}); nothing was sent to Malbeacon")
    targets = _targets(_read_values(args), args.type)
    results = enrich_values(targets, tlp, settings, progress=sys.stderr if args.input and sys.stderr.isatty() else None)
    bundle = bundle_for(results, settings)
    _write(bundle, args.output)
    _print_summary(results, bundle, args.output)
    return EXIT_API_FAILED if any(result.error for result in results) else EXIT_OK


def enrich_values(
    targets: Sequence[tuple[str, str]], tlp: str, settings: MalbeaconSettings, progress: TextIO | None = None
) -> list[EnrichmentResult]:
    """Enrich each `(value, entity type)` with the settings' client, reporting progress if asked."""
    client = client_from_settings(settings)
    plan = lookup_plan(settings)
    results = []
    try:
        for done, (value, entity_type) in enumerate(targets, start=1):
            entity = entity_for_value(value, entity_type, tlp)
            results.append(enrich(client, entity, plan[entity_type], settings.max_records))
            if progress is not None:
                _draw_progress(progress, done, len(targets))
    finally:
        client.close()
    return results


def bundle_for(results: Sequence[EnrichmentResult], settings: MalbeaconSettings) -> dict:
    """One bundle: the enriched values (updated when found) and everything derived from them."""
    enrichments = [result.as_enrichment() for result in results]
    conversion = convert(enrichments, conversion_options(settings), now=datetime.now(UTC))
    originals = [result.entity.stix_object for result in results]
    markings = {
        MARKING_DEFINITIONS[result.entity.tlp]["id"]: MARKING_DEFINITIONS[result.entity.tlp]
        for result in results
        if result.entity.tlp != "TLP:CLEAR"
    }
    return make_bundle(merge_objects([*markings.values(), *originals], conversion.objects))


def _draw_progress(stream: TextIO, done: int, total: int, width: int = 30) -> None:
    filled = width * done // total
    stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    if done == total:
        stream.write("\n")
    stream.flush()


def _write(bundle: dict, output: str) -> None:
    text = json.dumps(bundle, indent=2, ensure_ascii=False) + "\n"
    if output == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as error:
        raise UsageError(f"--output {output}: cannot be written ({error.strerror})") from None


def _print_summary(results: Sequence[EnrichmentResult], bundle: dict, output: str) -> None:
    for result in results:
        print(result.summary(), file=sys.stderr)
    counts: dict[str, int] = {}
    for stix_object in bundle["objects"]:
        counts[stix_object["type"]] = counts.get(stix_object["type"], 0) + 1
    found = sum(result.found for result in results)
    failed = sum(result.error is not None for result in results)
    where = "standard output" if output == "-" else output
    print(
        f"{len(results)} values: {found} found, {len(results) - found - failed} not found, {failed} failed; "
        f"{len(bundle['objects'])} STIX objects written to {where}",
        file=sys.stderr,
    )
    if counts:
        print("  " + ", ".join(f"{kind}: {count}" for kind, count in sorted(counts.items())), file=sys.stderr)


def run_simulator(args: argparse.Namespace) -> int:
    try:
        data = read_data_file(args.data) if args.data else load_sample_data()
    except (OSError, ValueError) as error:
        raise UsageError(f"--data: {error}") from None
    try:
        simulator = MalbeaconSimulator(data, api_key=args.api_key, port=args.port).start()
    except OSError as error:
        raise UsageError(f"--port {args.port}: {error.strerror}") from None
    stop = threading.Event()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signal_number, lambda *_: stop.set())
    print(
        f"Malbeacon API simulator (a test double, not Malbeacon) listening on {simulator.base_url} "
        f"(API key: {args.api_key})",
        flush=True,
    )
    stop.wait()
    simulator.stop()
    return EXIT_OK


def run_demo(args: argparse.Namespace) -> int:
    with MalbeaconSimulator() as simulator:
        settings = MalbeaconSettings(api_key=simulator.api_key, api_base_url=simulator.base_url)
        print(f"Bundled Malbeacon simulator on {simulator.base_url}", file=sys.stderr)
        values = [*sorted(simulator.data.get("c2", {})), "198.51.100.250"]
        results = enrich_values(_targets(values, None), "TLP:AMBER", settings)
    bundle = bundle_for(results, settings)
    _write(bundle, args.output)
    _print_summary(results, bundle, args.output)
    return EXIT_API_FAILED if any(result.error for result in results) else EXIT_OK
