"""``tests/_system.py``: a missing system package skips, or fails when required; CI installs each.

The plugin is run for real: pytest in a child process, on a test file that
declares one package no machine has and one every machine has.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests._system import PACKAGES, REQUIRE_VARIABLE

ROOT = Path(__file__).resolve().parents[1]

#: Each test leaves a file behind when its body (or its fixture) runs.
TESTS = """
from pathlib import Path

import pytest

from tests._system import SystemPackage, needs

ABSENT = SystemPackage("libnowhere", "libnowhere0", lambda: False)
PRESENT = SystemPackage("libeverywhere", "libeverywhere1", lambda: True)


@pytest.fixture
def fixture_ran() -> None:
    Path("fixture-ran").touch()


@needs(ABSENT, PRESENT)
def test_absent(fixture_ran: None) -> None:
    Path("absent-ran").touch()


@needs(PRESENT)
def test_present() -> None:
    Path("present-ran").touch()
"""


def run_pytest(directory: Path, required: str | None) -> subprocess.CompletedProcess[str]:
    """pytest with this plugin on ``TESTS`` in ``directory``; ``required``: the variable."""
    (directory / "test_needs.py").write_text(TESTS)
    env = {key: value for key, value in os.environ.items() if key != REQUIRE_VARIABLE}
    env["PYTHONPATH"] = str(ROOT)
    if required is not None:
        env[REQUIRE_VARIABLE] = required
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests._system", "-p", "no:cacheprovider", "-ra"],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("required", [None, "0"])
def test_a_missing_package_skips_the_test_and_says_what_to_install(
    tmp_path: Path, required: str | None
) -> None:
    done = run_pytest(tmp_path, required)

    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(
        r"^SKIPPED \[1\] test_needs.py:\d+: needs libnowhere: apt-get install libnowhere0$",
        done.stdout,
        re.MULTILINE,
    )
    assert "1 passed, 1 skipped" in done.stdout
    assert sorted(path.name for path in tmp_path.glob("*-ran")) == ["present-ran"]
    summary = done.stdout.split("1 test skipped: system packages missing ", 1)[1]
    assert summary.splitlines()[1:5] == [
        "libnowhere0 (libnowhere): 1 test",
        "    test_needs.py: 1 test",
        "install them: apt-get install libnowhere0",
        f"with {REQUIRE_VARIABLE}=1 (as .ci/run sets it) they fail instead",
    ]


def test_when_required_a_missing_package_fails_the_test_before_its_fixtures(
    tmp_path: Path,
) -> None:
    done = run_pytest(tmp_path, "1")

    assert done.returncode == 1, done.stdout + done.stderr
    assert (
        f"needs libnowhere: apt-get install libnowhere0 ({REQUIRE_VARIABLE}=1: "
        "a failure, not a skip)\n" in done.stdout
    )
    assert "1 passed, 1 error" in done.stdout
    assert sorted(path.name for path in tmp_path.glob("*-ran")) == ["present-ran"]
    assert "1 test failed: system packages missing" in done.stdout


def test_any_other_value_of_the_variable_is_a_usage_error(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, "yes")

    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout + done.stderr
    assert f"{REQUIRE_VARIABLE}='yes': set it to 1" in done.stderr
    assert list(tmp_path.glob("*-ran")) == []


def test_ci_installs_and_the_pages_name_every_package_a_test_needs() -> None:
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    (install,) = re.findall(r"apt-get install -y[^\n]*\\\n([^\n]*)", script)
    assert f"export {REQUIRE_VARIABLE}=1\n" in script
    assert script.rstrip().endswith("python3 -m pip install uv nox && nox")
    pages = {
        name: (ROOT / name).read_text(encoding="utf-8")
        for name in ("README.md", "docs/contributing.md")
    }
    for package in PACKAGES:
        assert package.debian in install.split(), f".ci/run does not install {package.debian}"
        for name, text in pages.items():
            assert f"`{package.debian}`" in text, f"{name} does not name {package.debian}"
    for text in pages.values():
        assert REQUIRE_VARIABLE in text
