"""The command line: enrich, demo, exit statuses and messages."""

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from malbeacon_connector.cli import EXIT_API_FAILED, EXIT_OK, EXIT_USAGE, main
from malbeacon_connector.tlp import marking_id
from stix_checks import assert_valid_bundle, objects_of

SECRET = "SECRET-KEY-0000"


@pytest.fixture(autouse=True)
def isolated_settings(monkeypatch, tmp_path):
    """No stray settings: a clean environment of our variables and an empty working directory."""
    for name in list(os.environ):
        if name.startswith(("OPENCTI_", "CONNECTOR_", "MALBEACON_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def configured(monkeypatch, simulator):
    """Settings pointing at the simulator."""
    monkeypatch.setenv("MALBEACON_API_BASE_URL", simulator.base_url)
    monkeypatch.setenv("MALBEACON_API_KEY", simulator.api_key)
    monkeypatch.setenv("MALBEACON_REQUEST_TIMEOUT", "2")
    return simulator


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_enrich_prints_a_valid_bundle_and_a_summary(configured, capsys):
    status, out, err = run(capsys, "enrich", "203.0.113.7")
    assert status == EXIT_OK
    bundle = json.loads(out)
    assert_valid_bundle(bundle)
    assert {o["value"] for o in objects_of(bundle, "ipv6-addr")} == {"2001:db8:beef::12"}
    assert "203.0.113.7 (IPv4-Addr): 6 records" in err
    assert "1 found, 0 not found, 0 failed" in err


def test_enrich_infers_each_type_and_normalises_values(configured, capsys):
    status, _, err = run(capsys, "enrich", "--output", "out.json", "2001:DB8::7", "PANEL.example.net.")
    assert status == EXIT_OK
    assert "2001:db8::7 (IPv6-Addr): 1 records" in err
    assert "panel.example.net (Domain-Name): 3 records" in err
    assert [(r.endpoint, r.value) for r in configured.api_requests()] == [
        ("c2", "2001:db8::7"),
        ("c2", "panel.example.net"),
    ]


def test_not_found_is_a_success_with_an_empty_bundle(configured, capsys):
    status, out, err = run(capsys, "enrich", "198.51.100.250")
    assert status == EXIT_OK
    assert "not found in Malbeacon" in err
    assert [o["type"] for o in json.loads(out)["objects"]] == ["ipv4-addr"]


def test_api_failure_exits_1_with_an_actionable_message_and_no_key(configured, capsys, monkeypatch):
    monkeypatch.setenv("MALBEACON_API_KEY", SECRET)
    status, out, err = run(capsys, "enrich", "203.0.113.7")
    assert status == EXIT_API_FAILED
    assert "MALBEACON_API_KEY" in err and "401" in err
    assert SECRET not in err + out


def test_tlp_option_marks_the_value_and_everything_derived(configured, capsys, monkeypatch):
    monkeypatch.setenv("MALBEACON_MAX_TLP", "TLP:AMBER+STRICT")
    status, out, _ = run(capsys, "enrich", "--tlp", "amber+strict", "panel.example.net")
    assert status == EXIT_OK
    bundle = json.loads(out)
    assert_valid_bundle(bundle)
    shared = ("marking-definition", "identity", "location", "autonomous-system")  # reference data: unmarked
    marked = [o for o in bundle["objects"] if o["type"] not in shared]
    assert all(o["object_marking_refs"] == [marking_id("TLP:AMBER+STRICT")] for o in marked)
    assert objects_of(bundle, "location") and objects_of(bundle, "autonomous-system")


def test_input_file_and_output_file(configured, capsys, tmp_path):
    (tmp_path / "values.txt").write_text("# C2s\n203.0.113.7\n\npanel.example.net  # a domain\n203.0.113.7\n")
    status, out, err = run(capsys, "enrich", "--input", "values.txt", "--output", "bundle.json")
    assert status == EXIT_OK and out == ""
    assert len(configured.api_requests()) == 2  # the repeated value is asked once
    assert_valid_bundle(json.loads((tmp_path / "bundle.json").read_text()))
    assert "written to bundle.json" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["enrich", "not a value"], "'not a value' is not an IP address, a domain name or a URL"),
        (["enrich", "--type", "IPv6-Addr", "203.0.113.7"], "'203.0.113.7' is not an IPv6 address"),
        (["enrich", "--tlp", "purple", "203.0.113.7"], "--tlp: 'purple' is not a TLP level"),
        (["enrich"], "nothing to enrich"),
        (["enrich", "--input", "missing.txt"], "--input missing.txt: cannot be read"),
        (["enrich", "--output", "no/such/dir/x.json", "203.0.113.7"], "--output no/such/dir/x.json: cannot be written"),
    ],
)
def test_bad_usage_exits_2_with_a_message(configured, capsys, argv, message):
    status, _, err = run(capsys, *argv)
    assert status == EXIT_USAGE
    assert message in err


