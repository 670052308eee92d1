"""Shared helpers: real GeoTIFFs and GeoPackages on disk, built from tiny arrays."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from rasterio.transform import from_origin

# Keep numba's cache and dask's spill files inside the test session's temp dirs.
os.environ.setdefault("DASK_DISTRIBUTED__WORKER__DAEMON", "False")


def under_ci() -> bool:
    """True when the suite runs as CI (``CI=true``, as `.ci/run` and most CI services set it)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


_SKIP_IS_A_FAILURE = (
    "skipped under CI: {reason}\n"
    "Under CI (CI=true) a skipped test is a failure: a test that does not run guards nothing. Install what it "
    "needs (.ci/run installs every system and Python package the suite uses) or fix the test."
)


def pytest_terminal_summary(terminalreporter):
    """Says so when a deliberate fault was switched on (tests/test_mutations.py), even with -q."""
    if os.environ.get("CARBONSCAPE_MUTANT"):
        import mutants

        terminalreporter.write_line(mutants.STATUS or f"carbonscape mutant {os.environ['CARBONSCAPE_MUTANT']!r} NOT applied")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI a skip (``pytest.skip``, ``skipif``, ``importorskip``) fails the run instead."""
    outcome = yield
    report = outcome.get_result()
    if under_ci() and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = _SKIP_IS_A_FAILURE.format(reason=reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """Under CI a module skipped at collection (``importorskip`` at module level) fails too."""
    outcome = yield
    report = outcome.get_result()
    if under_ci() and report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = _SKIP_IS_A_FAILURE.format(reason=reason)

UTM = "EPSG:32648"


def write_tif(path: Path, array: np.ndarray, *, transform=None, crs: str = UTM, nodata=None, tiled: bool = False) -> Path:
    """Write ``array`` as a one-band GeoTIFF (100 m pixels at a UTM origin unless told)."""
    transform = transform or from_origin(500_000, 2_800_000, 100, 100)
    profile = dict(driver="GTiff", width=array.shape[1], height=array.shape[0], count=1, dtype=array.dtype.name, crs=crs, transform=transform, nodata=nodata)
    if tiled:
        profile.update(tiled=True, blockxsize=16, blockysize=16)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array, 1)
    return path


def write_vector(path: Path, geometries, values, *, field: str = "county", crs: str = UTM) -> Path:
    gdf = gpd.GeoDataFrame({field: values}, geometry=list(geometries), crs=crs)
    gdf.to_file(path, engine="pyogrio")
    return path


def write_pools(path: Path, rows: list[tuple[int, float, float, float, float]], names: list[str] | None = None) -> Path:
    df = pd.DataFrame(rows, columns=["lucode", "c_above", "c_below", "c_soil", "c_dead"])
    if names is not None:
        df.insert(1, "LULC_name", names)
    df.to_csv(path, index=False)
    return path


def pixel_box(col0: float, row0: float, col1: float, row1: float, *, transform=None):
    """A rectangle given in pixel coordinates (column, row) of the default grid."""
    import shapely

    transform = transform or from_origin(500_000, 2_800_000, 100, 100)
    x0, y0 = transform @ (col0, row0)
    x1, y1 = transform @ (col1, row1)
    return shapely.box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path


CARBONSCAPE = Path(sys.executable).with_name("carbonscape")


@dataclass(frozen=True)
class DemoRun:
    out: Path
    stdout: str
    stderr: str


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> DemoRun:
    """README's first command, as a user runs it: `carbonscape demo --out demo-out` (100 m, the
    default LocalCluster, maps and report), once per session for every test that needs it."""
    out = tmp_path_factory.mktemp("readme") / "demo-out"
    done = subprocess.run([str(CARBONSCAPE), "demo", "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return DemoRun(out=out, stdout=done.stdout, stderr=done.stderr)


# The inputs of a generated region (make_region) as a study file gives them: land use, counties, pools.
REGION_INPUTS = """
[landuse]
rasters = ["region/landuse.tif"]
chunk = 256

[counties]
path = "region/counties.gpkg"
id_field = "county"

[pools]
path = "region/pools.csv"
"""


# The demand and zoning of most generated studies: small_study's population.csv at 4 t per person,
# Jenks natural breaks into 3 classes.
DEMAND_ZONING = """
[demand]
table = "population.csv"
key = "county"
per_capita_t = 4.0

[zoning]
method = "jenks"
k = 3
scheme = "classes"
"""

@dataclass(frozen=True)
class SmallStudy:
    """A generated study folder: ``region/`` (make_region's land use, counties and pools),
    ``population.csv`` and, when given, ``study.toml``."""

    base: Path
    region: object  # carbonscape.synthetic.Region

    @property
    def study(self) -> Path:
        return self.base / "study.toml"


@pytest.fixture(scope="session")
def small_study(tmp_path_factory):
    """Makes small generated studies: ``small_study(name, toml, shape=..., n_counties=..., seed=...,
    population=...)`` → :class:`SmallStudy`, in a new folder named after ``name``. ``population(n)``
    gives the ``population`` column of the n counties (an array) or several columns (a dict); by
    default 10,000 × (1, 2, ..., n) people."""
    from carbonscape.synthetic import make_region

    def make(name: str, toml: str | None = None, *, shape: tuple[int, int], n_counties: int, seed: int,
             population=lambda n: np.arange(1, n + 1) * 10_000) -> SmallStudy:
        base = tmp_path_factory.mktemp(name)
        region = make_region(base / "region", shape=shape, n_counties=n_counties, seed=seed)
        names = gpd.read_file(region.counties)["county"]
        people = population(len(names))
        columns = people if isinstance(people, dict) else {"population": people}
        pd.DataFrame({"county": names, **columns}).to_csv(base / "population.csv", index=False)
        if toml is not None:
            (base / "study.toml").write_text(toml, encoding="utf-8")
        return SmallStudy(base=base, region=region)

    return make
