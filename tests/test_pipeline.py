"""The pipeline the connector and the command line share: lookups by type, records, one conversion."""

from datetime import UTC, datetime

from malbeacon_connector.malbeacon.client import client_from_settings
from malbeacon_connector.malbeacon.endpoints import DOMAIN_ENDPOINTS, IP_ENDPOINTS, ROLES, endpoints_for
from malbeacon_connector.pipeline import enrich_entities, entity_for_value, lookup_plan
from malbeacon_connector.settings import MalbeaconSettings
from malbeacon_connector.values import STIX_TYPES
from stix_checks import objects_of

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def settings_for(simulator, **overrides: object) -> MalbeaconSettings:
    return MalbeaconSettings(**{"api_key": simulator.api_key, "api_base_url": simulator.base_url, **overrides})


def test_the_lookup_plan_derives_from_the_endpoint_table_and_the_settings(simulator):
    plan = lookup_plan(settings_for(simulator, ip_lookups="c2,actorip", domain_lookups="actorhostname"))
    assert set(plan) == set(STIX_TYPES)
    assert plan["IPv4-Addr"] == plan["IPv6-Addr"] == ("c2", "actorip")
    assert plan["Domain-Name"] == ("actorhostname",)
    assert (plan["Url"], plan["User-Agent"]) == (("c2",), ("useragent",))
    assert IP_ENDPOINTS == ("c2", "c2ip", "actorip") and DOMAIN_ENDPOINTS == ("c2", "actorhostname")
    assert all(endpoint in ROLES for entity_type in STIX_TYPES for endpoint in endpoints_for(entity_type))


def test_entities_are_looked_up_in_order_and_converted_once_together(simulator):
    settings = settings_for(simulator)
    entities = [
        entity_for_value("203.0.113.7", "IPv4-Addr", "TLP:CLEAR"),
        entity_for_value("198.51.100.250", "IPv4-Addr", "TLP:CLEAR"),
        entity_for_value("panel.example.net", "Domain-Name", "TLP:AMBER"),
    ]
    progress: list[tuple[int, int]] = []
    client = client_from_settings(settings)
    enriched = enrich_entities(client, entities, settings, NOW, lambda done, total: progress.append((done, total)))
    client.close()
    assert [outcome.entity for outcome in enriched.outcomes] == entities
    assert [outcome.found for outcome in enriched.outcomes] == [True, False, True]
    assert progress == [(1, 3), (2, 3), (3, 3)]
    assert [(r.endpoint, r.value) for r in simulator.api_requests()] == [
        ("c2", "203.0.113.7"),
        ("c2", "198.51.100.250"),
        ("c2", "panel.example.net"),
    ]
    ids = [o["id"] for o in enriched.objects]
    assert len(ids) == len(set(ids))  # one conversion: what both values share appears once
    assert sum(o["type"] == "identity" for o in enriched.objects) == 1
    updated = {o["id"] for o in enriched.objects} & {entity.stix_id for entity in entities}
    assert updated == {entities[0].stix_id, entities[2].stix_id}  # the value not found is left as it was


def test_a_failed_lookup_gives_no_objects_for_its_entity(simulator):
    settings = settings_for(simulator, api_key="wrong-key")
    client = client_from_settings(settings)
    enriched = enrich_entities(client, [entity_for_value("203.0.113.7", "IPv4-Addr", "TLP:CLEAR")], settings, NOW)
    client.close()
    (outcome,) = enriched.outcomes
    assert outcome.error is not None and not outcome.found and enriched.objects == []
    assert outcome.summary() == (
        "203.0.113.7 (IPv4-Addr): failed: Malbeacon refused the API key (HTTP 401); check MALBEACON_API_KEY "
        "[1 API call]"
    )


def test_the_summary_says_singular_and_plural_right(simulator):
    settings = settings_for(simulator)
    client = client_from_settings(settings)
    enriched = enrich_entities(client, [entity_for_value("2001:db8::7", "IPv6-Addr", "TLP:CLEAR")], settings, NOW)
    client.close()
    (outcome,) = enriched.outcomes
    assert outcome.summary(objects_sent=1) == (
        "2001:db8::7 (IPv6-Addr): 1 record, 1 kept; 1 actor IP, 0 actor host names; 1 object sent [1 API call]"
    )
    assert objects_of(enriched.objects, "indicator")
