"""The health file: its format, the checks of `health` and their messages, its writer, and the command."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from malbeacon_connector import health
from malbeacon_connector.cli import main
from malbeacon_connector.health import HealthRecord, check, read_record, remove_record, write_record
from malbeacon_connector.opencti import compat, lifecycle
from malbeacon_connector.opencti.heartbeat import PROBE_QUERY, Heartbeat, start_heartbeat
from malbeacon_connector.settings import MalbeaconSettings, SettingsError, health_file_from
from test_cli import isolated_settings  # noqa: F401 - autouse: none of our variables, an empty working directory

NOW = 1_800_000_000.0
SRC = Path(__file__).resolve().parents[1] / "src"


def record(**changes: object) -> HealthRecord:
    """A record of this (living) process written at NOW, broker and platform just reached."""
    fields = {
        "pid": os.getpid(),
        "written": NOW,
        "started": NOW - 100,
        "activity": "listening",
        "broker_seen": NOW - 1,
        "broker_bound": 60.0,
        "platform_reached": NOW - 12,
        "platform_bound": 120.0,
    }
    return HealthRecord(**{**fields, **changes})  # type: ignore[arg-type]


def checked(path: Path, written: HealthRecord, now: float = NOW) -> health.Verdict:
    write_record(path, written)
    return check(path, now=now)


def dead_pid() -> int:
    """The PID of a process that has ended and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=10)
    return child.pid


# -- the checks and their messages -----------------------------------------------------------------


def test_a_fresh_record_of_a_living_process_is_healthy(tmp_path):
    verdict = checked(tmp_path / "health.json", record())
    assert verdict == health.Verdict(
        True, f"healthy: pid {os.getpid()} (listening), broker seen 1 s ago, platform reached 12 s ago"
    )


@pytest.mark.parametrize(("age", "healthy"), [(health.FRESH_SECONDS, True), (health.FRESH_SECONDS + 0.5, False)])
def test_a_record_not_rewritten_within_the_bound_means_the_writer_is_gone(tmp_path, age, healthy):
    verdict = checked(tmp_path / "health.json", record(written=NOW - age), now=NOW)
    assert verdict.healthy is healthy
    if not healthy:
        assert verdict.line == (
            f"unhealthy: the connector (pid {os.getpid()}) stopped updating its health file: last written at "
            "2027-01-15T07:59:53Z (7 s ago), bound 6 s"
        )


def test_the_freshness_bound_reports_a_dead_process_within_10_s():
    assert health.FRESH_SECONDS + health.WRITE_SECONDS <= 10 and health.WRITE_SECONDS < health.FRESH_SECONDS


def test_a_dead_pid_is_not_running(tmp_path):
    pid = dead_pid()
    verdict = checked(tmp_path / "health.json", record(pid=pid))
    assert verdict == health.Verdict(
        False,
        f"unhealthy: the connector (pid {pid}) is not running; its health file was last written at "
        "2027-01-15T08:00:00Z (0 s ago)",
    )


def test_a_pid_of_another_user_counts_as_alive(monkeypatch):
    def refused(pid: int, signal_number: int) -> None:
        raise PermissionError

    monkeypatch.setattr(os, "kill", refused)
    assert health.pid_alive(1)


def test_a_record_dated_in_the_future_is_doubted(tmp_path):
    verdict = checked(tmp_path / "health.json", record(written=NOW + 60))
    assert verdict.line == (
        f"unhealthy: the connector (pid {os.getpid()}) dated its health file 60 s in the future: has the clock changed?"
    )


def test_a_broker_never_seen_is_named_with_the_start_time(tmp_path):
    verdict = checked(tmp_path / "health.json", record(broker_seen=None, activity="connecting to the broker"))
    assert verdict.line == (
        "unhealthy: broker not seen since the connector started at 2027-01-15T07:58:20Z (100 s ago); "
        "the connector is connecting to the broker"
    )


def test_a_broker_not_seen_within_its_bound_is_named(tmp_path):
    verdict = checked(tmp_path / "health.json", record(broker_seen=NOW - 61))
    assert verdict.line == (
        "unhealthy: broker last seen at 2027-01-15T07:58:59Z (61 s ago), bound 60 s; the connector is listening"
    )


