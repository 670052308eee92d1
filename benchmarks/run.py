"""carbonscape's benchmark suite, as recorded in ``benchmarks/README.md``: ``carbonscape bench``
(:mod:`carbonscape.bench`) with the figures kept in ``benchmarks/results/<size>.json``.

Usage (from the repository root, with the project installed as ``pip install -e .[bench]``)::

    python benchmarks/run.py --size 10000                        # 10^8 pixels: stages, peers, graphs
    python benchmarks/run.py --size 10000 --project 1e11         # + graph-only projection of 10^11 pixels

Everything after the script name is passed to ``carbonscape bench`` (see ``carbonscape bench
--help``); generated regions are kept in ``benchmarks/data/`` and the JSON is written to
``benchmarks/results/<largest size>.json`` unless ``--json`` is given.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> None:
    from carbonscape.cli.main import cli

    args = list(argv)
    sizes = [int(args[i + 1]) for i, a in enumerate(args[:-1]) if a == "--size"] or [10_000]
    if "--data" not in args:
        args += ["--data", str(HERE / "data")]
    if "--json" not in args:
        (HERE / "results").mkdir(exist_ok=True)
        args += ["--json", str(HERE / "results" / f"{max(sizes)}.json")]
    cli(["bench", *args], prog_name="carbonscape")


if __name__ == "__main__":
    main(sys.argv[1:])
