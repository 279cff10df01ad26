"""The command line: run the connector (default), `enrich` values standalone, `simulate` the API, `demo`, `health`."""

import argparse
import os
import re
import signal
import sys
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn, TextIO

from malbeacon_connector import __version__, health
from malbeacon_connector.atomic_file import replace_atomically
from malbeacon_connector.malbeacon.client import client_from_settings
from malbeacon_connector.malbeacon.simulator import MalbeaconSimulator, load_sample_data, read_data_file
from malbeacon_connector.opencti.gate import canonical_type
from malbeacon_connector.pipeline import Enriched, LookupOutcome, counted, enrich_entities, entity_for_value
from malbeacon_connector.report import render_csv, render_table, value_reports
from malbeacon_connector.settings import (
    DEFAULT_CONFIG_FILE,
    CommandLineSettings,
    MalbeaconSettings,
    Settings,
    SettingsError,
    health_file_from,
    load_settings,
    read_config_file,
    settings_from,
)
from malbeacon_connector.stix.bundle import bundle_text, make_bundle, merge_objects
from malbeacon_connector.tlp import ALLOWED_TLP_TEXT, MARKING_DEFINITIONS, check_max_tlp, marking_id, normalise_tlp
from malbeacon_connector.values import STIX_TYPES, normalise_value

EXIT_OK, EXIT_API_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_UNHEALTHY = 1  # `health`: not 2, which Docker's HEALTHCHECK reserves
INPUT_MAX_MB = 64
FORMATS = ("stix", "table", "csv")