def test_a_broker_this_pycti_tells_nothing_of_is_not_checked(tmp_path):
    verdict = checked(tmp_path / "health.json", record(broker_seen=None, broker_bound=None))
    assert verdict.healthy and ", broker not checked, platform reached 12 s ago" in verdict.line


def test_a_platform_not_reached_within_its_bound_is_named(tmp_path):
    verdict = checked(tmp_path / "health.json", record(platform_reached=NOW - 121, activity="enriching"))
    assert verdict.line == (
        "unhealthy: platform last reached at 2027-01-15T07:57:59Z (121 s ago), bound 120 s; the connector is enriching"
    )


def test_broker_and_platform_both_lost_make_one_line(tmp_path):
    verdict = checked(tmp_path / "health.json", record(broker_seen=NOW - 90, platform_reached=None))
    assert verdict.line.startswith("unhealthy: broker last seen at ") and "\n" not in verdict.line
    assert "; platform not reached since the connector started at 2027-01-15T07:58:20Z (100 s ago);" in verdict.line


def test_a_missing_file_means_not_running(tmp_path):
    assert check(tmp_path / "health.json") == health.Verdict(
        False, f"unhealthy: the connector is not running (no health file {tmp_path}/health.json)"
    )


def test_a_file_that_cannot_be_opened_says_why(tmp_path):
    (tmp_path / "file").write_text("")
    assert check(tmp_path / "file" / "health.json").line == (
        f"unhealthy: health file {tmp_path}/file/health.json cannot be read (Not a directory)"
    )


def test_a_fifo_or_a_directory_is_not_waited_for(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    assert check(tmp_path / "fifo").line == f"unhealthy: health file {tmp_path}/fifo is unreadable (not a regular file)"
    assert check(tmp_path).line == f"unhealthy: health file {tmp_path} is unreadable (not a regular file)"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"[]", "not a health record of format 1"),
        (b'{"format": 2}', "not a health record of format 1"),
        (b'{"format": 1, "pid": 0}', "no valid pid"),
        (b'{"format": 1, "pid": true}', "no valid pid"),
        (b'{"format": 1, "pid": "12"}', "no valid pid"),
        (b'{"format": 1, "pid": 12, "written": "now"}', "no valid written"),
        (b'{"format": 1, "pid": 12, "written": NaN}', "no valid written"),
        (b'{"format": 1, "pid": 12, "written": 1, "started": 1, "broker_seen": -1}', "no valid broker_seen"),
        (b'{"format": 1, "pid": 12, "written": 1, "started": 1}', "no valid platform_bound"),
        (b"\xff\xfe", "not UTF-8 text"),
        (b" " * (health.MAX_FILE_BYTES + 1), "larger than 4096 bytes"),
    ],
)
def test_a_corrupt_file_says_what_is_wrong(tmp_path, content, reason):
    (tmp_path / "health.json").write_bytes(content)
    assert (
        check(tmp_path / "health.json").line
        == f"unhealthy: health file {tmp_path}/health.json is unreadable ({reason})"
    )


def test_a_record_reads_back_as_written(tmp_path):
    written = record(broker_seen=None, broker_bound=None, activity="stopping")
    write_record(tmp_path / "health.json", written)
    assert read_record(tmp_path / "health.json") == written


# -- writing and removing ---------------------------------------------------------------------------


def test_the_file_is_replaced_whole_and_no_temporary_file_is_left(tmp_path):
    path = tmp_path / "health.json"
    write_record(path, record())
    write_record(path, record(activity="enriching"))
    assert read_record(path).activity == "enriching"
    assert [p.name for p in tmp_path.iterdir()] == ["health.json"]


def test_a_write_that_cannot_be_renamed_leaves_nothing_behind(tmp_path):
    (tmp_path / "health.json").mkdir()  # the rename over a directory fails
    with pytest.raises(OSError):
        write_record(tmp_path / "health.json", record())
    assert [p.name for p in tmp_path.iterdir()] == ["health.json"]


def test_only_the_writer_s_own_file_is_removed(tmp_path):
    path = tmp_path / "health.json"
    write_record(path, record(pid=os.getpid() + 1))
    remove_record(path, os.getpid())
    assert path.exists()
    write_record(path, record())
    remove_record(path, os.getpid())
    assert not path.exists()
    remove_record(path, os.getpid())  # nothing to remove: no error


