"""The command line: enrich, demo, exit statuses and messages."""

import csv
import errno
import io
import json
import os
import pty
import re
import select
import stat
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
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
    """main's exit status (or argparse's: it exits), standard output and standard error."""
    try:
        status = main(list(argv))
    except SystemExit as exit_:
        status = exit_.code
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
    assert "2001:db8::7 (IPv6-Addr): 1 record, 1 kept" in err
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
        (["enrich", "--input", "missing.txt"], "--input missing.txt: cannot be read (No such file or directory)"),
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


def _config_for(simulator, path: Path, score: int = 77) -> Path:
    path.write_text(
        f"malbeacon:\n  api_key: {simulator.api_key}\n  api_base_url: {simulator.base_url}\n"
        f"  indicator_score_level: {score}\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize("before", [True, False], ids=["before-the-command", "after-the-command"])
def test_config_option_works_before_or_after_the_command(capsys, simulator, tmp_path, before):
    config = _config_for(simulator, tmp_path / "x.yml")
    _config_for(simulator, tmp_path / "config.yml", score=11)  # the default file, not read when --config is given
    option = ["--config", str(config)]
    argv = [*option, "enrich", "203.0.113.7"] if before else ["enrich", *option, "203.0.113.7"]
    status, out, _ = run(capsys, *argv)
    assert status == EXIT_OK
    assert {o["x_opencti_score"] for o in objects_of(json.loads(out), "indicator")} == {77}


@pytest.mark.parametrize(
    "argv",
    [
        ["--config", "missing.yml", "enrich", "203.0.113.7"],
        ["enrich", "--config", "missing.yml", "203.0.113.7"],
        ["--config", "missing.yml"],  # the connector, before it contacts OpenCTI
    ],
)
def test_a_missing_config_file_given_explicitly_exits_2_naming_it(configured, capsys, argv):
    status, out, err = run(capsys, *argv)
    assert status == EXIT_USAGE
    assert (
        err == "malbeacon-connector: invalid settings:\n  - missing.yml: cannot be read (No such file or directory)\n"
    )
    assert out == "" and configured.api_requests() == []


def test_an_unknown_setting_in_config_yml_exits_2_with_the_closest_known_key(configured, capsys, tmp_path):
    (tmp_path / "config.yml").write_text("malbeacon:\n  max-tlp: TLP:CLEAR\n", encoding="utf-8")
    status, _, err = run(capsys, "enrich", "203.0.113.7")
    assert status == EXIT_USAGE
    assert err == (
        "malbeacon-connector: invalid settings:\n"
        "  - malbeacon.max-tlp: unknown setting; did you mean malbeacon.max_tlp?\n"
    )
    assert configured.api_requests() == []


@pytest.mark.parametrize(
    ("spelling", "value", "canonical"),
    [
        ("ipv4-addr", "203.0.113.7", "IPv4-Addr"),
        ("ipv4-Addr", "203.0.113.7", "IPv4-Addr"),
        ("IPV4-ADDR", "203.0.113.7", "IPv4-Addr"),
        ("domain-name", "panel.example.net", "Domain-Name"),
    ],
)
def test_short_options_and_a_type_in_any_case(configured, capsys, tmp_path, spelling, value, canonical):
    (tmp_path / "values.txt").write_text(f"{value}\n", encoding="utf-8")
    status, out, err = run(capsys, "enrich", "-t", spelling, "-i", "values.txt", "-o", "out.json")
    assert status == EXIT_OK and out == ""
    assert f"{value} ({canonical}): " in err
    assert_valid_bundle(json.loads((tmp_path / "out.json").read_text(encoding="utf-8")))
    assert [(r.endpoint, r.value) for r in configured.api_requests()] == [("c2", value)]


def test_demo_has_the_short_output_option_too(capsys, tmp_path):
    status, _, _ = run(capsys, "demo", "-o", "d.json")
    assert status == EXIT_OK
    assert_valid_bundle(json.loads((tmp_path / "d.json").read_text(encoding="utf-8")))


CONFIG_HELP = "--config FILE settings file, before or after the command (default: ./config.yml, which may be absent)"


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        (
            "enrich",
            [
                "-t TYPE, --type TYPE the type of every value: IPv4-Addr, IPv6-Addr, Domain-Name, Url, User-Agent, "
                "any case (default: inferred from each value)",
                "TLP:CLEAR, TLP:GREEN, TLP:AMBER, TLP:AMBER+STRICT, TLP:RED (case-insensitive, the 'TLP:' prefix "
                "optional) (default: TLP:CLEAR)",
                "-i FILE, --input FILE a file of values, one per line (# starts a comment)",
                "-o FILE, --output FILE output file, - for standard output (default: -)",
                "-f FORMAT, --format FORMAT stix (a STIX 2.1 bundle), or a row per actor: table (plain text) or csv "
                "(default: stix)",
            ],
        ),
        (
            "simulate",
            [
                "--port PORT port, 0-65535, 0 for a free one (default: 0)",
                "--data FILE JSON data file (default: the bundled sample)",
                "--api-key API_KEY the key it accepts (default: simulator-key)",
            ],
        ),
        ("demo", ["-o FILE, --output FILE bundle file (default: demo-bundle.json)"]),
    ],
)
def test_help_of_each_command_shows_defaults_and_accepted_values(capsys, command, shown):
    status, out, _ = run(capsys, command, "--help")
    text = " ".join(out.split()).replace("Domain- Name", "Domain-Name")  # argparse may wrap at a hyphen
    assert status == EXIT_OK
    for option in [*shown, CONFIG_HELP]:
        assert option in text