class UsageError(Exception):
    """Bad arguments or settings: exit status 2 with this message."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and exit with status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see --help)\n")


def _entity_type(text: str) -> str:
    """`--type`, any case, in the OpenCTI spelling (`ipv4-addr` -> `IPv4-Addr`)."""
    entity_type = canonical_type(text)
    if entity_type is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(STIX_TYPES)} (any case)")
    return entity_type


def _output_format(text: str) -> str:
    """`--format`, any case: one of FORMATS."""
    if text.strip().lower() not in FORMATS:
        raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(FORMATS)}")
    return text.strip().lower()


def _port(text: str) -> int:
    """`--port`: 0 (a free port) to 65535."""
    if not re.fullmatch(r"[0-9]{1,5}", text.strip()) or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number from 0 to 65535")
    return int(text)


def _add_config_option(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=default,
        metavar="FILE",
        help=f"settings file, before or after the command (default: ./{DEFAULT_CONFIG_FILE}, which may be absent)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m malbeacon_connector",
        description="Malbeacon enrichment: attacker infrastructure behind C2 panels, as STIX 2.1.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    _add_config_option(parser, None)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", help="without one: run the OpenCTI connector")

    enrich_parser = commands.add_parser("enrich", help="enrich values and write a STIX 2.1 bundle, a table or CSV")
    enrich_parser.add_argument("values", nargs="*", metavar="VALUE", help="IP addresses, domain names, URLs...")
    enrich_parser.add_argument(
        "-t",
        "--type",
        type=_entity_type,
        metavar="TYPE",
        help=f"the type of every value: {', '.join(STIX_TYPES)}, any case (default: inferred from each value)",
    )
    enrich_parser.add_argument(
        "--tlp",
        default="TLP:CLEAR",
        help=f"TLP of the values, given to what is derived from them: {ALLOWED_TLP_TEXT} (default: %(default)s)",
    )
    enrich_parser.add_argument(
        "-i", "--input", type=Path, metavar="FILE", help="a file of values, one per line (# starts a comment)"
    )
    enrich_parser.add_argument(
        "-o", "--output", default="-", metavar="FILE", help="output file, - for standard output (default: %(default)s)"
    )
    enrich_parser.add_argument(
        "-f",
        "--format",
        type=_output_format,
        default="stix",
        metavar="FORMAT",
        help="stix (a STIX 2.1 bundle), or a row per actor: table (plain text) or csv (default: %(default)s)",
    )

    simulate_parser = commands.add_parser("simulate", help="serve the Malbeacon API simulator on loopback")
    simulate_parser.add_argument(
        "--port", type=_port, default=0, help="port, 0-65535, 0 for a free one (default: %(default)s)"
    )
    simulate_parser.add_argument(
        "--data", type=Path, metavar="FILE", help="JSON data file (default: the bundled sample)"
    )
    simulate_parser.add_argument("--api-key", default="simulator-key", help="the key it accepts (default: %(default)s)")

    demo_parser = commands.add_parser("demo", help="enrich sample values against the bundled simulator")
    demo_parser.add_argument(
        "-o", "--output", default="demo-bundle.json", metavar="FILE", help="bundle file (default: %(default)s)"
    )
    health_parser = commands.add_parser(
        "health",
        help="whether the connector writing MALBEACON_HEALTH_FILE is alive and reaches its broker and the platform",
    )
    for subparser in (enrich_parser, simulate_parser, demo_parser, health_parser):
        _add_config_option(subparser, argparse.SUPPRESS)  # given after the command; else the one before it
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    config_file, required = (DEFAULT_CONFIG_FILE, False) if args.config is None else (args.config, True)
    try:
        if args.command == "enrich":
            return run_enrich(args, load_settings(CommandLineSettings, config_file, required).malbeacon)
        if args.command == "simulate":
            return run_simulator(args)
        if args.command == "demo":
            return run_demo(args)
        if args.command == "health":
            return run_health(config_file, required)
        content = read_config_file(config_file, required)
        settings = settings_from(Settings, content)
        from malbeacon_connector.opencti.lifecycle import run  # pycti is imported only to run the connector

        return run(settings, content)
    except (SettingsError, UsageError) as error:
        print(f"malbeacon-connector: {error}", file=sys.stderr)
        return EXIT_USAGE


def _read_values(args: argparse.Namespace) -> list[str]:
    values = list(args.values)
    if args.input is not None:
        values += [line.split("#")[0].strip() for line in _input_lines(args.input) if line.split("#")[0].strip()]
    if not values:
        raise UsageError("nothing to enrich: give values or --input FILE")
    return values


def _input_lines(path: Path) -> list[str]:
    """The lines of `--input` (a file or a pipe), at most INPUT_MAX_MB MiB."""
    limit = INPUT_MAX_MB * 1024 * 1024
    try:
        with path.open("rb") as stream:
            content = stream.read(limit + 1)
    except OSError as error:
        raise UsageError(f"--input {path}: cannot be read ({error.strerror})") from None
    if len(content) > limit:
        raise UsageError(f"--input {path}: cannot be read (larger than {INPUT_MAX_MB} MiB)")
    try:
        return content.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise UsageError(f"--input {path}: cannot be read (not UTF-8 text)") from None


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
    _check_output(args.output)
    try:
        tlp = normalise_tlp(args.tlp)
    except ValueError as error:
        raise UsageError(f"--tlp: {error}") from None
    if not check_max_tlp(tlp, settings.max_tlp):
        raise UsageError(f"--tlp: {tlp} is above MALBEACON_MAX_TLP ({settings.max_tlp}); nothing was sent to Malbeacon")
    targets = _targets(_read_values(args), args.type)
    stream = sys.stderr if args.input and sys.stderr.isatty() else None
    return _deliver(enrich_values(targets, tlp, settings, progress=stream), args.output, args.format)


def _deliver(enriched: Enriched, output: str, output_format: str = "stix") -> int:
    """Write the bundle (or the actors as a table or CSV) and the summary; the exit status: 1 when a
    Malbeacon call failed."""
    text, written, counts = _rendered(enriched, output_format)
    _write(text, output)
    _print_summary(enriched.outcomes, written, counts, output)
    return EXIT_API_FAILED if any(outcome.error for outcome in enriched.outcomes) else EXIT_OK


def _rendered(enriched: Enriched, output_format: str) -> tuple[Iterable[str], str, dict[str, int]]:
    """The text to write (in pieces), what it holds (`46 STIX objects`) and, for a bundle, its objects by type."""
    if output_format == "stix":
        bundle = bundle_for(enriched)
        counts = Counter(o["type"] for o in bundle["objects"])
        return bundle_text(bundle), counted(len(bundle["objects"]), "STIX object"), counts
    reports = value_reports(enriched.outcomes)
    render = render_table if output_format == "table" else render_csv
    rows = sum(len(report.rows) for report in reports)
    return [render(reports)], f"{counted(rows, 'actor row')} ({output_format})", {}


def enrich_values(
    targets: Sequence[tuple[str, str]], tlp: str, settings: MalbeaconSettings, progress: TextIO | None = None
) -> Enriched:
    """Enrich each `(entity type, value)` with the settings' client, drawing progress on `progress` if given."""
    client = client_from_settings(settings)
    try:
        entities = [entity_for_value(value, entity_type, tlp) for entity_type, value in targets]
        draw = None if progress is None else lambda done, total: _draw_progress(progress, done, total)
        return enrich_entities(client, entities, settings, datetime.now(UTC), draw)
    finally:
        client.close()


