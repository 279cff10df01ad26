"""The connector's Prometheus metrics: what each enrichment path counts, the budget gauge, metrics off."""

from types import SimpleNamespace

import pytest
from prometheus_client import REGISTRY, CollectorRegistry
from stubs import StubHelper, connector_settings, message

from malbeacon_connector.malbeacon.budget import DailyBudget
from malbeacon_connector.malbeacon.client import client_from_settings
from malbeacon_connector.opencti.connector import MalbeaconConnector, WorkFailed
from malbeacon_connector.opencti.metrics import ENRICHMENT_OUTCOMES, ConnectorMetrics, NoMetrics, metrics_for
from malbeacon_connector.stix.builder import AUTHOR_ID
from malbeacon_connector.tlp import marking_id

RED = [{"definition_type": "TLP", "definition": "TLP:RED", "standard_id": marking_id("TLP:RED")}]


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def outcomes(registry: CollectorRegistry) -> dict[str, float]:
    counts = {
        outcome: sample(registry, "malbeacon_enrichments_total", outcome=outcome) for outcome in ENRICHMENT_OUTCOMES
    }
    return {outcome: count for outcome, count in counts.items() if count}


@pytest.fixture
def metered(simulator, sent):
    """A connector counting on a private registry: (connector, registry)."""
    registry = CollectorRegistry()
    settings = connector_settings(auto=True, api_base_url=simulator.base_url, api_key=simulator.api_key)
    client = client_from_settings(settings.malbeacon, events=(metrics := ConnectorMetrics(registry)))
    metrics.watch_budget(client.budget)
    connector = MalbeaconConnector(settings, StubHelper(), client, metrics)  # type: ignore[arg-type]
    return connector, registry


@pytest.mark.parametrize(
    ("data", "outcome"),
    [
        (message(), "found"),
        (message("198.51.100.250"), "not_found"),
        (message(markings=RED), "refused_tlp"),
        (message("http://x.example/a", "Url"), "out_of_scope"),
        (message("not a domain!", "Domain-Name"), "skipped"),
        (message(author=AUTHOR_ID, internal={"mode": "auto"}), "skipped"),
    ],
    ids=["found", "not-found", "tlp", "out-of-scope", "unusable-value", "own-auto-enrichment"],
)
def test_each_enrichment_is_counted_once_with_its_outcome(metered, data, outcome):
    connector, registry = metered
    connector.process_message(data)
    assert outcomes(registry) == {outcome: 1}


def test_requests_objects_and_lookup_times_count_what_happened(metered, simulator, sent):
    connector, registry = metered
    connector.process_message(message())
    connector.process_message(message("198.51.100.250"))
    assert sample(registry, "malbeacon_api_requests_total", endpoint="c2", outcome="found") == 1
    assert sample(registry, "malbeacon_api_requests_total", endpoint="c2", outcome="no_results") == 1
    assert sample(registry, "malbeacon_lookup_duration_seconds_count") == 2
    assert sample(registry, "malbeacon_objects_sent_total") == len(sent[0]["objects"]) > 0
    assert sample(registry, "malbeacon_cache_hits_total") == 0
    assert len(simulator.api_requests()) == 2


def test_a_failure_is_counted_as_failed(simulator, sent):
    registry = CollectorRegistry()
    settings = connector_settings(api_base_url=simulator.base_url, api_key="wrong-key")
    metrics = ConnectorMetrics(registry)
    client = client_from_settings(settings.malbeacon, events=metrics)
    connector = MalbeaconConnector(settings, StubHelper(), client, metrics)  # type: ignore[arg-type]
    with pytest.raises(WorkFailed):
        connector.process_message(message())
    assert outcomes(registry) == {"failed": 1}
    assert sample(registry, "malbeacon_api_requests_total", endpoint="c2", outcome="unauthorized") == 1


def test_cache_hits_are_counted(simulator):
    registry = CollectorRegistry()
    client = client_from_settings(
        connector_settings(api_base_url=simulator.base_url, api_key=simulator.api_key).malbeacon,
        events=ConnectorMetrics(registry),
    )
    client.lookup("c2", "203.0.113.7")
    client.lookup("c2", "203.0.113.7")
    assert sample(registry, "malbeacon_cache_hits_total") == 1


def test_the_gauge_of_calls_left_today_follows_the_budget_and_exists_only_with_a_limit():
    registry = CollectorRegistry()
    metrics = ConnectorMetrics(registry)
    budget = DailyBudget(5)
    metrics.watch_budget(budget)
    assert sample(registry, "malbeacon_api_calls_left_today") == 5
    budget.spend()
    budget.spend()
    assert sample(registry, "malbeacon_api_calls_left_today") == 3
    unlimited = CollectorRegistry()
    ConnectorMetrics(unlimited).watch_budget(DailyBudget(0))
    assert unlimited.get_sample_value("malbeacon_api_calls_left_today") is None


@pytest.mark.parametrize(
    ("helper", "config", "counting"),
    [
        (SimpleNamespace(metric=SimpleNamespace(activated=True)), {}, True),
        (SimpleNamespace(metric=SimpleNamespace(activated=False)), {"connector": {"expose_metrics": True}}, False),
        (SimpleNamespace(), {"connector": {"expose_metrics": True}}, True),
        (SimpleNamespace(), {}, False),
    ],
    ids=["pycti-on", "pycti-off", "no-handler-config-on", "no-handler-default-off"],
)
def test_metrics_follow_pycti(helper, config, counting, monkeypatch):
    monkeypatch.delenv("CONNECTOR_EXPOSE_METRICS", raising=False)
    registry = CollectorRegistry()
    metrics = metrics_for(helper, config, registry)
    assert isinstance(metrics, ConnectorMetrics) is counting
    assert (registry.get_sample_value("malbeacon_cache_hits_total") is not None) is counting


def test_metrics_off_register_nothing():
    before = set(REGISTRY._names_to_collectors)
    metrics = NoMetrics()
    metrics.request("c2", "found")
    metrics.enrichment("found")
    metrics.watch_budget(DailyBudget(3))
    assert set(REGISTRY._names_to_collectors) == before
    assert not any(name.startswith("malbeacon_") for name in before)
