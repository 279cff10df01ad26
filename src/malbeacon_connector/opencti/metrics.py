"""The connector's Prometheus metrics, served by pycti's metrics server on the default registry.

With CONNECTOR_EXPOSE_METRICS=true pycti serves the default `prometheus_client` registry on
CONNECTOR_METRICS_PORT; the counters below are registered there and served beside pycti's own.
Metrics off: `NoMetrics`, which counts nothing and registers nothing.
"""

from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from pycti import get_config_variable

from malbeacon_connector.malbeacon.budget import DailyBudget
from malbeacon_connector.malbeacon.endpoints import ROLES
from malbeacon_connector.malbeacon.events import REQUEST_OUTCOMES, NoEvents

ENRICHMENT_OUTCOMES = ("found", "not_found", "refused_tlp", "out_of_scope", "skipped", "failed")
LOOKUP_SECONDS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class NoMetrics(NoEvents):
    """Metrics off: nothing counted."""

    def enrichment(self, outcome: str) -> None:
        """One enrichment message ended with `outcome` (one of ENRICHMENT_OUTCOMES)."""

    def objects_sent(self, count: int) -> None:
        """`count` STIX objects were pushed to the platform."""

    def watch_budget(self, budget: DailyBudget) -> None:
        """Serve the requests left today (when the budget has a limit)."""


class ConnectorMetrics(NoMetrics):
    """Counters of Malbeacon requests, cache hits, enrichments, lookup times and objects sent."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self._registry = registry
        self._requests = Counter(
            "malbeacon_api_requests",
            "HTTP requests sent to Malbeacon (retries included), by endpoint and outcome",
            ["endpoint", "outcome"],
            registry=registry,
        )
        self._cache_hits = Counter(
            "malbeacon_cache_hits", "Lookups answered by the cache (no request sent)", registry=registry
        )
        self._enrichments = Counter(
            "malbeacon_enrichments", "Enrichment messages handled, by outcome", ["outcome"], registry=registry
        )
        self._lookup_seconds = Histogram(
            "malbeacon_lookup_duration_seconds",
            "Time of each lookup sent to Malbeacon, retries included",
            buckets=LOOKUP_SECONDS_BUCKETS,
            registry=registry,
        )
        self._objects = Counter("malbeacon_objects_sent", "STIX objects pushed to the platform", registry=registry)
        for endpoint in ROLES:  # every series of the endpoints looked up, from the start, at 0
            for outcome in REQUEST_OUTCOMES:
                self._requests.labels(endpoint=endpoint, outcome=outcome)
        for outcome in ENRICHMENT_OUTCOMES:
            self._enrichments.labels(outcome=outcome)

    def request(self, endpoint: str, outcome: str) -> None:
        self._requests.labels(endpoint=endpoint, outcome=outcome).inc()

    def cache_hit(self, endpoint: str) -> None:
        self._cache_hits.inc()

    def lookup(self, endpoint: str, seconds: float) -> None:
        self._lookup_seconds.observe(seconds)

    def enrichment(self, outcome: str) -> None:
        self._enrichments.labels(outcome=outcome).inc()

    def objects_sent(self, count: int) -> None:
        self._objects.inc(count)

    def watch_budget(self, budget: DailyBudget) -> None:
        if budget.limit:
            left = Gauge(
                "malbeacon_api_calls_left_today",
                f"Malbeacon requests left today (UTC) of MALBEACON_DAILY_CALL_LIMIT={budget.limit}",
                registry=self._registry,
            )
            left.set_function(lambda: budget.left() or 0)


def metrics_for(helper: Any, config: dict[str, Any], registry: CollectorRegistry = REGISTRY) -> NoMetrics:
    """The connector's metrics when pycti serves them: its metric handler's `activated` where it has one,
    else CONNECTOR_EXPOSE_METRICS read as pycti reads it."""
    activated = getattr(getattr(helper, "metric", None), "activated", None)
    if activated is None:
        activated = get_config_variable(
            "CONNECTOR_EXPOSE_METRICS", ["connector", "expose_metrics"], config, default=False
        )
    return ConnectorMetrics(registry) if activated else NoMetrics()
