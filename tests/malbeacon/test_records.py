"""Malbeacon rows to beacon records: normalised fields, bad fields and rows counted, never fatal."""

from collections import Counter
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from malbeacon_connector.malbeacon.records import BeaconRecord, IpAddress, ParsedRecords, parse_records
from malbeacon_connector.values import AutonomousSystem, Country

GOOD_ROW = {
    "tstamp": "2020-10-22 09:04:40",
    "actorip": "198.51.100.23",
    "actorhostname": "host-23.example.net",
    "actorasnorg": "AS64500 Example ISP",
    "actorcountrycode": "nl",
    "actorcity": "Amsterdam",
    "actorregion": "North Holland",
    "actortimezone": "Europe/Amsterdam",
    "actorloc": "52.3740,4.8897",
    "c2": "http://c2.example.com/abc/hear.php?a=1&amp;b=2",
    "c2domain": "C2.Example.com",
    "c2domainresolved": "203.0.113.7",
    "c2hostname": "static.example.org.",
    "c2asnorg": "AS64501 Hoster",
    "c2countrycode": "de",
    "c2city": "Berlin",
    "c2region": "Berlin",
    "c2timezone": "Europe/Berlin",
    "c2loc": "52.5200,13.4050",
    "cookie_id": "abc123",
    "useragent": "Mozilla/5.0",
    "tags": "AgentTesla, stealer,agenttesla,NA,,",
}


def parse_one(**fields: object) -> tuple[BeaconRecord, Counter[str]]:
    """The single record parsed from GOOD_ROW with some fields replaced, and the drop counts."""
    parsed = parse_records([{**GOOD_ROW, **fields}])
    assert parsed.received == 1
    assert len(parsed.records) == 1
    return parsed.records[0], parsed.dropped


def test_parse_records_normalises_every_field_of_a_good_row():
    """A complete row keeps every field, normalised, and nothing is counted as dropped."""
    record, dropped = parse_one()
    assert record == BeaconRecord(
        seen_at=datetime(2020, 10, 22, 9, 4, 40, tzinfo=UTC),
        actor_ip=IpAddress("IPv4-Addr", "198.51.100.23"),
        actor_hostname="host-23.example.net",
        actor_asn=AutonomousSystem(64500, "Example ISP"),
        actor_country=Country("NL", "Netherlands"),
        actor_city="Amsterdam",
        actor_region="North Holland",
        actor_timezone="Europe/Amsterdam",
        actor_location="52.3740,4.8897",
        c2_url="http://c2.example.com/abc/hear.php?a=1&b=2",
        c2_domain="c2.example.com",
        c2_domain_resolved=IpAddress("IPv4-Addr", "203.0.113.7"),
        c2_hostname="static.example.org",
        c2_asn=AutonomousSystem(64501, "Hoster"),
        c2_country=Country("DE", "Germany"),
        c2_city="Berlin",
        c2_region="Berlin",
        c2_timezone="Europe/Berlin",
        c2_location="52.5200,13.4050",
        cookie_id="abc123",
        user_agent="Mozilla/5.0",
        tags=("agenttesla", "stealer"),
    )
    assert dropped == Counter()


@pytest.mark.parametrize("missing", ["NA", "", None, "N/A", "na", "  NA  ", "null", "None"])
def test_parse_records_reads_missing_spellings_as_none(missing):
    """Malbeacon's spellings of "missing" leave the field empty without counting a drop."""
    record, dropped = parse_one(actorip=missing, actorhostname=missing, actorcity=missing, tstamp=missing)
    assert record.actor_ip is None
    assert record.actor_hostname is None
    assert record.actor_city is None
    assert record.seen_at is None
    assert dropped == Counter()