# -- the writer (opencti/heartbeat.py) -------------------------------------------------------------


class Logger:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        for level in ("info", "warning", "error"):
            setattr(self, level, lambda message, meta=None, level=level: self.lines.append((level, message)))


def stub_helper(listen_queue: object = None, answers: bool = True) -> SimpleNamespace:
    """pycti's helper as the heartbeat sees it: a listen queue, an API client, a logger."""
    asked: list[str] = []

    def query(text: str) -> dict:
        asked.append(text)
        if not helper.answers:
            raise ValueError("503 Service Unavailable\n<html>")
        return {"data": {"about": {"version": "7"}}}

    helper = SimpleNamespace(
        listen_queue=listen_queue, api=SimpleNamespace(query=query), connector_logger=Logger(), answers=answers
    )
    helper.asked = asked
    return helper


def amqp_queue(is_open: bool = True) -> threading.Thread:
    queue = threading.Thread(target=lambda: None)
    queue.pika_connection = SimpleNamespace(is_open=is_open)  # type: ignore[attr-defined]
    queue.listen_protocol = "AMQP"  # type: ignore[attr-defined]
    return queue


def test_the_writer_records_an_open_broker_connection_and_the_platform(tmp_path):
    beat = Heartbeat(tmp_path / "health.json", stub_helper(amqp_queue()), lambda: "listening")
    beat.write()
    written = read_record(tmp_path / "health.json")
    assert written.pid == os.getpid() and written.broker_seen == written.written and written.broker_bound == 60
    assert written.platform_reached == beat.started and written.platform_bound == health.PLATFORM_SECONDS
    assert check(tmp_path / "health.json").healthy


def test_a_closed_broker_connection_is_not_seen(tmp_path):
    beat = Heartbeat(tmp_path / "health.json", stub_helper(amqp_queue(is_open=False)), lambda: "listening")
    beat.write()
    assert read_record(tmp_path / "health.json").broker_seen is None
    assert check(tmp_path / "health.json").line.startswith("unhealthy: broker not seen since the connector started")


def test_without_pycti_s_listen_queue_internals_the_broker_is_not_checked(tmp_path):
    helper = stub_helper()
    del helper.listen_queue
    beat = Heartbeat(tmp_path / "health.json", helper, lambda: "listening")
    beat.write()
    assert read_record(tmp_path / "health.json").broker_bound is None
    assert "broker not checked" in check(tmp_path / "health.json").line


def test_the_platform_probe_records_answers_and_logs_a_failure_once(tmp_path):
    helper = stub_helper(amqp_queue(), answers=False)
    beat = Heartbeat(tmp_path / "health.json", helper, lambda: "listening")
    registered = beat.platform_reached
    beat.probe()
    beat.probe()
    assert beat.platform_reached == registered
    assert helper.connector_logger.lines == [
        ("warning", "The platform did not answer the health probe (ValueError: 503 Service Unavailable)")
    ]
    helper.answers = True
    beat.probe()
    assert beat.platform_reached > registered
    assert helper.connector_logger.lines[-1] == ("info", "The platform answers the health probe again")
    assert helper.asked == [PROBE_QUERY] * 3


def test_the_probe_interval_is_a_quarter_of_the_bound_and_30_s_at_most(tmp_path):
    assert Heartbeat(tmp_path / "h", stub_helper(), str, platform_bound=120).probe_seconds == 30
    assert Heartbeat(tmp_path / "h", stub_helper(), str, platform_bound=600).probe_seconds == 30
    assert Heartbeat(tmp_path / "h", stub_helper(), str, platform_bound=8).probe_seconds == 2


def test_a_file_that_cannot_be_written_is_logged_once_and_the_connector_goes_on(tmp_path):
    helper = stub_helper(amqp_queue())
    beat = Heartbeat(tmp_path / "missing" / "health.json", helper, lambda: "listening")
    beat.write()
    beat.write()
    ((level, line),) = helper.connector_logger.lines
    assert level == "error"
    assert line.startswith(f"The health file {tmp_path}/missing/health.json cannot be written (FileNotFoundError: ")
    (tmp_path / "missing").mkdir()
    beat.write()
    assert helper.connector_logger.lines[-1] == (
        "info",
        f"The health file {tmp_path}/missing/health.json is written again",
    )
    assert check(tmp_path / "missing" / "health.json").healthy


