"""A connector run as its own process (its own session), with its output in a log file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .broker import DIE_WITH_PARENT, stop_process
from .fake_opencti import FakeOpenCTI

if TYPE_CHECKING:
    from malbeacon_connector.malbeacon.simulator import MalbeaconSimulator

SRC = Path(__file__).resolve().parents[2] / "src"
DEFAULT_COMMAND = (sys.executable, "-m", "malbeacon_connector")
# Settings a developer's shell may hold: never inherited, only what the test gives.
ISOLATED_PREFIXES = ("OPENCTI_", "CONNECTOR_", "MQ_", "S3_", "MALBEACON_", "QUEUE_PROTOCOL")


def connector_environment(platform: FakeOpenCTI, simulator: MalbeaconSimulator, **settings: str) -> dict[str, str]:
    """The environment of a connector pointed at a fake platform and a Malbeacon simulator; `settings` on top."""
    return {
        "OPENCTI_URL": platform.url,
        "OPENCTI_TOKEN": platform.token,
        "OPENCTI_JSON_LOGGING": "true",
        "CONNECTOR_ID": str(uuid.uuid4()),
        "CONNECTOR_TYPE": "INTERNAL_ENRICHMENT",
        "CONNECTOR_NAME": "Malbeacon",
        "CONNECTOR_SCOPE": "IPv4-Addr,IPv6-Addr,Domain-Name",
        "CONNECTOR_LOG_LEVEL": "info",
        "CONNECTOR_AUTO": "false",
        "CONNECTOR_EXPOSE_METRICS": "false",
        "MALBEACON_API_KEY": simulator.api_key,
        "MALBEACON_API_BASE_URL": simulator.base_url,
        "MALBEACON_MAX_TLP": "TLP:AMBER",
        **settings,
    }


class ConnectorProcess:
    """`start()` a command with an environment; wait for it, read its log, stop it by PID.

    The environment inherits this process's (PATH, ...) except connector settings (OPENCTI_*,
    CONNECTOR_*, MQ_*, ...), with `env` on top, the project's `src` on PYTHONPATH and unbuffered
    output, and its health file in `workdir` unless `env` names one. The working directory is `workdir`
    (no stray config.yml).
    """

    def __init__(
        self,
        env: Mapping[str, str],
        workdir: Path,
        *,
        command: Sequence[str] = DEFAULT_COMMAND,
        name: str = "connector",
    ) -> None:
        self.env = dict(env)
        self.workdir = Path(workdir)
        self.command = list(command)
        self.name = name
        self.log_path = self.workdir / f"{name}.log"
        self.process: subprocess.Popen | None = None
        self._log_file = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> ConnectorProcess:
        if self.process is not None:
            raise RuntimeError(f"{self.name} already started")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log_file = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command,
            env=self.environment(),
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=DIE_WITH_PARENT,  # SIGTERM if the test run dies
        )
        return self

    def environment(self) -> dict[str, str]:
        """The environment the process is given (the same serves a `health` command beside it)."""
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(ISOLATED_PREFIXES)}
        env = {**inherited, "MALBEACON_HEALTH_FILE": str(self.workdir / f"{self.name}.health.json")}
        env.update({**self.env, "PYTHONUNBUFFERED": "1"})
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH", "")) if p)
        return env

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.process.poll() if self.process is not None else None

    def wait_registered(self, fake: FakeOpenCTI, timeout: float = 30.0) -> None:
        """Wait (bounded) until the fake saw `registerConnector` for CONNECTOR_ID and a consumer is on
        `listen_<id>` (the helper's listen thread is attached). Fails early if the process exits."""
        connector_id = self.env["CONNECTOR_ID"]
        queue = f"listen_{connector_id}"
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                raise RuntimeError(f"{self.name} exited with {self.returncode} before listening\n{self.log_tail()}")
            if connector_id in fake.connectors:
                state = fake.queue_state(queue)
                if state is not None and state[1] >= 1:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} not listening on {queue} after {timeout} s\n{self.log_tail()}")
            time.sleep(0.1)

    def wait_exit(self, timeout: float = 10.0) -> int:
        """Wait (bounded) for the process to end by itself; its exit code."""
        assert self.process is not None
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired as error:
            raise TimeoutError(f"{self.name} still running after {timeout} s\n{self.log_tail()}") from error

    def signal(self, sig: int) -> None:
        """Send a signal to the process (by PID)."""
        if self.running:
            assert self.process is not None
            self.process.send_signal(sig)

    def terminate(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, wait up to `timeout`, then SIGKILL the process group; the exit code
        (negative: killed by that signal)."""
        code = stop_process(self.process, timeout, signal.SIGTERM)
        self._close_log()
        return code

    def kill(self) -> int | None:
        """SIGKILL at once (a crash); the exit code."""
        code = stop_process(self.process, 5, signal.SIGKILL)
        self._close_log()
        return code

    def __enter__(self) -> ConnectorProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.terminate()

    # -- output ----------------------------------------------------------------------------------

    def log_text(self) -> str:
        """Everything the process wrote (stdout and stderr) so far."""
        if not self.log_path.is_file():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def log_records(self) -> list[dict[str, Any]]:
        """The JSON log lines (pycti logs JSON with OPENCTI_JSON_LOGGING=true); other lines skipped."""
        records = []
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                try:
                    records.append(json.loads(line))
                except ValueError:
                    continue
        return records

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
