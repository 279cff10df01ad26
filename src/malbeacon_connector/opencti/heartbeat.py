"""The health file's writer (read by `malbeacon-connector health`, see `health.py`).

A daemon thread rewrites the file every 2 s: the process's PID, when the broker connection of pycti's listen
queue was last seen open, when the platform last answered, and what the connector is doing. The platform is
asked by a second daemon thread (a GraphQL `about` query, the one pycti's own health check sends), so that a
platform that hangs does not stop the record: it only stops being "reached".
"""

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from malbeacon_connector import health
from malbeacon_connector.opencti import compat
from malbeacon_connector.settings import MalbeaconSettings

PROBE_QUERY = "query MalbeaconHealth { about { version } }"
PROBE_MAX_SECONDS = 30.0


def _reason(error: Exception) -> str:
    text = str(error).splitlines()[0][:200] if str(error) else ""
    return f"{error.__class__.__name__}: {text}" if text else error.__class__.__name__


class Heartbeat:
    """`start()` writing `path` and asking the platform; `stop()` to remove the file (a clean stop)."""

    def __init__(
        self,
        path: Path,
        helper: Any,
        activity: Callable[[], str],
        platform_bound: float = health.PLATFORM_SECONDS,
        write_seconds: float = health.WRITE_SECONDS,
    ) -> None:
        self.path = path
        self.helper = helper
        self.activity = activity
        self.platform_bound = float(platform_bound)
        self.probe_seconds = min(PROBE_MAX_SECONDS, self.platform_bound / 4)
        self.write_seconds = write_seconds
        self.pid = os.getpid()
        self.started = time.time()
        self.broker_seen: float | None = None
        self.platform_reached: float | None = self.started  # the helper has just registered with the platform
        self._stopped = threading.Event()
        self._failing = {"write": False, "probe": False}
        self._writer = threading.Thread(target=self._write_loop, name="health-file", daemon=True)
        self._prober = threading.Thread(target=self._probe_loop, name="health-probe", daemon=True)

    def start(self) -> "Heartbeat":
        self._writer.start()
        self._prober.start()
        return self

    def stop(self) -> None:
        """Stop writing and remove the file, so that `health` says the connector is not running. A probe waiting
        for the platform is left to end with the process."""
        self._stopped.set()
        self._writer.join(timeout=2 * self.write_seconds)
        health.remove_record(self.path, self.pid)

    def record(self, now: float) -> health.HealthRecord:
        """The record to write at `now`; the broker counts as seen when the listen queue's connection is open."""
        connected = compat.broker_connected(self.helper)
        if connected:
            self.broker_seen = now
        try:
            activity = self.activity()
        except Exception:
            activity = "unknown"
        return health.HealthRecord(
            pid=self.pid,
            written=now,
            started=self.started,
            activity=activity,
            broker_seen=self.broker_seen,
            broker_bound=None if connected is None else health.BROKER_SECONDS,
            platform_reached=self.platform_reached,
            platform_bound=self.platform_bound,
        )

    def write(self) -> None:
        try:
            health.write_record(self.path, self.record(time.time()))
        except Exception as error:  # the connector goes on; `health` reports the file as stale or missing
            self._report("write", f"The health file {self.path} cannot be written ({_reason(error)})")
        else:
            self._report("write", None, f"The health file {self.path} is written again")

    def probe(self) -> None:
        """Ask the platform (one small GraphQL query); on an answer, it was reached now."""
        try:
            self.helper.api.query(PROBE_QUERY)
        except Exception as error:
            self._report("probe", f"The platform did not answer the health probe ({_reason(error)})")
        else:
            self.platform_reached = time.time()
            self._report("probe", None, "The platform answers the health probe again")

    def _write_loop(self) -> None:
        while True:
            self.write()
            if self._stopped.wait(self.write_seconds):
                return

    def _probe_loop(self) -> None:
        while not self._stopped.wait(self.probe_seconds):
            self.probe()

    def _report(self, what: str, problem: str | None, recovery: str = "") -> None:
        """Log a problem once, and its end once."""
        logger = self.helper.connector_logger
        if problem is not None and not self._failing[what]:
            (logger.error if what == "write" else logger.warning)(problem)
        elif problem is None and self._failing[what]:
            logger.info(recovery)
        self._failing[what] = problem is not None


def start_heartbeat(settings: MalbeaconSettings, helper: Any, activity: Callable[[], str]) -> Heartbeat | None:
    """The running heartbeat of the settings' health file; None when it is turned off."""
    if settings.health_file is None:
        return None
    return Heartbeat(settings.health_file, helper, activity, settings.health_platform_seconds).start()
