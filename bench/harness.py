"""The benchmarks' stage: a private RabbitMQ, the fake OpenCTI API, the Malbeacon simulator and the
connector in its own process, as in the end-to-end tests (tests/e2e)."""

import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests")]

from e2e.broker import RabbitMQ  # noqa: E402
from e2e.connector_process import ConnectorProcess, connector_environment  # noqa: E402
from e2e.fake_opencti import FakeOpenCTI  # noqa: E402
from malbeacon_connector.malbeacon.simulator import MalbeaconSimulator  # noqa: E402


@dataclass
class Stage:
    platform: FakeOpenCTI
    simulator: MalbeaconSimulator
    connector: ConnectorProcess
    connector_id: str


@contextmanager
def stage(data: dict | None = None, **settings: str) -> Iterator[Stage]:
    """Everything started, the connector registered and listening; all stopped afterwards."""
    with tempfile.TemporaryDirectory() as workdir:
        broker = RabbitMQ().start(Path(workdir) / "rabbitmq")
        try:
            with FakeOpenCTI(broker) as platform, MalbeaconSimulator(data) as simulator:
                env = connector_environment(platform, simulator, **{"CONNECTOR_LOG_LEVEL": "error", **settings})
                with ConnectorProcess(env, Path(workdir), name="bench-connector") as connector:
                    connector.wait_registered(platform, timeout=60)
                    yield Stage(platform, simulator, connector, env["CONNECTOR_ID"])
        finally:
            broker.stop()