def test_an_activity_that_fails_is_unknown_rather_than_a_stopped_writer(tmp_path):
    beat = Heartbeat(tmp_path / "health.json", stub_helper(amqp_queue()), lambda: 1 / 0)  # type: ignore[arg-type,return-value]
    beat.write()
    assert read_record(tmp_path / "health.json").activity == "unknown"


def test_started_it_rewrites_the_file_and_stopped_it_removes_it(tmp_path):
    path = tmp_path / "health.json"
    helper = stub_helper(amqp_queue())
    beat = Heartbeat(path, helper, lambda: "listening", platform_bound=5, write_seconds=0.05).start()
    try:
        deadline = time.monotonic() + 5
        while not (path.exists() and read_record(path).written > beat.started + 0.1) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert read_record(path).written > beat.started + 0.1  # rewritten, not only written once
        while not helper.asked and time.monotonic() < deadline:
            time.sleep(0.02)
        assert helper.asked  # the platform is asked every 1.25 s
    finally:
        beat.stop()
    assert not path.exists()
    time.sleep(0.15)
    assert not path.exists()  # the writer has ended


def test_a_health_file_turned_off_starts_no_writer(tmp_path):
    settings = MalbeaconSettings(api_key="key", health_file="none")
    assert start_heartbeat(settings, stub_helper(), str) is None


def test_the_activity_says_what_the_connector_does():
    stopper = SimpleNamespace(requested=threading.Event())
    connector = SimpleNamespace(processing=threading.Event())
    helper = SimpleNamespace(listen_queue=amqp_queue(is_open=False))
    assert lifecycle._activity(stopper, helper, connector) == "connecting to the broker"  # type: ignore[arg-type]
    helper.listen_queue.pika_connection.is_open = True
    assert lifecycle._activity(stopper, helper, connector) == "listening"  # type: ignore[arg-type]
    connector.processing.set()
    assert lifecycle._activity(stopper, helper, connector) == "enriching"  # type: ignore[arg-type]
    stopper.requested.set()
    assert lifecycle._activity(stopper, helper, connector) == "stopping"  # type: ignore[arg-type]


def test_the_broker_connection_feature_check_and_its_fallbacks():
    assert compat.broker_connected(SimpleNamespace()) is None  # a pycti without a listen queue attribute
    assert compat.broker_connected(SimpleNamespace(listen_queue=None)) is False  # before listen()
    assert compat.broker_connected(SimpleNamespace(listen_queue=amqp_queue())) is True
    assert compat.broker_connected(SimpleNamespace(listen_queue=amqp_queue(is_open=False))) is False
    over_http = amqp_queue()
    over_http.listen_protocol = "API"  # type: ignore[attr-defined]
    assert compat.broker_connected(SimpleNamespace(listen_queue=over_http)) is None
    without_connection = threading.Thread(target=lambda: None)
    assert compat.broker_connected(SimpleNamespace(listen_queue=without_connection)) is None


# -- settings and the command ----------------------------------------------------------------------


def test_the_default_health_file_works_for_an_unprivileged_user_without_a_home():
    assert health_file_from({}) == Path("/tmp/malbeacon-connector-health.json")


def test_none_turns_the_health_file_off_and_an_empty_variable_counts_as_unset(monkeypatch):
    monkeypatch.setenv("MALBEACON_HEALTH_FILE", "None")
    assert health_file_from({"malbeacon": {"health_file": "/elsewhere.json"}}) is None
    monkeypatch.setenv("MALBEACON_HEALTH_FILE", "")
    assert health_file_from({"malbeacon": {"health_file": "/elsewhere.json"}}) == Path("/elsewhere.json")
    assert health_file_from({"malbeacon": {"health_file": None}}) is None


