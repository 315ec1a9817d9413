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
    # a plain child run: not CI's unless asked, and not a pytest-xdist worker's even when this is one
    env = {k: v for k, v in os.environ.items() if k != "CI" and not k.startswith("PYTEST_")}
    if ci is not None:
        env["CI"] = ci
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider",
                           *files], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout + done.stderr


SUMMARY = re.compile(r"^=*\s*((?:\d+ \w+, )*\d+ \w+) in \d+(?:\.\d+)?s\b")


def counts(output: str) -> dict[str, int]:
    """pytest's summary line as {"passed": 1, "failed": 2, ...}: the last line that reads
    like one, wherever it is (a plugin may print warnings after it)."""
    for line in reversed(output.strip().splitlines()):
        found = SUMMARY.match(line.strip())
        if found:
            return {word: int(n) for n, word in re.findall(r"(\d+) (\w+)", found.group(1))}
    raise AssertionError(f"no pytest summary line in the output:\n{output}")


def test_counts_finds_the_summary_before_a_plugins_warnings():
    """Under pytest-xdist, pytest-benchmark warns after the child's summary line."""
    output = ("1 failed, 1 passed, 1 xfailed, 2 errors in 0.45s\n"
              ".../pytest_benchmark/logger.py:44: PytestBenchmarkWarning: Benchmarks are automatically "
              "disabled because xdist plugin is active.Benchmarks cannot be performed reliably in a "
              "parallelized environment.\n  warner(PytestBenchmarkWarning(text))\n")
    assert counts(output) == {"failed": 1, "passed": 1, "xfailed": 1, "errors": 2}
    assert counts("======= 3 passed, 1 skipped in 12.03s (0:00:12) =======") == {"passed": 3, "skipped": 1}
    with pytest.raises(AssertionError, match="no pytest summary"):
        counts("3 tests collected\nsomething else")


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
    not ``has_apt_get``) and for python (which only records that it was called, with the
    CI it saw, and makes a virtual environment whose python is this stand-in). CI is not
    set unless ``env_extra`` sets it. Returns the exit code, the output and the calls made."""
    bin_dir = where / "bin"
    bin_dir.mkdir(parents=True)
    log = where / "calls.log"
    mkdir, cp = shutil.which("mkdir"), shutil.which("cp")
    stand_ins = {"python": ('if [ "$1 $2" = "-m venv" ]; then eval "venv=\\${$#}"; '
                            f'"{mkdir}" -p "$venv/bin" && "{cp}" "$0" "$venv/bin/python"; fi\nexit 0')}
    if has_apt_get:
        stand_ins["apt-get"] = f'case " $* " in *" {apt_get_fails_on} "*) exit 100;; esac'
    for name, body in stand_ins.items():
        tool = bin_dir / name
        tool.write_text(f'#!/bin/sh\necho "{name} $* [CI=${{CI:-}}]" >> "{log}"\n{body}\n', encoding="utf-8")
        tool.chmod(0o755)
    (bin_dir / "dirname").symlink_to(shutil.which("dirname"))  # the script's one other program
    env = {"PATH": str(bin_dir), "HOME": str(where), **env_extra}
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


@needs_bash
def test_ci_run_sets_ci_itself_and_runs_the_core_tests_on_the_oldest_and_newest_numpy(tmp_path):
    """Run by hand without CI in the environment, .ci/run still runs every test under CI=true
    (a skip fails); it runs the core tests in their own environments against the oldest NumPy
    pyproject.toml allows and the newest, then the README's test command."""
    programs = {name: sys.executable for name in ("NUMPYNN_CHROMIUM", "NUMPYNN_CHROMEDRIVER")}
    venvs = tmp_path / "venvs"
    code, out, calls = run_ci_script(tmp_path, None, NUMPYNN_CI_VENVS=str(venvs), **programs)
    assert code == 0, out
    assert sorted(p.name for p in venvs.iterdir()) == ["ci-numpy", f"ci-numpy-{oldest_numpy_claimed()}"]
    python_calls = [line for line in calls.splitlines() if line.startswith("python")]
    assert python_calls and all(line.endswith("[CI=true]") for line in python_calls), calls
    tests = [line for line in python_calls if " -m pytest " in line]
    assert len(tests) == 3, calls
    installs = [line for line in python_calls if " -m pip install " in line]
    assert f'numpy=={oldest_numpy_claimed()} ' in installs[0] and " numpy " in installs[1], installs
    assert tests[-1].startswith("python -m pytest -q [CI=true]"), tests  # the README's, last


def oldest_numpy_claimed() -> str:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    [numpy] = [d for d in project["dependencies"] if re.match(r"numpy\b", d)]
    return re.fullmatch(r"numpy>=([\d.]+)", numpy).group(1)


def test_ci_tests_the_oldest_numpy_that_pyproject_allows():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^NUMPY_OLDEST=([\d.]+)", ci, flags=re.M).group(1) == oldest_numpy_claimed()


# --- a module that needs torch for some tests only ---------------------------------------------
def test_without_torch_only_the_tests_that_need_it_skip(tmp_path):
    """Where PyTorch is missing (outside CI), test_torch_equivalence.py's tests that compare
    with PyTorch skip, each with its reason, and the others still run."""
    (tmp_path / "no_torch.py").write_text('import sys\nsys.modules["torch"] = None  # not installed\n',
                                          encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "CI" and not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no_torch", "-p", "no:cacheprovider",
                           "-p", "no:xdist", "tests/test_torch_equivalence.py",
                           "-k", "identical_gradients or largest_gradient_error"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert {k: v for k, v in counts(out).items() if k != "deselected"} == {"passed": 1, "skipped": 1}, out
    assert "needs PyTorch" in out, out