def test_parse_records_treats_an_absent_field_as_missing():
    """A row that lacks a field entirely is kept, the field empty."""
    row = {key: value for key, value in GOOD_ROW.items() if key != "actorip"}
    parsed = parse_records([row])
    assert parsed.records[0].actor_ip is None
    assert parsed.records[0].actor_hostname == "host-23.example.net"
    assert parsed.dropped == Counter()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("198.51.100.23", IpAddress("IPv4-Addr", "198.51.100.23")),
        ("2001:DB8:0::17", IpAddress("IPv6-Addr", "2001:db8::17")),
        (" 198.51.100.23 ", IpAddress("IPv4-Addr", "198.51.100.23")),
    ],
)
def test_parse_records_classifies_ip_addresses(text, expected):
    """Actor and resolved C2 addresses carry their canonical value and entity type."""
    record, _ = parse_one(actorip=text, c2domainresolved=text)
    assert record.actor_ip == expected
    assert record.c2_domain_resolved == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2020-10-22 09:04:40", datetime(2020, 10, 22, 9, 4, 40, tzinfo=UTC)),
        ("2020-10-22T09:04:40Z", datetime(2020, 10, 22, 9, 4, 40, tzinfo=UTC)),
        ("2020-10-22T11:04:40+02:00", datetime(2020, 10, 22, 9, 4, 40, tzinfo=UTC)),
        ("2020-10-22T01:04:40-08:00", datetime(2020, 10, 22, 9, 4, 40, tzinfo=UTC)),
        ("2020-10-22T00:30:00+01:00", datetime(2020, 10, 21, 23, 30, tzinfo=UTC)),
    ],
)
def test_parse_records_reads_timestamps_as_utc(text, expected):
    """Zone-less timestamps are UTC; timestamps with a zone are converted to UTC."""
    record, _ = parse_one(tstamp=text)
    assert record.seen_at == expected
    assert record.seen_at.utcoffset().total_seconds() == 0


@pytest.mark.parametrize("text", ["yesterday", "2020-13-01 00:00:00", "22/10/2020 09:04", "2020-10-22 25:00:00"])
def test_parse_records_counts_a_bad_timestamp_and_keeps_the_rest_of_the_row(text):
    """An unreadable tstamp is counted and left out; the other fields of the row remain."""
    record, dropped = parse_one(tstamp=text)
    assert record.seen_at is None
    assert record.actor_ip == IpAddress("IPv4-Addr", "198.51.100.23")
    assert record.actor_hostname == "host-23.example.net"
    assert dropped == Counter({"tstamp: not a date and time": 1})


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_parse_records_counts_a_timestamp_outside_the_utc_range(text):
    """A timestamp whose UTC conversion falls outside datetime's range is a bad field, not a crash."""
    record, dropped = parse_one(tstamp=text)
    assert record.seen_at is None
    assert record.actor_ip == IpAddress("IPv4-Addr", "198.51.100.23")
    assert dropped == Counter({"tstamp: not a date and time": 1})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("AgentTesla, stealer,agenttesla,NA,,", ("agenttesla", "stealer")),
        ("  Formbook  ", ("formbook",)),
        ("b,a,B,A", ("b", "a")),
        ("NA,N/A, ,", ()),
        (",,", ()),
    ],
)
def test_parse_records_splits_and_normalises_tags(text, expected):
    """Tags are split on commas, stripped, lower-cased, de-duplicated in order, missing ones removed."""
    record, _ = parse_one(tags=text)
    assert record.tags == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://example.com/abc/hear.php?a=1&amp;b=2", "http://example.com/abc/hear.php?a=1&b=2"),
        ("http://example.com/?q=x&amp;amp;", "http://example.com/?q=x&amp;"),
        ("http://example.com/?q=&lt;x&gt;", None),  # < and > have no place in a URI (STIX's uri format)
        ("http://example.com/plain", "http://example.com/plain"),
    ],
)
def test_parse_records_html_unescapes_the_c2_url(text, expected):
    """The C2 URL is HTML-unescaped exactly once."""
    record, _ = parse_one(c2=text)
    assert record.c2_url == expected


@pytest.mark.parametrize(("value", "expected"), [(64500, "64500"), (1.5, "1.5"), (0, "0")])
def test_parse_records_coerces_numbers_to_text(value, expected):
    """A number where text is expected is kept as its text."""
    record, dropped = parse_one(actorcity=value, cookie_id=value)
    assert record.actor_city == expected
    assert record.cookie_id == expected
    assert dropped == Counter()


