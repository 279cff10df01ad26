"""Hostile answers: no field loses a record, no text reaches an operator raw, nothing unbounded is kept,
and what is kept is fit for detection and for STIX."""

import json
from collections import Counter
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from malbeacon_connector.malbeacon.records import MAX_FIELD_CHARS, MAX_TAGS, parse_records
from malbeacon_connector.memo import MEMO_KEY_CHARS, short_memo
from malbeacon_connector.pipeline import entity_for_value
from malbeacon_connector.stix.convert import convert
from malbeacon_connector.stix.models import ConversionOptions, Findings, Lookup
from malbeacon_connector.text import clean_text
from malbeacon_connector.values import normalise_hostname, normalise_ip, normalise_url, parse_asn, parse_country
from stix_checks import assert_valid_bundle, full_bundle

NOW = datetime(2026, 12, 1, tzinfo=UTC)
ROW = {"tstamp": "2024-05-01 10:00:00", "actorip": "198.51.100.23", "actorhostname": "host.example.com"}


def parse_one(**fields: object):
    parsed = parse_records([{**ROW, **fields}])
    assert len(parsed.records) == 1
    return parsed.records[0], parsed.dropped


def bundle_of(rows: list[object], value: str = "panel.example.net", entity_type: str = "Domain-Name") -> dict:
    entity = entity_for_value(value, entity_type, "TLP:AMBER")
    objects = convert([Findings(entity, [Lookup("c2", parse_records(rows).records)])], ConversionOptions(), NOW)
    return full_bundle(objects.objects, entity.stix_object)


def test_a_lone_surrogate_is_removed_and_counted_and_the_bundle_encodes():
    record, dropped = parse_one(tags="stealer,\udc00bot", actorcity="Ams\ud800terdam")
    assert record.tags == ("stealer", "bot") and record.actor_city == "Amsterdam"
    assert dropped == Counter({"tags: control characters removed": 1, "actorcity: control characters removed": 1})
    bundle = bundle_of([{**ROW, "tags": "stealer,\udc00bot"}])
    json.dumps(bundle, ensure_ascii=False).encode("utf-8")  # raised UnicodeEncodeError before
    assert_valid_bundle(bundle)


@pytest.mark.parametrize(
    ("text", "cleaned"),
    [
        ("\x1b]0;pwned\x07title", "]0;pwnedtitle"),  # OSC: retitles a terminal
        ("\x1b[2Jclear", "[2Jclear"),
        ("\u202eexe.txt", "exe.txt"),  # bidi override: hides what a name is
        ("a\x85b\x9bc", "a bc"),  # C1: NEL (a line break) and CSI
        ("tab\tand\nline", "tab and line"),
        ("plain, with ünïcödé", "plain, with ünïcödé"),
    ],
)
def test_control_format_and_surrogate_characters_never_pass(text, cleaned):
    assert clean_text(text) == cleaned
    record, _ = parse_one(actorregion=text)
    assert record.actor_region == cleaned.strip()


def test_long_fields_and_many_tags_are_bounded_and_counted():
    record, dropped = parse_one(
        actorasnorg="AS64500 " + "x" * MAX_FIELD_CHARS,
        tags=",".join(f"tag{number}" for number in range(50)) + "," + "y" * 65,
    )
    assert record.actor_asn is None and len(record.tags) == MAX_TAGS
    assert dropped == Counter(
        {
            f"actorasnorg: longer than {MAX_FIELD_CHARS} characters": 1,
            f"tags: more than {MAX_TAGS}, the rest ignored": 1,
        }
    )
    assert "y" * 65 not in record.tags


def test_memoisation_keeps_only_short_texts():
    calls = []

    @short_memo
    def length(text: str) -> int:
        calls.append(text)
        return len(text)

    short, long = "a" * MEMO_KEY_CHARS, "b" * (MEMO_KEY_CHARS + 1)
    assert [length(short), length(short), length(long), length(long)] == [len(short), len(short), len(long), len(long)]
    assert calls == [short, long, long] and length.cache_info().currsize == 1