@pytest.mark.parametrize("kind", ["missing-directory", "a-directory", "file-as-directory"])
def test_output_is_checked_before_any_malbeacon_request(configured, capsys, tmp_path, kind):
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    output, reason = {
        "missing-directory": ("no/such/dir/x.json", f"no directory {tmp_path / 'no/such/dir'}"),
        "a-directory": ("adir", "it is a directory"),
        "file-as-directory": ("afile/x.json", f"no directory {tmp_path / 'afile'}"),
    }[kind]
    status, out, err = run(capsys, "enrich", "--output", output, "203.0.113.7")
    assert status == EXIT_USAGE and out == ""
    assert err == f"malbeacon-connector: --output {output}: cannot be written ({reason})\n"
    assert configured.api_requests() == []


def test_demo_checks_its_output_before_starting(capsys, tmp_path):
    status, _, err = run(capsys, "demo", "--output", "no/x.json")
    assert status == EXIT_USAGE
    assert err == f"malbeacon-connector: --output no/x.json: cannot be written (no directory {tmp_path / 'no'})\n"


@pytest.mark.parametrize("output_format", ["stix", "table", "csv"])
def test_the_output_file_is_replaced_atomically_keeping_its_permissions(
    configured, capsys, tmp_path, monkeypatch, output_format
):
    """The output goes to a temporary file beside it, renamed over it once complete, in every format."""
    output = tmp_path / "bundle.json"
    output.write_text("previous\n", encoding="utf-8")
    output.chmod(0o640)
    replacements = []
    real_replace = os.replace

    def spying_replace(source, target):
        replacements.append((Path(source).parent, Path(target).read_text(), Path(source).read_bytes().decode()))
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", spying_replace)
    status, out, err = run(capsys, "enrich", "-f", output_format, "--output", "bundle.json", "203.0.113.7")
    assert status == EXIT_OK and out == ""
    ((directory, before, written),) = replacements
    assert (directory, before) == (tmp_path, "previous\n")  # the old file stayed whole until the rename
    assert output.read_bytes().decode("utf-8") == written
    assert stat.S_IMODE(output.stat().st_mode) == 0o640
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bundle.json"]
    if output_format == "stix":
        assert_valid_bundle(json.loads(written))
        assert "STIX objects written to bundle.json\n" in err
    else:
        assert written == (CSV_OF_203_0_113_7 if output_format == "csv" else TABLE_OF_203_0_113_7)
        assert f"5 actor rows ({output_format}) written to bundle.json\n" in err