@pytest.mark.parametrize("value", [True, False, ["a"], {"a": "b"}, []])
def test_parse_records_counts_non_string_fields(value):
    """Booleans, lists and objects are counted as "not a string" and only that field is lost."""
    record, dropped = parse_one(actorcity=value, actorip=value)
    assert record.actor_city is None
    assert record.actor_ip is None
    assert record.actor_hostname == "host-23.example.net"
    assert dropped == Counter({"actorcity: not a string": 1, "actorip: not a string": 1})


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("actorasnorg", "Example ISP", "actorasnorg: no AS number"),
        ("c2asnorg", "AS0", "c2asnorg: no AS number"),
        ("actorcountrycode", "XX", "actorcountrycode: not a country code"),
        ("c2countrycode", "Germany", "c2countrycode: not a country code"),
        ("c2", "not a url", "c2: not a URL"),
        ("useragent", "agent\u0000with NUL", "useragent: not a user agent"),
        ("actorcity", "\u200b\u202e", "actorcity: control characters removed"),  # nothing left after cleaning
        ("actorasnorg", "AS\u0661\u0662", "actorasnorg: no AS number"),  # Arabic-Indic digits are no AS number
        ("actorcountrycode", "\u00df", "actorcountrycode: not a country code"),  # "ß".upper() is "SS"
    ],
)
def test_parse_records_counts_unusable_context_fields(field, value, reason):
    """Context that names nothing valid is left out and counted; nothing is invented from it."""
    record, dropped = parse_one(**{field: value})
    assert dropped == Counter({reason: 1})
    assert record.actor_ip == IpAddress("IPv4-Addr", "198.51.100.23")


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("actorip", "999.1.2.3", "actorip: not an IP address"),
        ("c2domainresolved", "fe80::1%eth0", "c2domainresolved: not an IP address"),
        ("actorhostname", "localhost", "actorhostname: not a valid host name"),
        ("c2domain", "_x", "c2domain: not a valid host name"),
        ("c2hostname", "host.", "c2hostname: not a valid host name"),
    ],
)
def test_parse_records_counts_an_invalid_field_by_field_and_reason(field, value, reason):
    """An invalid value is dropped and counted under `field: reason`."""
    record, dropped = parse_one(**{field: value})
    assert dropped == Counter({reason: 1})
    assert record.tags == ("agenttesla", "stealer")


@pytest.mark.parametrize(
    "bad_row",
    [
        pytest.param({k: v for k, v in GOOD_ROW.items() if k != "tstamp"}, id="missing-tstamp"),
        pytest.param({**GOOD_ROW, "actorhostname": "localhost"}, id="hostname-localhost"),
        pytest.param({**GOOD_ROW, "actorhostname": "_x"}, id="hostname-underscore"),
        pytest.param({**GOOD_ROW, "actorhostname": "host."}, id="hostname-single-label-with-dot"),
        pytest.param({**GOOD_ROW, "actorasnorg": {"asn": 64500}}, id="non-string-field"),
        pytest.param("not a row", id="row-not-an-object"),
    ],
)
def test_one_bad_record_keeps_every_other_record(bad_row):
    """Failure mode 3 of the existing connector: one bad row must not discard the others."""
    others = [{**GOOD_ROW, "actorip": f"198.51.100.{number}"} for number in (1, 2, 3)]
    expected = parse_records(others).records
    parsed = parse_records([others[0], bad_row, others[1], others[2]])
    assert parsed.received == 4
    if isinstance(bad_row, dict):
        assert len(parsed.records) == 4
        assert [parsed.records[i] for i in (0, 2, 3)] == expected
    else:
        assert parsed.records == expected


@pytest.mark.parametrize(
    ("hostname", "reason"),
    [
        ("localhost", "actorhostname: not a valid host name"),
        ("_x", "actorhostname: not a valid host name"),
        ("host.", "actorhostname: not a valid host name"),
    ],
)
def test_a_bad_host_name_loses_only_that_field(hostname, reason):
    """The record with a bad host name is kept with its other fields."""
    record, dropped = parse_one(actorhostname=hostname)
    assert record.actor_hostname is None
    assert record.actor_ip == IpAddress("IPv4-Addr", "198.51.100.23")
    assert record.seen_at == datetime(2020, 10, 22, 9, 4, 40, tzinfo=UTC)
    assert dropped == Counter({reason: 1})


