"""The drawing half of a study: its statistics, maps and report, redrawn from a results folder.

Usage::

    python benchmarks/maps_draw.py RESULTS [--scratch DIR]

``RESULTS`` is a folder `carbonscape run` wrote (the nation benchmark's, for example). Its tables
are copied into a scratch folder (the land-use stores are linked, not copied; nothing is written
into ``RESULTS``), then, each in a fresh process as a run meets them (numba's and matplotlib's
caches on disk as a second run finds them, nothing in memory):

- ``statistics``: :func:`carbonscape.spatial.spatial_statistics` of the counties (weights, Moran,
  LISA, Gi*, as the statistics stage);
- ``maps`` and ``report``: :func:`carbonscape.study.outputs.draw_outputs`, the times it records
  in ``run.json`` (Figs. 1–5, the statistics maps, report.html).

Each line gives the stage's seconds, the process's CPU seconds in them (``cpu_s``: steadier than wall
time on a shared machine) and the process's peak RSS (MiB). The issue's target, at the
2,900-county nation: statistics + maps + report ≤ ~12 s on a quiet 2-core machine, peak ≤ 1 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

STATISTICS = """
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
from carbonscape.study.read import read_outputs
from carbonscape import spatial
result = read_outputs(sys.argv[1])
units = result.polygons.set_index(result.polygons["county"].astype(str))
clock, cpu = time.perf_counter(), time.process_time()
spatial.spatial_statistics(units, result.ratio_zones)
print(json.dumps({"statistics": time.perf_counter() - clock, "cpu_s": time.process_time() - cpu,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

DRAWING = """
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
from carbonscape.study.read import read_outputs
from carbonscape.study.outputs import draw_outputs
result = read_outputs(sys.argv[1])
cpu = time.process_time()
draw_outputs(result)
timings = result.run_info["timings_s"]
print(json.dumps({"maps": timings["maps"], "report": timings["report"], "cpu_s": time.process_time() - cpu,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def scratch_copy(results: Path, scratch: Path) -> Path:
    """``results``' tables and maps copied into ``scratch``, its stores linked."""
    folder = scratch / results.name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for entry in results.iterdir():
        if entry.name == "stores":
            (folder / "stores").symlink_to(entry.resolve())
        elif entry.is_dir():
            shutil.copytree(entry, folder / entry.name)
        else:
            shutil.copy2(entry, folder / entry.name)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path)
    parser.add_argument("--scratch", type=Path, default=None)
    args = parser.parse_args()
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="carbonscape-maps-"))
    folder = scratch_copy(args.results, scratch)
    load = os.getloadavg()[0]
    for name, code in (("statistics", STATISTICS), ("drawing", DRAWING)):
        out = subprocess.run([sys.executable, "-c", code, str(folder)], check=True, capture_output=True, text=True)
        figures = json.loads(out.stdout.strip().splitlines()[-1])
        print(name, {k: round(v, 2) for k, v in figures.items()}, f"(load average {load:.1f} at the start)")


if __name__ == "__main__":
    main()
