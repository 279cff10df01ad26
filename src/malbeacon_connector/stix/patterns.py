"""STIX patterns for single observable values, escaped so no value can break out of its quotes."""


def escape_pattern_string(value: str) -> str:
    """Escape a value for a single-quoted STIX pattern string literal."""
    return value.replace("\\", "\\\\").replace("'", "\\'")


def value_pattern(stix_type: str, value: str) -> str:
    """`[ipv4-addr:value = '203.0.113.7']` for an observable type and its value."""
    return f"[{stix_type}:value = '{escape_pattern_string(value)}']"
