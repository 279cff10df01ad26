"""Fixtures of the end-to-end tests: one RabbitMQ per session, a fake platform per test, connector processes.

Every e2e test is marked `e2e` (select with `-m e2e`, leave out with `-m "not e2e"`).
"""

import contextlib
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from malbeacon_connector.malbeacon.simulator import MalbeaconSimulator

from .broker import RabbitMQ
from .connector_process import DEFAULT_COMMAND, ConnectorProcess, connector_environment
from .fake_opencti import FakeOpenCTI

E2E_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test collected under tests/e2e with `e2e`."""
    for item in items:
        if E2E_DIR in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def rabbitmq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitMQ]:
    """A private RabbitMQ node for the whole session (7-15 s to start), stopped at the end."""
    broker = RabbitMQ()
    broker.start(tmp_path_factory.mktemp("rabbitmq"))
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def fake_opencti(rabbitmq: RabbitMQ, request: pytest.FixtureRequest) -> Iterator[FakeOpenCTI]:
    """A fresh fake platform on a free loopback port, handing out the session's broker; options of
    `FakeOpenCTI` (a dict, e.g. `{"queue_type": "quorum"}`) can be given by indirect parametrisation."""
    platform = FakeOpenCTI(rabbitmq, **getattr(request, "param", {})).start()
    try:
        yield platform
    finally:
        platform.stop()
        if rabbitmq.running:
            for connector_id in list(platform.connectors):
                # best effort: the next test uses other queues anyway
                with contextlib.suppress(Exception):
                    platform.delete_connector_queues(connector_id)


@pytest.fixture
def connector_env(fake_opencti: FakeOpenCTI, simulator: MalbeaconSimulator) -> dict[str, str]:
    """The environment of a connector process pointed at the fake platform and the simulator."""
    return connector_environment(fake_opencti, simulator)


@pytest.fixture
def start_connector(tmp_path: Path, fake_opencti: FakeOpenCTI) -> Iterator[Callable[..., ConnectorProcess]]:
    """Start connector processes: `start_connector(env, command=..., name=...)`; all stopped at teardown,
    before the fake platform removes their queues."""
    started: list[ConnectorProcess] = []

    def start(
        env: dict[str, str], *, command: Sequence[str] = DEFAULT_COMMAND, name: str | None = None
    ) -> ConnectorProcess:
        process = ConnectorProcess(env, tmp_path, command=command, name=name or f"connector-{len(started) + 1}")
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.terminate()


@pytest.fixture
def helper_env(fake_opencti: FakeOpenCTI, monkeypatch: pytest.MonkeyPatch) -> str:
    """Environment for an in-process OpenCTIConnectorHelper; returns the connector id."""
    connector_id = str(uuid.uuid4())
    for name, value in {
        "OPENCTI_URL": fake_opencti.url,
        "OPENCTI_TOKEN": fake_opencti.token,
        "CONNECTOR_ID": connector_id,
        "CONNECTOR_TYPE": "INTERNAL_ENRICHMENT",
        "CONNECTOR_NAME": "In-process helper",
        "CONNECTOR_SCOPE": "IPv4-Addr",
        "CONNECTOR_LOG_LEVEL": "error",
    }.items():
        monkeypatch.setenv(name, value)
    return connector_id