def test_invalid_settings_exit_2_naming_each_setting(capsys, monkeypatch):
    monkeypatch.setenv("MALBEACON_INDICATOR_SCORE_LEVEL", "200")
    status, _, err = run(capsys, "enrich", "203.0.113.7")
    assert status == EXIT_USAGE
    assert "MALBEACON_API_KEY (malbeacon.api_key): required" in err
    assert (
        "MALBEACON_INDICATOR_SCORE_LEVEL (malbeacon.indicator_score_level): '200' is not an integer from 0 to 100"
        in err
    )


def test_settings_come_from_config_yml_with_the_environment_winning(capsys, monkeypatch, simulator, tmp_path):
    (tmp_path / "config.yml").write_text(
        f"malbeacon:\n  api_key: wrong-key\n  api_base_url: {simulator.base_url}\n  indicator_score_level: 77\n"
    )
    monkeypatch.setenv("MALBEACON_API_KEY", simulator.api_key)
    status, out, _ = run(capsys, "enrich", "203.0.113.7")
    assert status == EXIT_OK
    assert {o["x_opencti_score"] for o in objects_of(json.loads(out), "indicator")} == {77}


def test_demo_writes_a_valid_bundle_and_explains_it(capsys, tmp_path):
    status, _, err = run(capsys, "demo", "--output", "demo.json")
    assert status == EXIT_OK
    bundle = json.loads((tmp_path / "demo.json").read_text())
    assert_valid_bundle(bundle)
    assert "4 found, 1 not found, 0 failed" in err
    assert len(objects_of(bundle, "indicator")) == 9


def test_no_command_runs_the_connector_which_first_checks_its_settings(capsys):
    status, _, err = run(capsys)
    assert status == EXIT_USAGE
    for setting in ("OPENCTI_URL", "OPENCTI_TOKEN", "CONNECTOR_ID", "MALBEACON_API_KEY"):
        assert f"{setting} (" in err


def _spawn(argv: list[str], env: dict[str, str], **options) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "malbeacon_connector", *argv], env=env, **options)


def test_missing_key_in_a_real_process_gives_a_message_not_a_traceback(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENCTI_", "CONNECTOR_", "MALBEACON_"))}
    process = _spawn(["enrich", "203.0.113.7"], env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == EXIT_USAGE
    assert b"MALBEACON_API_KEY" in err and b"Traceback" not in err and out == b""


def test_progress_bar_is_drawn_on_a_terminal_only(configured, tmp_path, capsys):
    (tmp_path / "values.txt").write_text("203.0.113.7\npanel.example.net\n")
    env = {**os.environ, "MALBEACON_API_BASE_URL": configured.base_url, "MALBEACON_API_KEY": configured.api_key}
    controller, terminal = pty.openpty()
    process = _spawn(
        ["enrich", "--input", "values.txt", "--output", "b.json"],
        env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=terminal,
    )
    os.close(terminal)
    seen = b""
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 1)
            if ready:
                try:
                    chunk = os.read(controller, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk
            elif process.poll() is not None:
                break
        process.wait(timeout=30)
    finally:
        process.kill()
        os.close(controller)
    assert process.returncode == EXIT_OK
    assert b"] 2/2" in seen
    assert main(["enrich", "--input", "values.txt", "--output", "c.json"]) == EXIT_OK
    assert "2/2" not in capsys.readouterr().err  # captured stderr is not a terminal
    assert Path(tmp_path / "c.json").exists()


@pytest.mark.parametrize(
    ("argv", "summary"),
    [
        (
            ["--type", "User-Agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/118.0"],
            "(User-Agent): 4 records",
        ),
        (["https://panel.example.net/gate/login.php"], "(Url): 3 records"),
    ],
)
def test_urls_and_user_agents_can_be_enriched_too(configured, capsys, argv, summary):
    status, out, err = run(capsys, "enrich", *argv)
    assert status == EXIT_OK and summary in err
    bundle = json.loads(out)
    assert_valid_bundle(bundle)
    assert objects_of(bundle, "infrastructure")


def test_lookups_are_configurable_and_each_costs_one_call(configured, capsys, monkeypatch):
    monkeypatch.setenv("MALBEACON_IP_LOOKUPS", "c2,actorip")
    status, out, _ = run(capsys, "enrich", "198.51.100.23")
    assert status == EXIT_OK
    assert [(r.endpoint, r.value) for r in configured.api_requests()] == [
        ("c2", "198.51.100.23"),
        ("actorip", "198.51.100.23"),
    ]
    assert {p["name"] for p in objects_of(json.loads(out), "infrastructure")} == {
        "C2 panel 203.0.113.7",
        "C2 panel panel.example.net",
    }


def test_a_tlp_above_the_maximum_is_refused_before_any_request(configured, capsys):
    status, _, err = run(capsys, "enrich", "--tlp", "red", "203.0.113.7")
    assert status == EXIT_USAGE
    assert "TLP:RED is above MALBEACON_MAX_TLP (TLP:AMBER)" in err
    assert configured.api_requests() == []