def test_a_failed_write_leaves_the_previous_file_and_no_temporary_one(configured, capsys, tmp_path, monkeypatch):
    output = tmp_path / "bundle.json"
    output.write_text("previous\n", encoding="utf-8")

    def full_disk(source, target):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", full_disk)
    status, _, err = run(capsys, "enrich", "--output", "bundle.json", "203.0.113.7")
    assert status == EXIT_USAGE
    assert err == "malbeacon-connector: --output bundle.json: cannot be written (No space left on device)\n"
    assert output.read_text(encoding="utf-8") == "previous\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bundle.json"]


def test_an_output_through_a_symbolic_link_replaces_the_file_it_names(configured, capsys, tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "bundle.json").write_text("previous\n", encoding="utf-8")
    (tmp_path / "link.json").symlink_to(tmp_path / "real" / "bundle.json")
    status, _, _ = run(capsys, "enrich", "--output", "link.json", "203.0.113.7")
    assert status == EXIT_OK
    assert (tmp_path / "link.json").is_symlink()
    assert_valid_bundle(json.loads((tmp_path / "real" / "bundle.json").read_text(encoding="utf-8")))


def test_an_output_pipe_is_written_in_place_not_replaced(configured, capsys, tmp_path):
    """A named pipe (like /dev/stdout or /dev/null) is written to, never renamed over."""
    pipe = tmp_path / "bundle.pipe"
    os.mkfifo(pipe)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(pipe.read_bytes()), daemon=True)
    reader.start()
    status, _, _ = run(capsys, "enrich", "--output", str(pipe), "203.0.113.7")
    reader.join(timeout=30)
    assert status == EXIT_OK and not reader.is_alive()
    assert stat.S_ISFIFO(pipe.stat().st_mode)
    assert_valid_bundle(json.loads(received[0]))


@pytest.mark.parametrize(
    ("argv", "head", "objects"),
    [
        (["203.0.113.7"], "1 value: 1 found, 0 not found, 0 failed", "STIX objects"),
        (["198.51.100.250"], "1 value: 0 found, 1 not found, 0 failed", "STIX object"),
        (["203.0.113.7", "198.51.100.250"], "2 values: 1 found, 1 not found, 0 failed", "STIX objects"),
    ],
)
def test_the_closing_summary_says_value_and_object_in_the_singular_when_one(configured, capsys, argv, head, objects):
    status, out, err = run(capsys, "enrich", *argv)
    count = len(json.loads(out)["objects"])
    assert status == EXIT_OK
    assert (count == 1) == (objects == "STIX object")
    assert f"\n{head}; {count} {objects} written to standard output\n" in err


_LIMITED_PROCESS = (  # at most 2 GiB of memory: reading /dev/zero whole fails fast instead of filling the machine
    "import resource, runpy, sys; resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30)); "
    "runpy.run_module('malbeacon_connector', run_name='__main__', alter_sys=True)"
)


