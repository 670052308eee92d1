"""Under CI (``CI=true``) a skipped test fails the run, and oracles are imported plainly.

The hook lives in ``tests/conftest.py``; these tests run a small suite that skips in each way
pytest allows (``pytest.skip``, ``skipif``, module-level ``importorskip``) with that conftest, in a
real pytest subprocess, once as CI and once not.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

SKIPPING = {
    "test_skips.py": (
        "import pytest\n"
        "def test_runs():\n    assert True\n"
        "def test_skips_inside():\n    pytest.skip('no widget here')\n"
        "@pytest.mark.skipif(True, reason='no gadget here')\n"
        "def test_skipif():\n    pass\n"
    ),
    "test_missing_oracle.py": "import pytest\npytest.importorskip('a_package_that_is_not_installed_anywhere')\ndef test_x():\n    pass\n",
}


def _run_suite(tmp_path: Path, *, ci: str | None, files: tuple[str, ...] = tuple(SKIPPING)) -> subprocess.CompletedProcess[str]:
    shutil.copyfile(HERE / "conftest.py", tmp_path / "conftest.py")
    for name in files:
        (tmp_path / name).write_text(SKIPPING[name])
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA", str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def _counts(output: str) -> dict[str, int]:
    summary = output.strip().splitlines()[-1]
    return {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|skipped|errors?)", summary)}


def test_under_ci_every_kind_of_skip_fails_the_run(tmp_path):
    done = _run_suite(tmp_path, ci="true", files=("test_skips.py",))
    assert done.returncode == 1, done.stdout
    # pytest.skip fails as a test; skipif, decided at set-up, as an error of the set-up.
    assert _counts(done.stdout) == {"passed": 1, "failed": 1, "error": 1}, done.stdout
    assert re.search(r"FAILED test_skips.py::test_skips_inside - skipped under CI: .*no widget here", done.stdout), done.stdout
    assert re.search(r"ERROR test_skips.py::test_skipif - skipped under CI: .*no gadget here", done.stdout), done.stdout


def test_under_ci_a_module_skipped_at_import_fails_the_run(tmp_path):
    done = _run_suite(tmp_path, ci="true", files=("test_missing_oracle.py",))
    assert done.returncode != 0, done.stdout  # a collection error: pytest stops with exit code 2
    assert _counts(done.stdout) == {"error": 1}, done.stdout
    assert "skipped under CI" in done.stdout and "a_package_that_is_not_installed_anywhere" in done.stdout


def test_outside_ci_a_skip_stays_a_skip(tmp_path):
    done = _run_suite(tmp_path, ci=None)
    assert done.returncode == 0, done.stdout
    assert _counts(done.stdout) == {"passed": 1, "skipped": 3}, done.stdout


def test_no_test_imports_an_oracle_through_importorskip():
    """A missing oracle (jenkspy, rasterstats, exactextract, ...) must fail its tests, not skip them."""
    offenders = [path.name for path in HERE.glob("test_*.py") if path.name != Path(__file__).name and "importorskip(" in path.read_text(encoding="utf-8")]
    assert offenders == []
