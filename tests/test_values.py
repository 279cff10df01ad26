"""IP addresses and host names: what is accepted, how it is normalised, what is rejected."""

import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from malbeacon_connector.values import (
    STIX_TYPES,
    AutonomousSystem,
    Country,
    normalise_hostname,
    normalise_ip,
    normalise_value,
    parse_asn,
    parse_country,
    url_host,
)

RFC1123_HOSTNAME = re.compile(
    r"(?=.{1,253}\Z)"  # at most 253 characters
    r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+"  # one or more labels followed by a dot
    r"(?![0-9]+\Z)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z"  # a last label that is not all digits
)

# hyphens at positions 3-4 would make an IDNA A-label (`xn--`), which must decode: left out here
LABELS = st.from_regex(r"\A[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z", fullmatch=True).filter(
    lambda label: label[2:4] != "--"
)
LAST_LABELS = LABELS.filter(lambda label: not label.isdigit())


@st.composite
def hostnames(draw: st.DrawFn) -> str:
    """A lower-case RFC 1123 host name of two labels or more, at most 253 characters."""
    labels = [*draw(st.lists(LABELS, min_size=1, max_size=3)), draw(LAST_LABELS)]
    name = ".".join(labels)
    return name if len(name) <= 253 else name[-253:].lstrip(".-")


HOSTNAME_LIKE_TEXT = st.text(alphabet=string.ascii_letters + string.digits + "-._ ", max_size=40)


# ---------------------------------------------------------------- normalise_ip


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("203.0.113.7", ("IPv4-Addr", "203.0.113.7")),
        ("  203.0.113.7\n", ("IPv4-Addr", "203.0.113.7")),
        ("0.0.0.0", ("IPv4-Addr", "0.0.0.0")),
        ("2001:db8::1", ("IPv6-Addr", "2001:db8::1")),
        ("2001:0DB8:0000:0000:0000:0000:0000:0001", ("IPv6-Addr", "2001:db8::1")),
        ("\t2001:DB8:0:0::1 ", ("IPv6-Addr", "2001:db8::1")),
        ("::1", ("IPv6-Addr", "::1")),
    ],
)
def test_normalise_ip_classifies_by_value_and_canonicalises(text, expected):
    """IPv4 and IPv6 are told apart by the value; IPv6 comes back compressed and lower-case."""
    assert normalise_ip(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "fe80::1%eth0",
        "fe80::1%1",
        "999.1.2.3",
        "1.2.3",
        "1.2.3.4.5",
        "01.2.3.4",
        "1.2.3.004",
        "2001:db8::1::2",
        "example.com",
        "1.2.3.4/24",
        "",
        "   ",
        "not an ip",
    ],
)
def test_normalise_ip_rejects_non_addresses(text):
    """Scoped addresses, out-of-range octets, leading zeros and garbage are not addresses."""
    assert normalise_ip(text) is None


# ---------------------------------------------------------------- normalise_hostname


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("example.com", "example.com"),
        ("WWW.Example.COM", "www.example.com"),
        ("example.com.", "example.com"),
        ("  mail.example.org \n", "mail.example.org"),
        ("a-b.c-d.example", "a-b.c-d.example"),
        ("1.2.3.example", "1.2.3.example"),
        ("host.123abc", "host.123abc"),
        ("a" * 63 + ".com", "a" * 63 + ".com"),
    ],
)
def test_normalise_hostname_lowercases_and_drops_trailing_dot(text, expected):
    """Valid names come back lower-cased, stripped and without their trailing dot."""
    assert normalise_hostname(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("localhost", id="single-label"),
        pytest.param("host.", id="single-label-after-dot-removal"),
        pytest.param("_x", id="underscore-single"),
        pytest.param("_dmarc.example.com", id="underscore-label"),
        pytest.param("a..b", id="empty-label"),
        pytest.param(".example.com", id="leading-empty-label"),
        pytest.param("example.com..", id="two-trailing-dots"),
        pytest.param("a" * 64 + ".com", id="label-over-63"),
        pytest.param(".".join(["a" * 63] * 4), id="name-over-253"),
        pytest.param("-abc.example.com", id="leading-hyphen"),
        pytest.param("abc-.example.com", id="trailing-hyphen"),
        pytest.param("example.-com", id="last-label-leading-hyphen"),
        pytest.param("1.2.3.4", id="ipv4-like"),
        pytest.param("example.123", id="numeric-last-label"),
        pytest.param("bücher.example", id="non-ascii-letter"),
        pytest.param("\u212aa.com", id="kelvin-sign-lowercases-to-ascii-k"),
        pytest.param("exa mple.com", id="inner-space"),
        pytest.param("example.com/path", id="slash"),
        pytest.param("", id="empty"),
        pytest.param(".", id="dot-only"),
    ],
)
def test_normalise_hostname_rejects_non_rfc1123_names(text):
    """Anything that is not a multi-label ASCII RFC 1123 name is refused."""
    assert normalise_hostname(text) is None


def test_normalise_hostname_accepts_exactly_253_characters():
    """The 253-character limit is inclusive and applies after the trailing dot is removed."""
    name = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])
    assert len(name) == 253
    assert normalise_hostname(name) == name
    assert normalise_hostname(name + ".") == name
    assert normalise_hostname(name + "e") is None


@given(st.one_of(st.text(), HOSTNAME_LIKE_TEXT, hostnames()))
def test_normalise_hostname_output_is_a_fixed_point_of_rfc1123_shape(text):
    """Whatever is returned is ASCII, RFC 1123 shaped and normalises to itself."""
    name = normalise_hostname(text)
    if name is not None:
        assert name.isascii()
        assert RFC1123_HOSTNAME.match(name), name
        assert normalise_hostname(name) == name


