"""The Malbeacon endpoints: one table, from which the settings, the lookup plan and the roles derive.

Every call is `GET {base}/c2/<endpoint>/<value>`. An endpoint that can be asked for an entity
type says what the enriched value is in its records: the C2 panel (`c2`), an actor who logged
into panels (`actor`), or a browser user agent actors used (`user-agent`).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoint:
    """One endpoint: its name, the entity types it can be asked for, and the enriched value's role."""

    name: str
    entity_types: tuple[str, ...] = ()
    role: str | None = None


_IPS = ("IPv4-Addr", "IPv6-Addr")
ENDPOINTS: dict[str, Endpoint] = {
    endpoint.name: endpoint
    for endpoint in (
        Endpoint("c2", (*_IPS, "Domain-Name", "Url"), "c2"),
        Endpoint("c2ip", _IPS, "c2"),
        Endpoint("actorip", _IPS, "actor"),
        Endpoint("actorhostname", ("Domain-Name",), "actor"),
        Endpoint("useragent", ("User-Agent",), "user-agent"),
        # known to exist, never asked by this connector
        Endpoint("cookie_id"),
        Endpoint("tags"),
        Endpoint("c2asnorg"),
        Endpoint("actorasnorg"),
        Endpoint("c2city"),
        Endpoint("c2country"),
        Endpoint("actorcity"),
        Endpoint("actorcountrycode"),
    )
}
ROLES = {name: endpoint.role for name, endpoint in ENDPOINTS.items() if endpoint.role is not None}


def endpoints_for(entity_type: str) -> tuple[str, ...]:
    """The endpoints that can be asked for an entity type, the default (`c2`, or the only one) first."""
    return tuple(name for name, endpoint in ENDPOINTS.items() if entity_type in endpoint.entity_types)


IP_ENDPOINTS = endpoints_for("IPv4-Addr")
DOMAIN_ENDPOINTS = endpoints_for("Domain-Name")