def test_health_reads_its_setting_whatever_the_others_hold(monkeypatch):
    monkeypatch.setenv("MALBEACON_MAX_TLP", "TLP:PURPLE")
    content = {"opencti": {"url": "not a url"}, "malbeacon": {"health_file": "/x.json", "api_key": 3, "typo": 1}}
    assert health_file_from(content) == Path("/x.json")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("/", "MALBEACON_HEALTH_FILE (malbeacon.health_file): '/' is a directory; give a file path in it, or none"),
        (["/x"], "MALBEACON_HEALTH_FILE (malbeacon.health_file): must be a file path, or none"),
    ],
)
def test_an_invalid_health_file_is_named(value, problem):
    with pytest.raises(SettingsError) as raised:
        health_file_from({"malbeacon": {"health_file": value}})
    assert raised.value.problems == [problem]


def test_the_platform_bound_is_a_setting_with_limits():
    assert MalbeaconSettings(api_key="key").health_platform_seconds == 120
    with pytest.raises(ValueError, match="'4' is not an integer from 5 to 3600"):
        MalbeaconSettings(api_key="key", health_platform_seconds="4")


def run_health(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_health_command_healthy_on_standard_output(monkeypatch, tmp_path, capsys):
    write_record(
        tmp_path / "health.json", record(written=time.time(), broker_seen=time.time(), platform_reached=time.time())
    )
    monkeypatch.setenv("MALBEACON_HEALTH_FILE", str(tmp_path / "health.json"))
    status, out, err = run_health(capsys, "health")
    assert (status, err) == (0, "")
    assert out.startswith(f"healthy: pid {os.getpid()} (listening), broker seen ") and out.count("\n") == 1


def test_health_command_unhealthy_on_standard_error_with_status_1(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("MALBEACON_HEALTH_FILE", str(tmp_path / "health.json"))
    assert run_health(capsys, "health") == (
        1,
        "",
        f"unhealthy: the connector is not running (no health file {tmp_path}/health.json)\n",
    )


def test_health_command_with_the_file_turned_off(monkeypatch, capsys):
    monkeypatch.setenv("MALBEACON_HEALTH_FILE", "none")
    assert run_health(capsys, "health") == (
        1,
        "",
        "unhealthy: cannot tell, the health file is turned off (MALBEACON_HEALTH_FILE=none)\n",
    )


@pytest.mark.parametrize("where", ["before", "after"])
def test_health_command_reads_the_config_file(tmp_path, capsys, where):
    (tmp_path / "other.yml").write_text(f"malbeacon:\n  health_file: {tmp_path}/from-config.json\n")
    argv = ["--config", "other.yml", "health"] if where == "before" else ["health", "--config", "other.yml"]
    status, _, err = run_health(capsys, *argv)
    assert status == 1 and f"no health file {tmp_path}/from-config.json" in err


@pytest.mark.parametrize(
    ("content", "line"),
    [
        (
            "malbeacon: [",
            "unhealthy: cannot tell, the settings are invalid: config.yml: cannot be read as YAML (ParserError)",
        ),
        (
            "- a list",
            "unhealthy: cannot tell, the settings are invalid: config.yml: must be a YAML mapping of sections "
            "(opencti, connector, malbeacon)",
        ),
        (
            "malbeacon:\n  health_file: [1]",
            "unhealthy: cannot tell, the settings are invalid: MALBEACON_HEALTH_FILE "
            "(malbeacon.health_file): must be a file path, or none",
        ),
    ],
)
def test_health_command_with_an_invalid_config_says_so_in_one_line(tmp_path, capsys, content, line):
    (tmp_path / "config.yml").write_text(content)
    assert run_health(capsys, "health") == (1, "", line + "\n")


def test_health_command_runs_without_pycti_nor_connector_settings(tmp_path):
    """As a HEALTHCHECK runs it: `python -m malbeacon_connector health`, only MALBEACON_HEALTH_FILE set."""
    script = (
        "import sys, runpy; sys.argv = ['x', 'health']\n"
        "try:\n    runpy.run_module('malbeacon_connector', run_name='__main__')\n"
        "except SystemExit as done:\n    print('pycti' in sys.modules, 'pika' in sys.modules, done.code)\n"
    )
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(SRC), "MALBEACON_HEALTH_FILE": str(tmp_path / "h.json")}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.stdout == "False False 1\n"
    assert done.stderr == f"unhealthy: the connector is not running (no health file {tmp_path}/h.json)\n"
