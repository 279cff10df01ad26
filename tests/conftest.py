"""Shared fixtures: a running Malbeacon simulator and clients pointed at it."""

from collections.abc import Callable, Iterator

import pytest

from malbeacon_connector.malbeacon.client import MalbeaconClient
from malbeacon_connector.malbeacon.simulator import MalbeaconSimulator


@pytest.fixture
def simulator() -> Iterator[MalbeaconSimulator]:
    """The simulator with the bundled sample data, on a free loopback port."""
    with MalbeaconSimulator() as running:
        yield running


@pytest.fixture
def make_client(simulator: MalbeaconSimulator) -> Callable[..., MalbeaconClient]:
    """A client of the simulator; keyword arguments override the defaults (no real sleeping)."""
    clients: list[MalbeaconClient] = []

    def build(**overrides: object) -> MalbeaconClient:
        options: dict = {"timeout": 2.0, "max_retries": 2, "sleep": lambda seconds: None}
        options.update(overrides)
        base_url = options.pop("base_url", simulator.base_url)
        api_key = options.pop("api_key", simulator.api_key)
        client = MalbeaconClient(base_url, api_key, **options)
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.close()