def _run_process(argv: list[str], cwd: Path, **variables: str) -> subprocess.CompletedProcess:
    """`python -m malbeacon_connector ARGV` in its own process, with a bounded wait and bounded memory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENCTI_", "CONNECTOR_", "MALBEACON_"))}
    env["MALBEACON_API_BASE_URL"] = "http://127.0.0.1:9/v1/"  # the loopback discard port: nothing leaves the host
    return subprocess.run(
        [sys.executable, "-c", _LIMITED_PROCESS, *argv],
        env={**env, **variables},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
    )


PROGRAM = "python -m malbeacon_connector"
BAD_ARGUMENTS = [
    pytest.param(
        ["simulate", "--port", "99999"],
        f"{PROGRAM} simulate: argument --port: '99999' is not a port number from 0 to 65535 (see --help)",
        id="port-99999",
    ),
    pytest.param(
        ["simulate", "--port", "-1"],
        f"{PROGRAM} simulate: argument --port: '-1' is not a port number from 0 to 65535 (see --help)",
        id="port-negative",
    ),
    pytest.param(
        ["simulate", "--port", "abc"],
        f"{PROGRAM} simulate: argument --port: 'abc' is not a port number from 0 to 65535 (see --help)",
        id="port-abc",
    ),
    pytest.param(
        ["simulate", "--data", "/dev/zero"],
        "malbeacon-connector: --data /dev/zero: not a regular file",
        id="data-device",
    ),
    pytest.param(
        ["enrich", "--type", "Email-Addr", "x@example.org"],
        f"{PROGRAM} enrich: argument -t/--type: 'Email-Addr' is not one of IPv4-Addr, IPv6-Addr, Domain-Name, Url, "
        "User-Agent (any case) (see --help)",
        id="type-unknown",
    ),
    pytest.param(
        ["enrich", "--format", "json", "203.0.113.7"],
        f"{PROGRAM} enrich: argument -f/--format: 'json' is not one of stix, table, csv (see --help)",
        id="format-unknown",
    ),
    pytest.param(
        ["enrich", "--input", "/dev/zero"],
        "malbeacon-connector: --input /dev/zero: cannot be read (larger than 64 MiB)",
        id="input-endless",
    ),
    pytest.param(
        ["demo", "--output", "/"],
        "malbeacon-connector: --output /: cannot be written (it is a directory)",
        id="demo-output",
    ),
]


@pytest.mark.parametrize(("argv", "message"), BAD_ARGUMENTS)
def test_every_bad_argument_exits_2_with_one_line_never_a_traceback(tmp_path, argv, message):
    process = _run_process(argv, tmp_path, MALBEACON_API_KEY="k")
    assert (process.returncode, process.stderr, process.stdout) == (EXIT_USAGE, message + "\n", "")


@pytest.mark.parametrize(
    ("argv", "part"),
    [
        (["enrich", "--bogus", "203.0.113.7"], "unrecognized arguments: --bogus"),
        (["simulate", "--port"], "argument --port: expected one argument"),
        (["frobnicate"], "argument COMMAND: invalid choice: 'frobnicate'"),
        (["--config"], "argument --config: expected one argument"),
        (["demo", "extra"], "unrecognized arguments: extra"),
    ],
)
def test_argparse_errors_still_exit_2_on_one_line(tmp_path, argv, part):
    process = _run_process(argv, tmp_path)
    assert process.returncode == EXIT_USAGE and process.stdout == ""
    (line,) = process.stderr.splitlines()
    assert line.startswith(PROGRAM) and part in line and line.endswith("(see --help)")


@pytest.mark.parametrize("kind", ["device", "pipe"])
def test_a_key_file_or_config_file_that_is_not_a_regular_file_is_refused_without_waiting(tmp_path, kind):
    """MALBEACON_API_KEY_FILE=/dev/zero never ended, a named pipe waited for a writer: both refused at once."""
    special = "/dev/zero" if kind == "device" else str(tmp_path / "pipe")
    if kind == "pipe":
        os.mkfifo(special)
    process = _run_process(["enrich", "203.0.113.7"], tmp_path, MALBEACON_API_KEY_FILE=special)
    assert (process.returncode, process.stderr) == (
        EXIT_USAGE,
        "malbeacon-connector: invalid settings:\n"
        f"  - MALBEACON_API_KEY (malbeacon.api_key): MALBEACON_API_KEY_FILE '{special}' cannot be read "
        "(not a regular file)\n",
    )
    process = _run_process(["enrich", "--config", special, "203.0.113.7"], tmp_path, MALBEACON_API_KEY="k")
    assert (process.returncode, process.stderr) == (
        EXIT_USAGE,
        f"malbeacon-connector: invalid settings:\n  - {special}: cannot be read (not a regular file)\n",
    )


CSV_OF_203_0_113_7 = (  # the simulator's sample: one row per actor IP and host name, sorted
    "enriched value,value,type,autonomous system,country,first seen,last seen,C2 panels,tags\r\n"
    "203.0.113.7,192.0.2.44,IPv4-Addr,AS64502 Example Mobile,DE Germany,"
    "2020-11-02T18:40:13Z,2020-11-02T18:40:13Z,203.0.113.7,agenttesla\r\n"
    "203.0.113.7,198.51.100.23,IPv4-Addr,AS64500 Example Broadband,NL Netherlands,"
    '2020-10-22T09:04:40Z,2020-10-23T11:15:02Z,203.0.113.7,"agenttesla, stealer"\r\n'
    "203.0.113.7,2001:db8:beef::12,IPv6-Addr,AS64503 Example VPN,RO Romania,"
    '2020-11-05T07:01:55Z,2020-11-05T07:01:55Z,203.0.113.7,"agenttesla, stealer"\r\n'
    "203.0.113.7,dsl-198-51-100-23.isp.example.com,Domain-Name,AS64500 Example Broadband,NL Netherlands,"
    '2020-10-22T09:04:40Z,2020-10-23T11:15:02Z,203.0.113.7,"agenttesla, stealer"\r\n'
    "203.0.113.7,vpn-exit.example.org,Domain-Name,AS64503 Example VPN,RO Romania,"
    '2020-11-05T07:01:55Z,2020-11-05T07:01:55Z,203.0.113.7,"agenttesla, stealer"\r\n'
)

TABLE_OF_203_0_113_7 = (
    "203.0.113.7 (IPv4-Addr): 5 actors\n"
    "  value                              type         autonomous system          country         "
    "first seen            last seen             C2 panels    tags\n"
    "  ---------------------------------  -----------  -------------------------  --------------  "
    "--------------------  --------------------  -----------  -------------------\n"
    "  192.0.2.44                         IPv4-Addr    AS64502 Example Mobile     DE Germany      "
    "2020-11-02T18:40:13Z  2020-11-02T18:40:13Z  203.0.113.7  agenttesla\n"
    "  198.51.100.23                      IPv4-Addr    AS64500 Example Broadband  NL Netherlands  "
    "2020-10-22T09:04:40Z  2020-10-23T11:15:02Z  203.0.113.7  agenttesla, stealer\n"
    "  2001:db8:beef::12                  IPv6-Addr    AS64503 Example VPN        RO Romania      "
    "2020-11-05T07:01:55Z  2020-11-05T07:01:55Z  203.0.113.7  agenttesla, stealer\n"
    "  dsl-198-51-100-23.isp.example.com  Domain-Name  AS64500 Example Broadband  NL Netherlands  "
    "2020-10-22T09:04:40Z  2020-10-23T11:15:02Z  203.0.113.7  agenttesla, stealer\n"
    "  vpn-exit.example.org               Domain-Name  AS64503 Example VPN        RO Romania      "
    "2020-11-05T07:01:55Z  2020-11-05T07:01:55Z  203.0.113.7  agenttesla, stealer\n"
)


def parsed_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


CSV_HEADER, *ACTORS_OF_203_0_113_7 = parsed_csv(CSV_OF_203_0_113_7)


@pytest.mark.parametrize("option", ["--format", "-f"])
def test_csv_format_writes_a_row_per_actor_and_keeps_the_summaries_on_stderr(configured, capsys, option):
    status, out, err = run(capsys, "enrich", option, "csv", "203.0.113.7", "198.51.100.250")
    assert status == EXIT_OK
    assert out == CSV_OF_203_0_113_7
    assert parsed_csv(out) == [CSV_HEADER, *ACTORS_OF_203_0_113_7]
    assert ACTORS_OF_203_0_113_7[0][:2] == ["203.0.113.7", "192.0.2.44"] and len(ACTORS_OF_203_0_113_7) == 5
    assert err == (
        "203.0.113.7 (IPv4-Addr): 6 records, 6 kept; 3 actor IPs, 2 actor host names; ignored: actorhostname: "
        "not a valid host name x2, actorip: not an IP address x1, tstamp: not a date and time x1 [1 API call]\n"
        "198.51.100.250 (IPv4-Addr): not found in Malbeacon [1 API call]\n"
        "2 values: 1 found, 1 not found, 0 failed; 5 actor rows (csv) written to standard output\n"
    )


def test_table_format_has_a_heading_and_a_row_per_actor_and_says_what_was_not_found(configured, capsys):
    status, out, err = run(capsys, "enrich", "--format", "TABLE", "203.0.113.7", "198.51.100.250")
    assert status == EXIT_OK
    assert out == TABLE_OF_203_0_113_7 + "\n198.51.100.250 (IPv4-Addr): not found in Malbeacon\n"
    cells = [re.split(r" {2,}", line.strip()) for line in out.splitlines()[1:8]]  # the same as the CSV
    assert [cells[0], *cells[2:]] == [header[1:] for header in [CSV_HEADER, *ACTORS_OF_203_0_113_7]]
    assert "2 values: 1 found, 1 not found, 0 failed; 5 actor rows (table) written to standard output\n" in err
    assert "(IPv4-Addr): 6 records" in err and "records" not in out


def test_a_failed_value_is_said_in_the_table_and_exits_1_without_the_key(configured, capsys, monkeypatch):
    monkeypatch.setenv("MALBEACON_API_KEY", SECRET)
    status, out, err = run(capsys, "enrich", "--format", "table", "203.0.113.7")
    assert status == EXIT_API_FAILED
    assert out.startswith("203.0.113.7 (IPv4-Addr): failed: ") and "401" in out and out.count("\n") == 1
    assert "1 value: 0 found, 0 not found, 1 failed; 0 actor rows (table) written to standard output" in err
    assert SECRET not in out + err


def test_the_stix_format_is_the_default_bundle(configured, capsys):
    status, out, err = run(capsys, "enrich", "--format", "stix", "203.0.113.7")
    assert status == EXIT_OK
    bundle = json.loads(out)
    assert_valid_bundle(bundle)
    assert {o["value"] for o in objects_of(bundle, "ipv6-addr")} == {"2001:db8:beef::12"}
    assert f"{len(bundle['objects'])} STIX objects written to standard output\n  autonomous-system: " in err


def test_csv_from_the_real_command_line_against_the_simulator_over_loopback(configured, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENCTI_", "CONNECTOR_", "MALBEACON_"))}
    env.update(MALBEACON_API_BASE_URL=configured.base_url, MALBEACON_API_KEY=configured.api_key)
    assert configured.base_url.startswith("http://127.0.0.1:")
    process = subprocess.run(
        [sys.executable, "-m", "malbeacon_connector", "enrich", "--format", "csv", "198.51.100.250", "203.0.113.7"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
    )
    assert process.returncode == EXIT_OK, process.stderr
    assert parsed_csv(process.stdout.decode("utf-8")) == [CSV_HEADER, *ACTORS_OF_203_0_113_7]
    assert process.stdout == CSV_OF_203_0_113_7.encode("utf-8")
    assert b"2 values: 1 found, 1 not found, 0 failed; 5 actor rows (csv) written to standard output" in process.stderr
    assert [(r.endpoint, r.value) for r in configured.api_requests()] == [
        ("c2", "198.51.100.250"),
        ("c2", "203.0.113.7"),
    ]


def test_the_daily_call_limit_holds_within_one_run(configured, capsys, monkeypatch):
    monkeypatch.setenv("MALBEACON_DAILY_CALL_LIMIT", "2")
    status, out, err = run(capsys, "enrich", "203.0.113.7", "panel.example.net", "2001:db8::7")
    assert status == EXIT_API_FAILED
    assert len(configured.api_requests()) == 2
    assert "2001:db8::7 (IPv6-Addr): failed: the daily limit of 2 Malbeacon requests is reached" in err
    assert "3 values: 2 found, 0 not found, 1 failed" in err
    assert objects_of(json.loads(out), "indicator")  # what was found is still written


def test_the_same_answers_at_the_same_time_give_the_same_bundle_byte_for_byte(configured, capsys, monkeypatch):
    from malbeacon_connector import cli

    class FrozenClock(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

    monkeypatch.setattr(cli, "datetime", FrozenClock)
    outputs = [run(capsys, "enrich", "203.0.113.7", "panel.example.net", "198.51.100.250")[1] for _ in range(2)]
    assert outputs[0] == outputs[1]
    bundle = json.loads(outputs[0])
    assert bundle["id"].startswith("bundle--") and len(bundle["objects"]) > 20
    assert outputs[0].count("\n") == len(bundle["objects"]) + 2  # one object per line
