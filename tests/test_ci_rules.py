"""CI's rules for the suite itself: under CI=true nothing may be skipped, and CI installs
what the tests need or fails.

The conftest's hook is checked on a small suite of its own, run in a child pytest
with and without CI=true.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

SUITE = {
    "test_inner.py": """
        import pytest

        def test_runs():
            pass

        def test_skips_itself():
            pytest.skip("no widget on this machine")

        @pytest.mark.skipif(True, reason="the gadget is missing")
        def test_skipped_by_mark():
            pass

        @pytest.mark.xfail(reason="a known bug", strict=True)
        def test_expected_to_fail():
            assert False

        @pytest.mark.parametrize("x", [])
        def test_with_no_cases(x):
            pass
    """,
    "test_module_skip.py": """
        import pytest

        pytest.skip("this module needs a frobnicator", allow_module_level=True)

        def test_never_collected():
            pass
    """,
}


def run_inner(tmp_path: Path, ci: str | None, *files: str) -> tuple[int, str]:
    (tmp_path / "conftest.py").write_text((HERE / "conftest.py").read_text(encoding="utf-8"),
                                          encoding="utf-8")
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")  # not the project's settings
    for name in files:
        source = "\n".join(line.removeprefix(" " * 8) for line in SUITE[name].splitlines())
        (tmp_path / name).write_text(source, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider",
                           *files], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout + done.stderr


def counts(output: str) -> dict[str, int]:
    """pytest's closing line as {"passed": 1, "failed": 2, ...}."""
    last = output.strip().splitlines()[-1]
    return {word: int(n) for n, word in re.findall(r"(\d+) (\w+)", last)}


def test_outside_ci_a_skip_stays_a_skip(tmp_path):
    code, out = run_inner(tmp_path, None, "test_inner.py")
    assert code == 0, out
    assert counts(out) == {"passed": 1, "skipped": 3, "xfailed": 1}, out
    code, out = run_inner(tmp_path, "false", "test_inner.py", "test_module_skip.py")
    assert code == 0, out
    assert counts(out) == {"passed": 1, "skipped": 4, "xfailed": 1}, out


@pytest.mark.parametrize("ci", ["true", "1", "TRUE"])
def test_under_ci_every_skip_fails_with_its_reason(tmp_path, ci):
    code, out = run_inner(tmp_path, ci, "test_inner.py")
    assert code == 1, out
    result = counts(out)
    assert result.get("passed") == 1 and result.get("xfailed") == 1, out  # an xfail is not a skip
    assert result.get("failed", 0) + result.get("error", result.get("errors", 0)) == 3, out
    assert "skipped" not in result, out
    for reason in ("no widget on this machine", "the gadget is missing", "got empty parameter set"):
        assert re.search(r"test_inner.py::\w+.* - skipped, but under CI \(CI=true\) every test must run: "
                         + reason, out), (reason, out)


def test_under_ci_a_module_that_skips_itself_fails_the_run(tmp_path):
    code, out = run_inner(tmp_path, "true", "test_inner.py", "test_module_skip.py")
    assert code != 0, out
    assert "skipped" not in counts(out), out
    assert re.search(r"ERROR test_module_skip.py - skipped, but under CI \(CI=true\) every test must run: "
                     r"this module needs a frobnicator", out), out


# --- .ci/run ----------------------------------------------------------------------------------
def run_ci_script(where: Path, apt_get_fails_on: str | None, has_apt_get: bool = True,
                  **env_extra: str) -> tuple[int, str, str]:
    """.ci/run with stand-ins for apt-get (failing with 100 on the subcommand
    ``apt_get_fails_on``, else succeeding without installing anything; left out when
    not ``has_apt_get``) and for python (which only records that it was called).
    Returns the exit code, the output and the calls made."""
    bin_dir = where / "bin"
    bin_dir.mkdir(parents=True)
    log = where / "calls.log"
    stand_ins = {"python": 'exit 0'}
    if has_apt_get:
        stand_ins["apt-get"] = f'case " $* " in *" {apt_get_fails_on} "*) exit 100;; esac'
    for name, body in stand_ins.items():
        tool = bin_dir / name
        tool.write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\n{body}\n', encoding="utf-8")
        tool.chmod(0o755)
    (bin_dir / "dirname").symlink_to(shutil.which("dirname"))  # the script's one other program
    env = {"PATH": str(bin_dir), "HOME": str(where), "CI": "true", **env_extra}
    done = subprocess.run([shutil.which("bash"), str(ROOT / ".ci" / "run")], env=env,
                          capture_output=True, text=True, timeout=60)
    calls = log.read_text(encoding="utf-8") if log.exists() else ""
    return done.returncode, done.stdout + done.stderr, calls


needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


@needs_bash
@pytest.mark.parametrize("step", ["update", "install"])
def test_ci_run_stops_when_apt_get_fails(tmp_path, step):
    """A failing apt-get ends .ci/run before pip and pytest (no `|| echo warning`)."""
    code, out, calls = run_ci_script(tmp_path, step)
    assert code == 100, out
    assert f"apt-get {step}" in calls, calls
    assert "pip" not in calls and "pytest" not in calls, calls


@needs_bash
@pytest.mark.parametrize("has_apt_get", [True, False], ids=["apt-get installs nothing", "no apt-get"])
def test_ci_run_stops_when_chromium_is_not_there(tmp_path, has_apt_get):
    """Without the two programs the browser test could only skip: .ci/run fails before
    the tests instead."""
    programs = ("NUMPYNN_CHROMIUM", "NUMPYNN_CHROMEDRIVER")
    for missing in programs:
        where = tmp_path / missing
        present = {name: sys.executable for name in programs if name != missing}
        code, out, calls = run_ci_script(where, None, has_apt_get, **present,
                                         **{missing: str(where / "absent")})
        assert code == 1, out
        assert f"{where / 'absent'} is missing" in out, out
        assert "pip" not in calls and "pytest" not in calls, calls
