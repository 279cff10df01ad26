"""When an actor's indicator is valid, so that the platform does not store it revoked on arrival.

OpenCTI gives an indicator without `valid_until` the lifetime of its decay rule from
`valid_from` (built-in rules: IP addresses and URLs 47 days, domain names 300 days, others
365) and stores it revoked when that end is already past. Two honest choices:

- `enrichment` (default): valid from the enrichment; the platform's rule gives the end.
- `last_seen`: valid from the actor's last beacon, until the built-in lifetime after the
  enrichment (given explicitly: a stale actor would otherwise arrive revoked). With the
  platform's decay on, the score decays from the last beacon.
"""

from datetime import datetime, timedelta

VALID_FROM_CHOICES = ("enrichment", "last_seen")
BUILT_IN_LIFETIME_DAYS = {"IPv4-Addr": 47, "IPv6-Addr": 47, "Url": 47, "Domain-Name": 300}
OTHER_LIFETIME_DAYS = 365


def indicator_validity(
    valid_from: str, entity_type: str, last_seen: datetime | None, now: datetime
) -> tuple[datetime, datetime | None]:
    """(valid_from, valid_until or None to let the platform's decay rule decide) of an actor's indicator."""
    if valid_from == "last_seen" and last_seen is not None:
        lifetime = BUILT_IN_LIFETIME_DAYS.get(entity_type, OTHER_LIFETIME_DAYS)
        return min(last_seen, now), now + timedelta(days=lifetime)
    return now, None
