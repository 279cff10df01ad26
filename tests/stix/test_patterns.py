"""STIX patterns of single values: valid, and no value can break out of its quotes."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stix2patterns.pattern import Pattern
from stix2patterns.validator import run_validator

from malbeacon_connector.stix.patterns import escape_pattern_string, value_pattern

_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


def unescape_literal(literal: str) -> str:
    """The value of a quoted STIX string literal, accepting only the escapes `\\'` and `\\\\`."""
    assert literal.startswith("'")
    assert literal.endswith("'")
    body = literal[1:-1]
    assert {match.group(1) for match in _ESCAPE.finditer(body)} <= {"'", "\\"}, body
    return _ESCAPE.sub(r"\1", body)


def value_read_back(pattern: str, stix_type: str) -> str:
    """The only value compared in a pattern, as the stix2-patterns parser reads it."""
    comparisons = Pattern(pattern).inspect().comparisons
    assert list(comparisons) == [stix_type], comparisons
    [(path, operator, literal)] = comparisons[stix_type]
    assert (path, operator) == (["value"], "=")
    return unescape_literal(literal)


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("example.com", "example.com"),
        ("it's", "it\\'s"),
        ("a\\b", "a\\\\b"),
        ("\\'", "\\\\\\'"),
        ("''", "\\'\\'"),
        ("", ""),
        ('"double"', '"double"'),
    ],
)
def test_escape_pattern_string_escapes_quotes_and_backslashes(value, escaped):
    """Backslashes are doubled and single quotes are backslash-escaped; nothing else changes."""
    assert escape_pattern_string(value) == escaped


@pytest.mark.parametrize(
    ("stix_type", "value", "pattern"),
    [
        ("ipv4-addr", "203.0.113.7", "[ipv4-addr:value = '203.0.113.7']"),
        ("ipv6-addr", "2001:db8::1", "[ipv6-addr:value = '2001:db8::1']"),
        ("domain-name", "example.com", "[domain-name:value = 'example.com']"),
        ("url", "http://x.example/it's", "[url:value = 'http://x.example/it\\'s']"),
    ],
)
def test_value_pattern_builds_a_single_equality_comparison(stix_type, value, pattern):
    """The pattern compares the observable's `value` to the quoted, escaped value."""
    assert value_pattern(stix_type, value) == pattern
    assert run_validator(pattern) == []


@pytest.mark.parametrize(
    "value",
    [
        "x' OR [ipv4-addr:value = '1.2.3.4",
        "x'] OR [ipv4-addr:value = '1.2.3.4'",
        "a\\",
        "\\'",
        "\\\\'",
        "'",
        "]",
        "']",
        "a\nb",
        "a\r\n' OR '1' = '1",
        "\\",
        "",
        "x\\' OR [ipv4-addr:value = '1.2.3.4",
        "\x00",
    ],
)
def test_value_pattern_resists_injection(value):
    """Hand-picked attempts to close the quotes stay one valid comparison of the exact value."""
    pattern = value_pattern("domain-name", value)
    assert run_validator(pattern) == []
    assert value_read_back(pattern, "domain-name") == value


@given(st.text())
def test_value_pattern_of_any_text_is_valid_and_reads_back_exactly(value):
    """For any text, the pattern validates and its single literal parses back to the value."""
    pattern = value_pattern("domain-name", value)
    assert run_validator(pattern) == []
    assert value_read_back(pattern, "domain-name") == value


@given(st.text(alphabet="'\\] []ORAND=abc\n", max_size=30))
def test_value_pattern_of_quote_heavy_text_is_valid_and_reads_back_exactly(value):
    """Text made mostly of quotes, backslashes and pattern syntax stays inside its quotes."""
    pattern = value_pattern("domain-name", value)
    assert run_validator(pattern) == []
    assert value_read_back(pattern, "domain-name") == value
