"""`malbeacon-connector health` beside a real connector process: healthy once it listens, unhealthy within 10 s
of its death, "not running" after a clean stop, and naming the platform when the platform stops answering."""

import signal
import subprocess
import sys
import time

import pytest

from .connector_process import ConnectorProcess

DEATH_BOUND_SECONDS = 10.0


def health(process: ConnectorProcess) -> tuple[int, str]:
    """Run `health` with the connector's environment and working directory: its exit status and output."""
    done = subprocess.run(
        [sys.executable, "-m", "malbeacon_connector", "health"],
        env=process.environment(),
        cwd=process.workdir,
        capture_output=True,
        text=True,
        timeout=10,
    )
    return done.returncode, done.stdout + done.stderr


def wait_health(process: ConnectorProcess, healthy: bool, timeout: float) -> tuple[float, str]:
    """Run `health` until it says `healthy` (or not), at most `timeout` s; the time it took and its last line."""
    started = time.monotonic()
    while True:
        status, output = health(process)
        if (status == 0) is healthy:
            return time.monotonic() - started, output
        if time.monotonic() - started > timeout:
            pytest.fail(f"health still says {output!r} after {timeout} s\n{process.log_tail()}")
        time.sleep(0.2)


@pytest.fixture
def start_healthy(start_connector, connector_env, fake_opencti, tmp_path):
    """Start a connector process with its health file in tmp_path (and `settings` on top); return it once it
    listens and `health` says it is healthy."""

    def start(**settings: str) -> ConnectorProcess:
        process = start_connector({**connector_env, "MALBEACON_HEALTH_FILE": str(tmp_path / "health.json"), **settings})
        process.wait_registered(fake_opencti)
        _, output = wait_health(process, healthy=True, timeout=20)
        assert output.startswith(f"healthy: pid {process.pid} (listening), broker seen "), output
        assert output.count("\n") == 1, output
        return process

    return start


@pytest.fixture
def healthy_connector(start_healthy):
    return start_healthy()


@pytest.mark.platform_versions
def test_health_fails_within_10_s_of_a_kill_and_says_the_process_is_gone(healthy_connector):
    """SIGKILL without reaping: the PID stays taken (a zombie) and the file stops being rewritten."""
    healthy_connector.signal(signal.SIGKILL)
    took, output = wait_health(healthy_connector, healthy=False, timeout=DEATH_BOUND_SECONDS)
    assert took < DEATH_BOUND_SECONDS, output
    assert output.startswith(f"unhealthy: the connector (pid {healthy_connector.pid}) stopped updating its health")
    assert output.count("\n") == 1, output
    assert healthy_connector.wait_exit() == -signal.SIGKILL  # reaped: the PID is free
    status, output = health(healthy_connector)
    assert status == 1 and output.startswith(f"unhealthy: the connector (pid {healthy_connector.pid}) is not running")


def test_after_a_clean_stop_health_says_the_connector_is_not_running(healthy_connector, tmp_path):
    healthy_connector.signal(signal.SIGTERM)
    assert healthy_connector.wait_exit(timeout=15) == 0
    assert not (tmp_path / "health.json").exists()
    status, output = health(healthy_connector)
    assert (status, output) == (1, f"unhealthy: the connector is not running (no health file {tmp_path}/health.json)\n")


def test_a_platform_that_stops_answering_is_named_and_its_return_seen(start_healthy, fake_opencti):
    healthy_connector = start_healthy(MALBEACON_HEALTH_PLATFORM_SECONDS="5")
    fake_opencti.down = True  # every request answered 503
    took, output = wait_health(healthy_connector, healthy=False, timeout=15)
    assert output.startswith("unhealthy: platform last reached at "), output
    assert output.endswith(", bound 5 s; the connector is listening\n"), output
    assert took > 2, output  # the bound, from the last answer, not the first failure
    fake_opencti.down = False
    _, output = wait_health(healthy_connector, healthy=True, timeout=15)
    assert output.startswith(f"healthy: pid {healthy_connector.pid} (listening)"), output
