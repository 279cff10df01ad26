"""Deployment files: schema, manifest, compose file, sample config, pins, and the Dockerfile replayed."""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import venv
from pathlib import Path

import yaml
from packaging.specifiers import SpecifierSet

from malbeacon_connector import __version__
from malbeacon_connector.cli import build_parser
from malbeacon_connector.health import HealthRecord, write_record
from malbeacon_connector.schema import SCHEMA_PATH, render
from malbeacon_connector.settings import DEFAULT_SCOPE, Settings

ROOT = Path(__file__).resolve().parent.parent
SPEC_VARIABLES = {
    "OPENCTI_URL",
    "OPENCTI_TOKEN",
    "CONNECTOR_ID",
    "CONNECTOR_NAME",
    "CONNECTOR_SCOPE",
    "CONNECTOR_AUTO",
    "CONNECTOR_LOG_LEVEL",
    "MALBEACON_API_KEY",
    "MALBEACON_API_BASE_URL",
    "MALBEACON_INDICATOR_SCORE_LEVEL",
    "MALBEACON_MAX_TLP",
}


def setting_names() -> set[str]:
    return {
        f"{section}_{name}".upper()
        for section, field in Settings.model_fields.items()
        for name in field.annotation.model_fields
    }


def test_config_schema_file_is_up_to_date():
    """Regenerate with `python -m malbeacon_connector.schema` after changing the settings."""
    assert (ROOT / SCHEMA_PATH).read_text(encoding="utf-8") == render()


def test_config_schema_lists_every_setting_and_the_required_ones():
    schema = json.loads(render())
    assert set(schema["properties"]) == setting_names() | {"CONNECTOR_TYPE"}
    assert set(schema["required"]) == {"OPENCTI_URL", "OPENCTI_TOKEN", "CONNECTOR_ID"}
    assert schema["anyOf"] == [{"required": ["MALBEACON_API_KEY"]}, {"required": ["MALBEACON_API_KEY_FILE"]}]
    assert schema["properties"]["MALBEACON_INDICATOR_SCORE_LEVEL"] == {
        "default": 50,
        "description": schema["properties"]["MALBEACON_INDICATOR_SCORE_LEVEL"]["description"],
        "maximum": 100,
        "minimum": 0,
        "type": "integer",
    }
    assert schema["properties"]["MALBEACON_API_KEY"]["writeOnly"] is True


def test_manifest_declares_playbooks_scope_license_and_version():
    manifest = json.loads((ROOT / "__metadata__" / "connector_manifest.json").read_text())
    assert manifest["playbook_supported"] is True
    assert manifest["container_type"] == "INTERNAL_ENRICHMENT"
    assert manifest["license_type"] == "Commercial"
    assert manifest["support_version"].startswith(">=")
    assert tuple(manifest["scope"]) == DEFAULT_SCOPE
    assert manifest["version"] == __version__ and manifest["container_version"] == "rolling"


def test_compose_file_uses_the_public_variable_names():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    environment = compose["services"]["connector-malbeacon"]["environment"]
    names = {entry.split("=", 1)[0] for entry in environment}
    assert names == SPEC_VARIABLES
    assert names <= setting_names()


def test_sample_config_documents_every_setting():
    text = (ROOT / "config.yml.sample").read_text()
    sample = yaml.safe_load(text)
    documented = {f"{section}_{name}".upper() for section, values in sample.items() for name in values}
    documented |= {f"malbeacon_{name}".upper() for name in re.findall(r"^  # (\w+): ", text, re.MULTILINE)}
    assert documented == setting_names()


def test_requirements_are_pinned_and_agree_with_the_project():
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"not pinned: {line}"
            pins[name.lower().replace("_", "-")] = version
    pyproject = (ROOT / "pyproject.toml").read_text()
    (supported,) = re.findall(r'"pycti([<>=!~][^"]*)"', pyproject)
    assert SpecifierSet(supported) == SpecifierSet(">=6.0,<8")  # every supported platform: 6.0 to the newest 7.x
    assert pins["pycti"] in SpecifierSet(supported)  # the tested default is one of them
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"ARG PYCTI_VERSION={pins['pycti']}" in dockerfile
    for dependency in ("stix2", "pydantic", "pydantic-settings", "requests", "pyyaml"):
        assert dependency in pins


def _dockerfile_steps() -> list[tuple[str, str]]:
    """The Dockerfile's instructions, build arguments replaced by their defaults."""
    steps, arguments = [], {}
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            instruction, _, argument = line.partition(" ")
            if instruction == "ARG":
                name, _, default = argument.strip().partition("=")
                arguments[name] = default
                continue
            for name, default in arguments.items():
                argument = argument.replace(f"${{{name}}}", default)
            steps.append((instruction, argument.strip()))
    return steps


def test_dockerfile_runs_as_a_non_root_user_without_secrets():
    steps = _dockerfile_steps()
    assert steps[0] == ("FROM", "python:3.11-slim")
    users = [argument for instruction, argument in steps if instruction == "USER"]
    assert users and users[-1] not in ("root", "0")
    text = (ROOT / "Dockerfile").read_text()
    assert not re.search(r"(API_KEY|TOKEN)\s*=", text)
    assert "config.yml" not in {argument.split()[0] for instruction, argument in steps if instruction == "COPY"}


