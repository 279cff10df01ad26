"""Analyst reports: a row per actor from the parsed records, rendered as a table or as CSV."""

import csv
import io
from datetime import UTC, datetime, timedelta, timezone

import pytest

from malbeacon_connector.malbeacon.errors import Unauthorized
from malbeacon_connector.malbeacon.records import BeaconRecord, IpAddress, parse_records
from malbeacon_connector.pipeline import LookupOutcome, entity_for_value
from malbeacon_connector.report import (
    COLUMNS,
    CSV_COLUMNS,
    MAX_CELL_CHARS,
    ActorRow,
    ValueReport,
    iso_time,
    render_csv,
    render_table,
    value_report,
    value_reports,
)
from malbeacon_connector.stix.models import Lookup


def row(**fields: str) -> dict[str, str]:
    """A Malbeacon API row: the fields given, the others Malbeacon's "NA"."""
    return {"tstamp": "NA", "actorip": "NA", "actorhostname": "NA", "c2": "NA", "c2domain": "NA", **fields}


def outcome(value: str, entity_type: str, *lookups: tuple[str, list[dict]]) -> LookupOutcome:
    """What the pipeline makes of some endpoints' answers (API rows) for one value."""
    result = LookupOutcome(entity_for_value(value, entity_type, "TLP:CLEAR"))
    for endpoint, rows in lookups:
        parsed = parse_records(rows)
        result.lookups.append(Lookup(endpoint, parsed.records))
        result.parsed.extend(parsed)
    return result


def with_records(value: str, entity_type: str, endpoint: str, *records: BeaconRecord) -> LookupOutcome:
    """An outcome of records made directly (values the parser would have refused or cleaned)."""
    result = LookupOutcome(entity_for_value(value, entity_type, "TLP:CLEAR"))
    result.lookups.append(Lookup(endpoint, list(records)))
    result.parsed.received = len(records)
    return result


PANEL = "http://203.0.113.7/panel/gate.php"


def test_the_records_of_an_actor_make_one_row_with_everything_they_say():
    broadband = {"actorasnorg": "AS64500 Example Broadband", "actorcountrycode": "nl", "c2domain": "panel.example.net"}
    mobile = {"actorasnorg": "AS64501 Example Mobile", "actorcountrycode": "DE", "c2": PANEL}
    rows = [
        row(tstamp="2021-03-01 12:00:00", actorip="198.51.100.23", c2=PANEL, tags="stealer,formbook"),
        row(tstamp="2020-10-22 09:04:40", actorip="198.51.100.23", tags="agenttesla,stealer", **broadband),
        row(tstamp="2020-12-24 18:30:00", actorip="198.51.100.23", tags="agenttesla", **mobile),
    ]
    report = value_report(outcome("198.51.100.23", "IPv4-Addr", ("c2", rows)))
    assert report.heading == "198.51.100.23 (IPv4-Addr): 1 actor"
    (actor,) = report.rows
    assert actor.cells() == [
        "198.51.100.23",
        "IPv4-Addr",
        "AS64500 Example Broadband, AS64501 Example Mobile",
        "DE Germany, NL Netherlands",
        "2020-10-22T09:04:40Z",
        "2021-03-01T12:00:00Z",
        "203.0.113.7, panel.example.net",
        "agenttesla, formbook, stealer",
    ]


def test_rows_are_sorted_ipv4_then_ipv6_numerically_then_host_names_whatever_the_record_order():
    rows = [
        row(actorip="2001:db8::10", tstamp="2020-11-01 00:00:00"),
        row(actorhostname="b.attacker.example", tstamp="2020-11-01 00:00:00"),
        row(actorip="192.0.2.10", tstamp="2020-11-01 00:00:00"),
        row(actorip="2001:db8::9", actorhostname="a.attacker.example", tstamp="2020-11-01 00:00:00"),
        row(actorip="192.0.2.9", tstamp="2020-11-01 00:00:00"),
    ]
    expected = [
        ("192.0.2.9", "IPv4-Addr"),
        ("192.0.2.10", "IPv4-Addr"),
        ("2001:db8::9", "IPv6-Addr"),
        ("2001:db8::10", "IPv6-Addr"),
        ("a.attacker.example", "Domain-Name"),
        ("b.attacker.example", "Domain-Name"),
    ]
    for ordered in (rows, rows[::-1]):
        report = value_report(outcome("203.0.113.7", "IPv4-Addr", ("c2", ordered)))
        assert [(actor.value, actor.entity_type) for actor in report.rows] == expected
    assert report.heading == "203.0.113.7 (IPv4-Addr): 6 actors"


