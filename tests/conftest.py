"""Shared fixtures: a running Malbeacon simulator (over HTTP, or HTTPS with a private CA) and clients pointed at it."""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from certificates import write_certificates
from malbeacon_connector.malbeacon.client import MalbeaconClient
from malbeacon_connector.malbeacon.simulator import MalbeaconSimulator


@pytest.fixture
def simulator() -> Iterator[MalbeaconSimulator]:
    """The simulator with the bundled sample data, on a free loopback port."""
    with MalbeaconSimulator() as running:
        yield running


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A private CA and a server certificate for 127.0.0.1 signed by it (PEM files `ca`, `cert`, `key`)."""
    return write_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The certificate (PEM file) of a second private CA, which signed none of the simulator's certificates."""
    return write_certificates(tmp_path_factory.mktemp("other-tls"), ca_name="Other test CA")["ca"]


@pytest.fixture
def tls_simulator(tls_files: dict[str, Path]) -> Iterator[MalbeaconSimulator]:
    """The simulator over HTTPS, its certificate signed by the private CA of `tls_files`."""
    with MalbeaconSimulator(tls=(tls_files["cert"], tls_files["key"])) as running:
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