def _healthcheck() -> tuple[dict[str, str], list[str]]:
    """The Dockerfile's HEALTHCHECK: its options (`interval`: `30s`, ...) and its command (exec form)."""
    (argument,) = [argument for instruction, argument in _dockerfile_steps() if instruction == "HEALTHCHECK"]
    options, _, command = argument.partition(" CMD ")
    return dict(option.removeprefix("--").split("=", 1) for option in options.split()), json.loads(command)


def _seconds(duration: str) -> int:
    """A Docker duration of minutes and seconds (`1m30s`) in seconds."""
    match = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", duration)
    assert match and duration, f"not a duration: {duration!r}"
    return int(match.group(1) or 0) * 60 + int(match.group(2) or 0)


def test_the_image_and_the_compose_file_check_health_with_the_health_command():
    options, command = _healthcheck()
    (entry_point,) = [
        json.loads(argument) for instruction, argument in _dockerfile_steps() if instruction == "ENTRYPOINT"
    ]
    assert command == [*entry_point, "health"]  # the installed script, with the subcommand it has
    assert f'{entry_point[0]} = "malbeacon_connector.cli:main"' in (ROOT / "pyproject.toml").read_text()
    assert build_parser().parse_args(command[1:]).command == "health"
    assert set(options) == {"interval", "timeout", "start-period", "retries"}
    interval, timeout = _seconds(options["interval"]), _seconds(options["timeout"])
    assert 10 <= interval <= 300 and 1 <= timeout < interval
    assert _seconds(options["start-period"]) >= 30  # registration tries 3 times 5 s apart, then the broker
    assert 2 <= int(options["retries"]) <= 10
    healthcheck = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["connector-malbeacon"][
        "healthcheck"
    ]
    assert healthcheck == {
        "test": ["CMD", *command],
        "interval": options["interval"],
        "timeout": options["timeout"],
        "start_period": options["start-period"],
        "retries": int(options["retries"]),
    }


def test_dockerfile_install_and_entry_point_replayed_in_a_fresh_environment(tmp_path):
    """No Docker engine here: copy what it copies, run its pip steps in a new venv, start its entry point."""
    workdir = tmp_path / "image"
    workdir.mkdir()
    environment = tmp_path / "venv"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    entry_point: list[str] = []
    for instruction, argument in _dockerfile_steps():
        if instruction == "COPY":
            *sources, destination = argument.split()
            for source in sources:
                origin = ROOT / source
                assert origin.exists(), f"the Dockerfile copies {source}, which does not exist"
                target = workdir / destination / source if destination.endswith("/") else workdir / destination
                if origin.is_dir():
                    shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(origin, target)
        elif instruction == "RUN":
            for command in argument.split("&&"):
                words = shlex.split(command)
                if words[0] == "pip":
                    subprocess.run(
                        [str(python), "-m", "pip", "install", "--quiet", *words[2:]],
                        cwd=workdir,
                        check=True,
                        timeout=600,
                    )
                else:
                    assert words[0] == "useradd" and "--system" in words  # system changes are not replayed
        elif instruction == "ENTRYPOINT":
            entry_point = json.loads(argument)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OPENCTI_", "CONNECTOR_", "MALBEACON_", "PYTHON"))
    }
    env["PATH"] = f"{environment / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    started = subprocess.run(entry_point, cwd=workdir, env=env, capture_output=True, text=True, timeout=120)
    assert started.returncode == 2
    assert "OPENCTI_URL (opencti.url): required" in started.stderr
    assert "MALBEACON_API_KEY (malbeacon.api_key): required" in started.stderr
    assert "Traceback" not in started.stderr
    assert shutil.which(entry_point[0], path=str(environment / "bin"))
    _, healthcheck = _healthcheck()  # the HEALTHCHECK's command, installed: not running, then healthy
    health_file = tmp_path / "health.json"
    env["MALBEACON_HEALTH_FILE"] = str(health_file)
    probe = subprocess.run(healthcheck, cwd=workdir, env=env, capture_output=True, text=True, timeout=60)
    assert (probe.returncode, probe.stderr) == (
        1,
        f"unhealthy: the connector is not running (no health file {health_file})\n",
    )
    now = time.time()
    write_record(health_file, HealthRecord(os.getpid(), now, now, "listening", now, 60, now, 120))
    probe = subprocess.run(healthcheck, cwd=workdir, env=env, capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0 and probe.stdout.startswith(f"healthy: pid {os.getpid()} (listening)"), probe.stderr


def test_the_conventional_entry_point_runs_the_connector_and_checks_its_settings(tmp_path):
    """`python src/main.py`, as OpenCTI's connectors are started: the same checks, no traceback."""
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, str(ROOT / "src" / "main.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "CONNECTOR_ID (connector.id): required" in done.stderr and "Traceback" not in done.stderr