@given(hostnames(), st.booleans(), st.booleans())
def test_normalise_hostname_accepts_any_name_of_valid_labels(name, upper, trailing_dot):
    """A name built from valid labels is accepted, whatever its case and trailing dot."""
    text = (name.upper() if upper else name) + ("." if trailing_dot else "")
    assert normalise_hostname(text) == name


@given(st.one_of(st.text(), hostnames()), st.sampled_from("_/"), st.data())
def test_normalise_hostname_rejects_text_with_underscore_or_slash(base, forbidden, data):
    """An `_` or `/` anywhere in the text makes it invalid."""
    position = data.draw(st.integers(min_value=0, max_value=len(base)))
    assert normalise_hostname(base[:position] + forbidden + base[position:]) is None


# ---------------------------------------------------------------- normalise_value


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("203.0.113.7", ("IPv4-Addr", "203.0.113.7")),
        (" 2001:DB8::0:1 ", ("IPv6-Addr", "2001:db8::1")),
        ("Example.COM.", ("Domain-Name", "example.com")),
    ],
)
def test_normalise_value_infers_the_type(value, expected):
    """Without a type, the value's own form decides it."""
    assert normalise_value(value) == expected


@pytest.mark.parametrize(
    ("value", "entity_type", "expected"),
    [
        ("203.0.113.7", "IPv4-Addr", ("IPv4-Addr", "203.0.113.7")),
        ("2001:db8::1", "IPv6-Addr", ("IPv6-Addr", "2001:db8::1")),
        ("Example.com", "Domain-Name", ("Domain-Name", "example.com")),
    ],
)
def test_normalise_value_accepts_a_matching_explicit_type(value, entity_type, expected):
    """An explicit type that fits the value is kept."""
    assert normalise_value(value, entity_type) == expected


@pytest.mark.parametrize(
    ("value", "entity_type", "expected"),
    [
        ("2001:db8::1", "IPv4-Addr", "an IPv4 address"),
        ("example.com", "IPv4-Addr", "an IPv4 address"),
        ("203.0.113.7", "IPv6-Addr", "an IPv6 address"),
        ("203.0.113.7", "Domain-Name", "a domain name"),
        ("2001:db8::1", "Domain-Name", "a domain name"),
        ("localhost", "Domain-Name", "a domain name"),
        ("example.com", "Url", "a URL"),
        ("", "User-Agent", "a user agent"),
        ("bad\nagent", "User-Agent", "a user agent"),
    ],
)
def test_normalise_value_rejects_a_mismatched_explicit_type(value, entity_type, expected):
    """A value that is not of the given type raises, naming the value and the expected kind."""
    with pytest.raises(ValueError, match=re.escape(f"{value!r} is not {expected}")):
        normalise_value(value, entity_type)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http://panel.example.com/gate.php?a=1", ("Url", "http://panel.example.com/gate.php?a=1")),
        (" https://[2001:db8::7]/c2 ", ("Url", "https://[2001:db8::7]/c2")),
    ],
)
def test_normalise_value_infers_urls(value, expected):
    assert normalise_value(value) == expected


def test_a_user_agent_is_accepted_only_when_named():
    agent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/118.0"
    assert normalise_value(agent, "User-Agent") == ("User-Agent", agent)
    with pytest.raises(ValueError):
        normalise_value(agent)


@pytest.mark.parametrize("value", ["localhost", "_x", "999.1.2.3", "", "http://", "no-scheme.example.com/path"])
def test_normalise_value_rejects_untyped_garbage_naming_every_accepted_kind(value):
    """Without a type, the error lists the kinds of value that can be inferred."""
    with pytest.raises(ValueError, match="an IP address, a domain name or a URL"):
        normalise_value(value)


@pytest.mark.parametrize("entity_type", ["url", "ipv4-addr", "Email-Addr", ""])
def test_normalise_value_rejects_an_unknown_type_listing_the_allowed_ones(entity_type):
    """An unsupported type raises, even when the value itself would be fine."""
    with pytest.raises(ValueError, match="unsupported type") as raised:
        normalise_value("203.0.113.7", entity_type)
    for allowed in STIX_TYPES:
        assert allowed in str(raised.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("AS64500 Example ISP", AutonomousSystem(64500, "Example ISP")),
        ("as15169  Google   LLC", AutonomousSystem(15169, "Google LLC")),
        ("AS4294967295", AutonomousSystem(4294967295, "AS4294967295")),
        ("AS0 Reserved", None),
        ("AS4294967296 Too big", None),
        ("Example ISP", None),
        ("ASN64500", None),
        ("", None),
    ],
)
def test_parse_asn_reads_the_number_and_name_of_an_asnorg(text, expected):
    assert parse_asn(text) == expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [("NL", Country("NL", "Netherlands")), ("de", Country("DE", "Germany")), ("XX", None), ("NLD", None), ("", None)],
)
def test_parse_country_knows_iso_alpha_2_codes(code, expected):
    assert parse_country(code) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://203.0.113.7/panel/x.php", ("IPv4-Addr", "203.0.113.7")),
        ("http://[2001:DB8::7]/c2", ("IPv6-Addr", "2001:db8::7")),
        ("https://Panel.Example.NET:8443/gate", ("Domain-Name", "panel.example.net")),
        ("http://localhost/gate", None),
        ("http://_bad_.example.com/", None),
        ("not a url", None),
    ],
)
def test_url_host_is_a_validated_ip_or_host_name(url, expected):
    assert url_host(url) == expected
