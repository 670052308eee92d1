"""Mutation smoke test: each deliberate fault of tests/mutants.py, applied in a fresh pytest
process (and in every `carbonscape` process its tests start), must make at least one of the tests
named for it fail. A fault no test catches means the suite would let that bug through.

Which test catches which fault is printed (pytest -s) and listed in tests/mutants.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import mutants
import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = Path(__file__).resolve().parent / "mutant_site"


def run_with_mutant(name: str, tests: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    env[mutants.ENV] = name
    env["PYTHONPATH"] = os.pathsep.join([str(SITE), *filter(None, [os.environ.get("PYTHONPATH")])])
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE", "--tb=line", *tests],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.parametrize("name", sorted(mutants.MUTANTS))
def test_mutant_is_caught(name):
    mutant = mutants.MUTANTS[name]
    done = run_with_mutant(name, mutant.tests)
    assert f"carbonscape mutant: {name} (" in done.stdout, f"the mutant was not applied:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    caught = sorted(set(re.findall(r"^(?:FAILED|ERROR) (\S+?)(?: - .*)?$", done.stdout, re.M)))
    assert done.returncode == 1 and caught, f"mutant {name!r} ({mutant.fault}) was NOT caught by {mutant.tests}:\n{done.stdout[-3000:]}"
    named = [t for t in caught if any(t.startswith(listed) for listed in mutant.tests)]
    assert named == caught, f"failures outside the tests named for {name}: {caught}"
    print(f"\n{name}: {mutant.fault}\n  caught by {', '.join(caught)}")