def test_parsing_distinct_huge_fields_keeps_none_of_them():
    before = parse_asn.cache_info().currsize
    for number in range(5):
        parse_records([{**ROW, "actorasnorg": f"AS{64500 + number} " + "n" * 4_000_000}])
    assert parse_asn.cache_info().currsize == before


@pytest.mark.parametrize(
    ("tstamp", "kept"),
    [
        ("9999-12-31 23:59:59", False),
        ("0001-01-01 00:00:00", False),
        ("2014-12-31 23:59:59", False),
        ("2015-01-01 00:00:00", True),
        ("2024-05-01 10:00:00", True),
    ],
)
def test_beacon_times_before_the_service_or_in_the_future_are_dropped(tstamp, kept):
    record, dropped = parse_one(tstamp=tstamp)
    assert (record.seen_at is not None) is kept
    assert dropped == (Counter() if kept else Counter({"tstamp: before 2015 or in the future": 1}))


def test_an_ipv4_mapped_ipv6_address_is_the_ipv4_address():
    assert normalise_ip("::ffff:5.42.92.20") == ("IPv4-Addr", "5.42.92.20")
    assert normalise_ip("::ffff:0:5.42.92.20") == ("IPv6-Addr", "::ffff:0:52a:5c14")  # IPv4-translated: not mapped
    record, _ = parse_one(actorip="::ffff:5.42.92.20")
    assert record.actor_ip is not None and record.actor_ip.key == ("IPv4-Addr", "5.42.92.20")


def test_country_codes_and_as_numbers_are_ascii_only():
    assert parse_country("\u00df") is None and parse_country("de") is not None  # "ß".upper() == "SS"
    assert parse_asn("AS\u0666\u0664\u0665") is None and parse_asn("AS645 x") is not None  # Arabic-Indic digits


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("xn--zz.com", False),
        ("xn--a.com", False),
        ("ab--cd.example.com", False),
        ("xn--bcher-kva.example", True),
        ("a--b.example.com", True),
    ],
)
def test_host_names_are_valid_idna_as_stix_requires(name, valid):
    assert (normalise_hostname(name) is not None) is valid


@pytest.mark.parametrize(
    "url",
    [
        "http://a.example/x y",
        "http://a.example/\u202e",
        "http://a.example/\u00e9",
        "http://a.example/%zz",
        "http://a.example/a|b",
    ],
)
def test_urls_that_are_not_rfc_3986_uris_are_dropped_and_counted(url):
    record, dropped = parse_one(c2=url)
    assert record.c2_url is None and normalise_url(url) is None
    assert dropped == Counter({"c2: not a URL": 1})


# ---------------------------------------------------------------- properties