@pytest.mark.parametrize("row", ["text", 42, None, ["a", "b"], True])
def test_parse_records_drops_a_row_that_is_not_an_object(row):
    """A non-object row is dropped whole and counted, the other rows unaffected."""
    parsed = parse_records([GOOD_ROW, row, GOOD_ROW])
    assert parsed.received == 3
    assert len(parsed.records) == 2
    assert parsed.rows_dropped == 1
    assert parsed.dropped == Counter({"row: not a JSON object": 1})


def test_parse_records_of_no_rows_is_empty():
    """An empty response gives no records and no counts."""
    parsed = parse_records([])
    assert parsed == ParsedRecords()
    assert parsed.rows_dropped == 0


def test_parsed_records_extend_adds_records_and_counts():
    """Extending sums received rows and drop counts and appends the records in order."""
    first = parse_records([{**GOOD_ROW, "actorip": "198.51.100.1", "tstamp": "bad"}, "x"])
    second = parse_records([{**GOOD_ROW, "actorip": "198.51.100.2", "tstamp": "bad"}, 1, 2])
    first.extend(second)
    assert first.received == 5
    assert [record.actor_ip.value for record in first.records] == ["198.51.100.1", "198.51.100.2"]
    assert first.dropped == Counter({"tstamp: not a date and time": 2, "row: not a JSON object": 3})
    assert first.rows_dropped == 3


# ---------------------------------------------------------------- properties

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64),
    st.floats(),
    st.text(max_size=30),
    st.sampled_from(["NA", "N/A", "", "198.51.100.23", "2001:db8::1", "example.com", "localhost", "_x", "host."]),
    st.datetimes(timezones=st.one_of(st.none(), st.timezones())).map(lambda moment: moment.isoformat()),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)
FIELD_NAMES = st.sampled_from([*GOOD_ROW, "emailaddress", "unknown"])
ROWS = st.one_of(
    st.dictionaries(FIELD_NAMES, JSON_VALUES, max_size=len(GOOD_ROW)),
    st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=4),
    JSON_VALUES,
)


@given(st.lists(ROWS, max_size=8))
def test_parse_records_never_raises_and_accounts_for_every_row(rows):
    """Any JSON-like response parses; every row is either a record or a counted whole-row drop."""
    parsed = parse_records(rows)
    objects = sum(isinstance(row, dict) for row in rows)
    whole_rows = parsed.dropped["row: not a JSON object"] + parsed.dropped["row: no usable field"]
    assert parsed.received == len(rows)
    assert parsed.dropped["row: not a JSON object"] == len(rows) - objects
    assert len(parsed.records) + whole_rows == parsed.received
    assert parsed.rows_dropped == whole_rows
    assert all(record != BeaconRecord() for record in parsed.records)
    for record in parsed.records:
        assert record.seen_at is None or record.seen_at.utcoffset().total_seconds() == 0


def test_a_row_with_no_usable_field_is_dropped_so_an_empty_answer_is_not_a_c2():
    """The old connector marked a value as a C2 for answers that said nothing; such rows are counted instead."""
    parsed = parse_records([{}, {"foo": 1}, {"actorip": "garbage", "tstamp": "NA"}, {"tags": "formbook"}])
    assert len(parsed.records) == 1
    assert parsed.dropped["row: no usable field"] == 3


@pytest.mark.parametrize("field", ["actorhostname", "c2", "useragent", "tags", "actorip", "tstamp", "actorasnorg"])
def test_enormous_field_values_are_dropped_or_kept_without_harm(field):
    """A megabyte in one field: counted as invalid (or kept as bounded text), never fatal, the row kept."""
    parsed = parse_records([{**GOOD_ROW, field: "a" * 1_000_000}])
    assert len(parsed.records) == 1
    assert parsed.records[0].actor_ip is not None or field == "actorip"
