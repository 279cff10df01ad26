"""The end-to-end cases that matter most, on every supported pycti (so every supported platform).

For each version: a virtual environment of its own (kept in `.venv-versions/`, reused next time),
`pip install pycti==<version>` then the package, as an operator does, a check that pip kept that
pycti, and the tests marked `platform_versions`. pip's cache is reused, so only the first run
downloads.

    python tests/pycti_matrix.py [VERSION ...]     # default: every version of VERSIONS
"""

import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENVS = ROOT / ".venv-versions"
# the last patch of each 6.x minor, the first and the newest 7.x
VERSIONS = (
    "6.0.10",
    "6.1.13",
    "6.2.19",
    "6.3.14",
    "6.4.11",
    "6.5.11",
    "6.6.18",
    "6.7.20",
    "6.8.17",
    "6.9.29",
    "7.260224.0",
    "7.261026.0",
)
TEST_TOOLS = ("pytest", "hypothesis", "stix2-validator", "stix2-patterns", "packaging", "cryptography")


def pins(names: tuple[str, ...]) -> list[str]:
    """The pinned versions of some tools, from the requirements files."""
    lines = [
        line for name in ("requirements.txt", "requirements-dev.txt") for line in (ROOT / name).read_text().splitlines()
    ]
    return [line for line in lines if line.split("==")[0].lower() in names]


def run(command: list[str], **options: object) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=ROOT, text=True, capture_output=True, **options)  # type: ignore[call-overload]


def environment(version: str) -> Path:
    """A virtual environment holding that pycti, the package (editable) and the test tools."""
    folder = VENVS / version
    python = folder / "bin" / "python"
    if not python.exists():
        venv.create(folder, with_pip=True)
    for step in (["pycti==" + version], ["-e", str(ROOT)], pins(TEST_TOOLS)):
        done = run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *step], timeout=900)
        if done.returncode != 0:
            raise RuntimeError(f"pip install {' '.join(step)} failed:\n{done.stderr[-2000:]}")
    return python


def check(version: str) -> tuple[bool, str]:
    """(passed, one line) for one version."""
    started = time.monotonic()
    try:
        python = environment(version)
    except RuntimeError as error:
        return False, f"{version}: install failed: {error}"
    kept = run([str(python), "-c", "import pycti; print(pycti.__version__)"], timeout=60).stdout.strip()
    if kept != version:
        return False, f"{version}: pip replaced pycti by {kept!r}"
    tests = run(
        [
            str(python),
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-m",
            "platform_versions",
            "tests/e2e/test_connector.py",
            "tests/e2e/test_health.py",
        ],
        timeout=1200,
    )
    summary = (tests.stdout.strip().splitlines() or tests.stderr.strip().splitlines() or ["no output"])[-1]
    line = f"{version}: {summary} (with install, {time.monotonic() - started:.0f} s)"
    if tests.returncode != 0:
        line += "\n" + (tests.stdout + tests.stderr)[-4000:]
    return tests.returncode == 0, line


def main(versions: list[str]) -> int:
    results = []
    for version in versions or VERSIONS:
        passed, line = check(version)
        print(line, flush=True)
        results.append(passed)
    print(f"pycti versions: {sum(results)} of {len(results)} passed", flush=True)
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