def test_the_panel_is_the_c2_domain_else_its_url_host_else_the_enriched_c2():
    report = value_report(
        outcome(
            "203.0.113.7",
            "IPv4-Addr",
            (
                "c2",
                [
                    row(actorip="192.0.2.1", c2domain="panel.example.net", c2="http://203.0.113.80/x"),
                    row(actorip="192.0.2.2", c2="http://[2001:db8::7]/c2/index.php"),
                    row(actorip="192.0.2.3"),
                ],
            ),
        )
    )
    assert [actor.panels for actor in report.rows] == [("panel.example.net",), ("2001:db8::7",), ("203.0.113.7",)]


def test_an_enriched_actor_is_a_row_of_its_own_and_records_of_several_lookups_are_gathered():
    report = value_report(
        outcome(
            "198.51.100.23",
            "IPv4-Addr",
            ("c2", [row(actorip="192.0.2.1", tstamp="2021-01-01 00:00:00")]),
            ("actorip", [row(c2=PANEL, tstamp="2021-02-01 00:00:00"), row(actorhostname="dsl.isp.example")]),
        )
    )
    assert [(actor.value, actor.panels, iso_time(actor.last_seen)) for actor in report.rows] == [
        ("192.0.2.1", ("198.51.100.23",), "2021-01-01T00:00:00Z"),
        ("198.51.100.23", ("203.0.113.7",), "2021-02-01T00:00:00Z"),
        ("dsl.isp.example", (), ""),
    ]


def test_values_not_found_and_failed_have_no_rows_and_say_why():
    failed = outcome("203.0.113.8", "IPv4-Addr", ("c2", [row(actorip="192.0.2.1")]))
    failed.error = Unauthorized("Malbeacon refused the API key (401); check MALBEACON_API_KEY")
    reports = value_reports([outcome("198.51.100.250", "IPv4-Addr", ("c2", [])), failed])
    assert [(report.heading, report.rows) for report in reports] == [
        ("198.51.100.250 (IPv4-Addr): not found in Malbeacon", ()),
        ("203.0.113.8 (IPv4-Addr): failed: Malbeacon refused the API key (401); check MALBEACON_API_KEY", ()),
    ]
    assert render_table(reports) == (
        "198.51.100.250 (IPv4-Addr): not found in Malbeacon\n"
        "\n"
        "203.0.113.8 (IPv4-Addr): failed: Malbeacon refused the API key (401); check MALBEACON_API_KEY\n"
    )
    assert render_csv(reports) == ",".join(CSV_COLUMNS) + "\r\n"


def test_found_records_without_any_actor_give_a_heading_of_no_actors():
    report = value_report(outcome("203.0.113.7", "IPv4-Addr", ("c2", [row(c2=PANEL, tstamp="2021-01-01 00:00:00")])))
    assert (report.heading, report.rows) == ("203.0.113.7 (IPv4-Addr): 0 actors", ())
    assert render_table([report]) == "203.0.113.7 (IPv4-Addr): 0 actors\n"
    unusable = value_report(outcome("203.0.113.9", "IPv4-Addr", ("c2", ["not a row", row(actorip="not an IP")])))
    assert unusable.heading == "203.0.113.9 (IPv4-Addr): 0 actors"  # Malbeacon answered: not "not found"


def test_times_are_iso_8601_utc_to_the_second():
    moment = datetime(2020, 10, 22, 11, 4, 40, 987654, tzinfo=timezone(timedelta(hours=2)))
    assert iso_time(moment) == "2020-10-22T09:04:40Z"
    assert iso_time(None) == ""


SAMPLE = ValueReport(
    "203.0.113.7",
    "IPv4-Addr",
    (
        ActorRow(
            "192.0.2.44",
            "IPv4-Addr",
            ("AS64502 Example Mobile",),
            ("DE Germany",),
            datetime(2020, 11, 2, 18, 40, 13, tzinfo=UTC),
            datetime(2020, 11, 2, 18, 40, 13, tzinfo=UTC),
            ("203.0.113.7",),
            ("agenttesla",),
        ),
        ActorRow("vpn-exit.example.org", "Domain-Name"),
    ),
)


