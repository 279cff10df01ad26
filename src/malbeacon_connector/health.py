"""The health file: what the connector process records every few seconds, and the checks of `health`.

The connector writes a small JSON record (`HealthRecord`) from a daemon thread (`opencti/heartbeat.py`);
`malbeacon-connector health` reads it, without pycti and without the OpenCTI settings, and says in one line
whether the process is alive, still writing, and has reached its broker and the platform recently.
"""

import json
import math
import os
import stat
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from malbeacon_connector.atomic_file import replace_atomically

FORMAT = 1
DEFAULT_HEALTH_FILE = Path("/tmp/malbeacon-connector-health.json")  # noqa: S108 - written atomically, see README
WRITE_SECONDS = 2.0  # the record is rewritten this often
FRESH_SECONDS = 6.0  # older than this, the writer is gone: a dead process is reported within 10 s
BROKER_SECONDS = 60.0  # pycti reconnects to a lost broker every 10 s or so: a restart of the broker fits
PLATFORM_SECONDS = 120  # three of pycti's pings (every 40 s); the platform shows a connector inactive after 5 min
MAX_FILE_BYTES = 4096
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True)
class HealthRecord:
    """One record of the health file; times are Unix times (seconds), bounds in seconds.

    `broker_bound` is None where this pycti tells nothing of its broker connection (not checked then).
    """

    pid: int
    written: float
    started: float
    activity: str
    broker_seen: float | None
    broker_bound: float | None
    platform_reached: float | None
    platform_bound: float

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, **asdict(self)}, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "HealthRecord":
        """The record in `text`; ValueError saying what is wrong."""
        try:
            content = json.loads(text)
        except ValueError:
            raise ValueError("not JSON") from None
        if not isinstance(content, dict) or content.get("format") != FORMAT:
            raise ValueError(f"not a health record of format {FORMAT}")
        pid = content.get("pid")
        if not isinstance(pid, int) or isinstance(pid, bool) or pid < 1:
            raise ValueError("no valid pid")
        activity = content.get("activity")
        return cls(
            pid=pid,
            written=_seconds(content, "written"),
            started=_seconds(content, "started"),
            activity=activity if isinstance(activity, str) else "unknown",
            broker_seen=_optional_seconds(content, "broker_seen"),
            broker_bound=_optional_seconds(content, "broker_bound"),
            platform_reached=_optional_seconds(content, "platform_reached"),
            platform_bound=_seconds(content, "platform_bound"),
        )


def _seconds(content: dict, key: str) -> float:
    """A time or a bound: a finite number of seconds from 0."""
    value = content.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < float("inf"):
        return float(value)
    raise ValueError(f"no valid {key}")


def _optional_seconds(content: dict, key: str) -> float | None:
    return None if content.get(key) is None else _seconds(content, key)


def write_record(path: Path, record: HealthRecord) -> None:
    """Replace `path` atomically: a temporary file beside it, then renamed over it (OSError when it cannot)."""
    replace_atomically(path, [record.to_json()], new_mode=0o644, keep_mode=False, durable=False)


def read_record(path: Path) -> HealthRecord:
    """The record at `path`: FileNotFoundError when there is none, OSError when it cannot be read, ValueError
    when it is not a record."""
    descriptor = os.open(path, _READ_FLAGS)  # without blocking: a FIFO would wait for a writer
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise ValueError("not a regular file")
        content = os.read(descriptor, MAX_FILE_BYTES + 1)
    finally:
        os.close(descriptor)
    if len(content) > MAX_FILE_BYTES:
        raise ValueError(f"larger than {MAX_FILE_BYTES} bytes")
    try:
        return HealthRecord.from_json(content.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None


def remove_record(path: Path, pid: int) -> None:
    """Remove the health file if it is `pid`'s (another process may have taken the same path since)."""
    try:
        if read_record(path).pid == pid:
            path.unlink()
    except (OSError, ValueError):
        pass


def pid_alive(pid: int) -> bool:
    """A process with this PID exists (in this PID namespace), whoever owns it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Verdict:
    healthy: bool
    line: str


def check(path: Path, now: float | None = None) -> Verdict:
    """The health of the connector that writes `path`, in one line."""
    now = time.time() if now is None else now
    try:
        record = read_record(path)
    except FileNotFoundError:
        return Verdict(False, f"unhealthy: the connector is not running (no health file {path})")
    except OSError as error:
        return Verdict(False, f"unhealthy: health file {path} cannot be read ({error.strerror or error})")
    except ValueError as error:
        return Verdict(False, f"unhealthy: health file {path} is unreadable ({error})")
    problem = _process_problem(record, now) or _connection_problem(record, now)
    if problem is not None:
        return Verdict(False, f"unhealthy: {problem}")
    broker = "not checked" if record.broker_bound is None else f"seen {_ago(record.broker_seen, now)}"
    return Verdict(
        True,
        f"healthy: pid {record.pid} ({record.activity}), broker {broker}, "
        f"platform reached {_ago(record.platform_reached, now)}",
    )


def _process_problem(record: HealthRecord, now: float) -> str | None:
    last = f"last written {_when(record.written, now)}"
    if not pid_alive(record.pid):
        return f"the connector (pid {record.pid}) is not running; its health file was {last}"
    if now - record.written > FRESH_SECONDS:
        return f"the connector (pid {record.pid}) stopped updating its health file: {last}, bound {FRESH_SECONDS:g} s"
    if record.written - now > FRESH_SECONDS:
        ahead = round(record.written - now)
        return f"the connector (pid {record.pid}) dated its health file {ahead} s in the future: has the clock changed?"
    return None


def _connection_problem(record: HealthRecord, now: float) -> str | None:
    problems = [
        _contact_problem("broker", "seen", record.broker_seen, record.broker_bound, record, now),
        _contact_problem("platform", "reached", record.platform_reached, record.platform_bound, record, now),
    ]
    return "; ".join(problem for problem in problems if problem) or None


def _contact_problem(
    what: str, verb: str, last: float | None, bound: float | None, record: HealthRecord, now: float
) -> str | None:
    if bound is None:
        return None
    doing = f"the connector is {record.activity}"
    if last is None:
        return f"{what} not {verb} since the connector started {_when(record.started, now)}; {doing}"
    if now - last > bound:
        return f"{what} last {verb} {_when(last, now)}, bound {bound:g} s; {doing}"
    return None


def _ago(moment: float | None, now: float) -> str:
    return "never" if moment is None else f"{max(0, math.ceil(now - moment))} s ago"


def _when(moment: float, now: float) -> str:
    stamp = datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"at {stamp} ({_ago(moment, now)})"