HOSTILE_TEXT = st.one_of(
    st.text(max_size=40),
    st.text(
        alphabet=st.characters(codec=None, categories=["Cc", "Cf", "Cs", "Zl", "Zp", "Zs", "Nd", "Ll"]), max_size=20
    ),
    st.sampled_from(
        [
            *("NA", "xn--zz.com", "ab--cd.example.com", "::ffff:5.42.92.20", "10.0.0.1", "fd00::1"),
            *("9999-12-31 00:00:00", "0001-01-01", "http://a.example/x y", "http://p.example/\u202e", "AS\u0661"),
            *("\u00df", "stealer,\udc00bot", "AS64500 Ex\x1bample", "NL", "2024-05-01 10:00:00"),
            "http://panel.example.net/gate.php?a=1&amp;b=2",
        ]
    ),
)
FIELDS = ["tstamp", "actorip", "actorhostname", "actorasnorg", "actorcountrycode", "actorcity", "c2", "c2domain"]
FIELDS += ["c2domainresolved", "c2asnorg", "c2countrycode", "useragent", "tags"]
HOSTILE_ROWS = st.lists(st.dictionaries(st.sampled_from(FIELDS), HOSTILE_TEXT, max_size=len(FIELDS)), max_size=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(HOSTILE_ROWS, st.sampled_from(["enrichment", "last_seen"]), st.booleans())
def test_hostile_records_always_give_a_valid_encodable_bundle(rows, valid_from, user_agents):
    entity = entity_for_value("panel.example.net", "Domain-Name", "TLP:GREEN")
    options = ConversionOptions(indicator_valid_from=valid_from, user_agents=user_agents)
    objects = convert([Findings(entity, [Lookup("c2", parse_records(rows).records)])], options, NOW).objects
    if not objects:
        return
    bundle = full_bundle(objects, entity.stix_object)
    text = json.dumps(bundle, ensure_ascii=False)
    text.encode("utf-8")
    assert all(clean_text(char) == char for char in text if char not in "\n")
    assert_valid_bundle(bundle)


INTERNAL = [
    ("10.1.2.3", "a private address (RFC 1918)"),
    ("172.16.0.1", "a private address (RFC 1918)"),
    ("192.168.1.1", "a private address (RFC 1918)"),
    ("127.0.0.1", "a loopback address"),
    ("169.254.10.1", "a link-local address"),
    ("100.64.0.1", "a shared address (CGNAT, RFC 6598)"),
    ("224.0.0.1", "a multicast address"),
    ("0.0.0.0", "an unspecified address"),
    ("255.255.255.255", "the broadcast address"),
    ("fd00::1", "a unique local address (IPv6 ULA)"),
    ("fe80::1", "a link-local address"),
    ("::1", "a loopback address"),
    ("ff02::1", "a multicast address"),
    ("::ffff:10.0.0.1", "a private address (RFC 1918)"),  # the IPv4 address it maps
]


@pytest.mark.parametrize(("address", "reason"), INTERNAL)
def test_an_address_that_would_match_internal_traffic_gets_no_indicator(address, reason):
    bundle = bundle_of([{**ROW, "actorip": address, "actorhostname": "NA"}, {**ROW, "actorhostname": "NA"}])
    ips = {o["value"]: o for o in bundle["objects"] if o["type"] in ("ipv4-addr", "ipv6-addr")}
    (internal,) = [o for value, o in ips.items() if value != "198.51.100.23"]
    assert f"No indicator: {reason} would match internal traffic." in internal["x_opencti_description"]
    patterns = [o["pattern"] for o in bundle["objects"] if o["type"] == "indicator"]
    assert patterns == ["[ipv4-addr:value = '198.51.100.23']"]  # the public actor keeps its indicator
    assert_valid_bundle(bundle)


def test_an_indicator_is_as_restrictive_as_its_value_wherever_the_value_comes_from():
    """A host name that is an actor of a CLEAR value and the C2 domain of a RED one: its pattern holds it."""
    clear = entity_for_value("198.51.100.9", "IPv4-Addr", "TLP:CLEAR")
    red = entity_for_value("203.0.113.9", "IPv4-Addr", "TLP:RED")
    as_actor = Lookup("c2", parse_records([{**ROW, "actorhostname": "shared.example.com"}]).records)
    as_c2 = Lookup("c2", parse_records([{**ROW, "actorip": "192.0.2.9", "c2domain": "shared.example.com"}]).records)
    for order in (
        [Findings(clear, [as_actor]), Findings(red, [as_c2])],
        [Findings(red, [as_c2]), Findings(clear, [as_actor])],
    ):
        objects = convert(order, ConversionOptions(), NOW).objects
        (indicator,) = [o for o in objects if o.get("pattern") == "[domain-name:value = 'shared.example.com']"]
        assert indicator["object_marking_refs"] == ["marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"]


def test_labels_are_bounded_per_object():
    rows = [{**ROW, "tags": ",".join(f"t{number}-{tag}" for tag in range(20))} for number in range(5)]
    bundle = bundle_of(rows)
    actor = next(o for o in bundle["objects"] if o.get("value") == "198.51.100.23")
    assert actor["x_opencti_labels"] == [f"t{number}-{tag}" for number in range(3) for tag in range(20)][:50]