def test_the_table_has_a_heading_then_aligned_columns_with_a_dash_for_what_is_unknown():
    assert render_table([SAMPLE, ValueReport("198.51.100.250", "IPv4-Addr", problem="not found in Malbeacon")]) == (
        "203.0.113.7 (IPv4-Addr): 2 actors\n"
        "  value                 type         autonomous system       country     first seen            "
        "last seen             C2 panels    tags\n"
        "  --------------------  -----------  ----------------------  ----------  --------------------  "
        "--------------------  -----------  ----------\n"
        "  192.0.2.44            IPv4-Addr    AS64502 Example Mobile  DE Germany  2020-11-02T18:40:13Z  "
        "2020-11-02T18:40:13Z  203.0.113.7  agenttesla\n"
        "  vpn-exit.example.org  Domain-Name  -                       -           -                     "
        "-                     -            -\n"
        "\n"
        "198.51.100.250 (IPv4-Addr): not found in Malbeacon\n"
    )


def test_the_table_cuts_wide_cells_short_with_an_ellipsis_and_csv_keeps_them_whole():
    tags = tuple(f"family-{number:02}" for number in range(12))
    report = ValueReport("203.0.113.7", "IPv4-Addr", (ActorRow("192.0.2.44", "IPv4-Addr", tags=tags),))
    table_row = render_table([report]).splitlines()[3]
    shown = table_row.split("  ")[-1]
    assert len(shown) == MAX_CELL_CHARS
    assert shown == ", ".join(tags)[: MAX_CELL_CHARS - 1] + "…"
    (parsed,) = list(csv.reader(io.StringIO(render_csv([report]))))[1:]
    assert parsed[-1] == ", ".join(tags)


def test_the_table_removes_control_characters_that_would_rewrite_a_terminal():
    record = BeaconRecord(actor_ip=IpAddress("IPv4-Addr", "192.0.2.44"), tags=("\x1b[2Jevil\x07",))
    table = render_table([value_report(with_records("203.0.113.7", "IPv4-Addr", "c2", record))])
    assert "evil" in table and "\x1b" not in table and "\x07" not in table


def test_csv_has_a_header_and_a_row_per_actor_quoted_as_rfc_4180():
    quoted = ActorRow("192.0.2.1", "IPv4-Addr", ('AS64500 Example "Net", Inc.',), tags=("a\nb", "c"))
    reports = [SAMPLE, ValueReport("192.0.2.200", "IPv4-Addr", (quoted,))]
    text = render_csv(reports)
    assert text.startswith("enriched value,value,type,autonomous system,")
    assert text.endswith("\r\n") and text.count("\r\n") == 4  # the line break inside a quoted cell stays bare
    assert '"AS64500 Example ""Net"", Inc."' in text
    assert list(csv.reader(io.StringIO(text, newline=""))) == [
        list(CSV_COLUMNS),
        ["203.0.113.7", *SAMPLE.rows[0].cells()],
        ["203.0.113.7", "vpn-exit.example.org", "Domain-Name", "", "", "", "", "", ""],
        ["192.0.2.200", "192.0.2.1", "IPv4-Addr", 'AS64500 Example "Net", Inc.', "", "", "", "", "a\nb, c"],
    ]
    assert list(CSV_COLUMNS[1:]) == list(COLUMNS)


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_csv_cells_that_a_spreadsheet_would_evaluate_are_neutralised(start):
    formula = f'{start}HYPERLINK("http://attacker.example","x")'
    actor = ActorRow("192.0.2.1", "IPv4-Addr", (f"AS64500 {formula}",), tags=(formula, "loader"))
    report = ValueReport(formula, "User-Agent", (actor,))
    (cells,) = list(csv.reader(io.StringIO(render_csv([report]), newline="")))[1:]
    assert cells[0] == f"'{formula}"  # the enriched value
    assert cells[3] == f"AS64500 {formula}"  # not at the start of the cell: left as it is
    assert cells[-1] == f"'{formula}, loader"
    assert [cell for cell in cells if cell.startswith(("=", "+", "-", "@", "\t", "\r"))] == []
    assert cells[1:3] == ["192.0.2.1", "IPv4-Addr"]  # cells that start with none of them are unchanged
