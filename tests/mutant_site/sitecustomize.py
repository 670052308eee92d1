"""Applies the deliberate fault named by CARBONSCAPE_MUTANT at the start of every Python process
(pytest and the `carbonscape` processes its tests start); see tests/mutants.py. Only on PYTHONPATH
while tests/test_mutations.py runs a mutant."""

import os
import sys

if os.environ.get("CARBONSCAPE_MUTANT"):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import mutants

    mutants.apply_from_environment()