def bundle_for(enriched: Enriched) -> dict:
    """One bundle: the enriched values (updated when found), their markings, and everything derived from them."""
    entities = [outcome.entity for outcome in enriched.outcomes]
    markings = {
        marking_id(entity.tlp): MARKING_DEFINITIONS[entity.tlp] for entity in entities if entity.tlp != "TLP:CLEAR"
    }
    originals = [entity.stix_object for entity in entities]
    return make_bundle(merge_objects([*markings.values(), *originals], enriched.objects), deterministic=True)


def _draw_progress(stream: TextIO, done: int, total: int, width: int = 30) -> None:
    filled = width * done // total
    stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    if done == total:
        stream.write("\n")
    stream.flush()


def _check_output(output: str) -> None:
    """Refuse an output file that cannot be written, before any Malbeacon request."""
    problem = None if output == "-" else _output_problem(Path(output))
    if problem is not None:
        raise UsageError(f"--output {output}: cannot be written ({problem})")


def _output_problem(path: Path) -> str | None:
    target = Path(os.path.realpath(path))
    if target.is_dir():
        return "it is a directory"
    if target.exists() and not target.is_file():  # a device or a pipe, written in place
        return None if os.access(target, os.W_OK) else "not writable"
    if not target.parent.is_dir():
        return f"no directory {target.parent}"
    if not os.access(target.parent, os.W_OK | os.X_OK):
        return f"directory {target.parent} is not writable"
    return None


def _write(text: Iterable[str], output: str) -> None:
    """Write the pieces of text to standard output, a device, or a file replaced atomically."""
    if output == "-":
        sys.stdout.writelines(text)
        sys.stdout.flush()
        return
    target = Path(os.path.realpath(output))  # through a symbolic link, to the file it names
    try:
        if target.exists() and not target.is_file():
            with target.open("w", encoding="utf-8") as stream:
                stream.writelines(text)
        else:
            replace_atomically(target, text)
    except OSError as error:
        raise UsageError(f"--output {output}: cannot be written ({error.strerror})") from None


def _print_summary(results: Sequence[LookupOutcome], written: str, counts: dict[str, int], output: str) -> None:
    for result in results:
        print(result.summary(), file=sys.stderr)
    found = sum(result.found for result in results)
    failed = sum(result.error is not None for result in results)
    where = "standard output" if output == "-" else output
    print(
        f"{counted(len(results), 'value')}: {found} found, {len(results) - found - failed} not found, "
        f"{failed} failed; {written} written to {where}",
        file=sys.stderr,
    )
    if counts:
        print("  " + ", ".join(f"{kind}: {count}" for kind, count in sorted(counts.items())), file=sys.stderr)


def run_simulator(args: argparse.Namespace) -> int:
    if args.data is not None and not args.data.is_file():
        raise UsageError(f"--data {args.data}: not a regular file")
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


def run_health(config_file: Path, required: bool) -> int:
    """One line on the connector's health; 0 when healthy, else 1 (whatever the reason)."""
    try:
        path = health_file_from(read_config_file(config_file, required))
    except SettingsError as error:
        print(f"unhealthy: cannot tell, the settings are invalid: {'; '.join(error.problems)}", file=sys.stderr)
        return EXIT_UNHEALTHY
    if path is None:
        print("unhealthy: cannot tell, the health file is turned off (MALBEACON_HEALTH_FILE=none)", file=sys.stderr)
        return EXIT_UNHEALTHY
    verdict = health.check(path)
    print(verdict.line, file=sys.stdout if verdict.healthy else sys.stderr)
    return EXIT_OK if verdict.healthy else EXIT_UNHEALTHY


def run_demo(args: argparse.Namespace) -> int:
    _check_output(args.output)
    with MalbeaconSimulator() as simulator:
        settings = MalbeaconSettings(api_key=simulator.api_key, api_base_url=simulator.base_url)
        print(f"Bundled Malbeacon simulator on {simulator.base_url}", file=sys.stderr)
        values = [*sorted(simulator.data.get("c2", {})), "198.51.100.250"]
        enriched = enrich_values(_targets(values, None), "TLP:AMBER", settings)
    return _deliver(enriched, args.output)
