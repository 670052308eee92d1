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


def demand_zoning(per_capita_t: float = 4.0) -> str:
    """The [demand] and [zoning] of a generated study: small_study's population.csv at
    ``per_capita_t`` t per person, Jenks natural breaks into 3 classes."""
    return f"""
[demand]
table = "population.csv"
key = "county"
per_capita_t = {per_capita_t}

[zoning]
method = "jenks"
k = 3
scheme = "classes"
"""


# The demand and zoning of most generated studies (4 t per person).
DEMAND_ZONING = demand_zoning()

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


# Real land cover under real county polygons, with exactextract × true cell areas as the oracle of
# fraction mode: tests/test_coverage_real.py (counties from a stored county store) and
# tests/test_fused_exactextract.py (`run`'s fused path: counties clipped and counted per chunk).

# MODIS MCD12C1 2019 (IGBP classes, 0.05°, its own GEOGCS on Clarke 1866) over Central Yunnan:
# tests/data/modis/README.md.
MODIS = Path(__file__).parent / "data" / "modis" / "mcd12c1_2019_central_yunnan.tif"
# Total carbon density per IGBP class (t/ha), round figures of the right order; the tests are of the
# areas, not of these.
IGBP_DENSITY = {0: 0.0, 1: 180.0, 2: 220.0, 3: 160.0, 4: 170.0, 5: 190.0, 6: 60.0, 7: 40.0, 8: 120.0, 9: 80.0, 10: 50.0,
                11: 90.0, 12: 70.0, 13: 20.0, 14: 75.0, 15: 0.0, 16: 5.0}


def clc_path() -> Path:
    """CORINE Land Cover excerpt (25 m, EPSG:3035) of the ``landschaft`` package (the ``test``
    extra), found without importing it (9 s of imports)."""
    import importlib.metadata

    return Path(importlib.metadata.distribution("landschaft").locate_file("landschaft/data/clc.tif"))


@pytest.fixture(scope="session")
def demo_counties() -> gpd.GeoDataFrame:
    """The demo's 49 real Central Yunnan county polygons (Albers equal-area)."""
    from carbonscape.demo import demo_paths

    return gpd.read_file(demo_paths()["counties"])


def density_pools(path: Path, density: dict[int, float]) -> Path:
    """A pools table giving each class its whole density as above-ground carbon."""
    return write_pools(path, [(code, d, 0.0, 0.0, 0.0) for code, d in density.items()])


def clc_counties(counties: gpd.GeoDataFrame, bounds: tuple[float, float, float, float], crs) -> gpd.GeoDataFrame:
    """The demo's county shapes carried by one similarity transform into ``bounds`` (a margin of
    2 % inside), in ``crs``: the real boundaries' shapes, shared edges and all, at 1:40 or so."""
    import shapely

    left, bottom, right, top = bounds
    x0, y0, x1, y1 = counties.total_bounds
    scale = 0.96 * min((right - left) / (x1 - x0), (top - bottom) / (y1 - y0))
    cx, cy = (left + right) / 2 - scale * (x0 + x1) / 2, (bottom + top) / 2 - scale * (y0 + y1) / 2
    moved = shapely.transform(counties.geometry.to_numpy(), lambda xy: xy * scale + np.array([cx, cy]))
    return gpd.GeoDataFrame({"county": counties["county"].to_numpy()}, geometry=moved, crs=crs)


def geodesic_row_areas_m2(tif: Path) -> np.ndarray:
    """True area (m²) of one cell of each row of a lon/lat raster: the cell as a geodesic polygon
    (parallels densified) on the raster's own ellipsoid (pyproj)."""
    from pyproj import CRS, Geod

    with rasterio.open(tif) as src:
        ellipsoid, transform, height = CRS.from_user_input(src.crs).ellipsoid, src.transform, src.height
    geod = Geod(a=ellipsoid.semi_major_metre, rf=ellipsoid.inverse_flattening)
    along = np.linspace(0.0, transform.a, 200)
    return np.array([
        abs(geod.polygon_area_perimeter(np.concatenate([along, along[::-1]]),
                                        np.concatenate([np.full(200, transform.f + transform.e * (r + 1)), np.full(200, transform.f + transform.e * r)]))[0])
        for r in range(height)
    ])


def exactextract_oracle(tif: Path, gdf: gpd.GeoDataFrame, cell_m2, density: dict[int, float]) -> tuple[pd.Series, pd.Series]:
    """Per county Σ coverage × cell area × density (t), per (county, class) Σ coverage × cell area
    (km²): exactextract's covered fraction of every cell, ``cell_m2(cell ids)`` its true area."""
    from exactextract import exact_extract

    frame = exact_extract(str(tif), gdf, ["cell_id", "coverage", "values"], include_cols=["county"], output="pandas")
    supply_t, area = {}, {}
    for row in frame.itertuples():
        cells, cover, values = np.asarray(row.cell_id), np.asarray(row.coverage), np.asarray(row.values)
        keep = np.isin(values, list(density))
        m2 = cover[keep] * cell_m2(cells[keep])
        supply_t[row.county] = float((m2 / 1e4 * np.array([density[v] for v in values[keep]])).sum())
        for code in np.unique(values[keep]):
            total = float(m2[values[keep] == code].sum())
            if total > 0:
                area[(row.county, int(code))] = total / 1e6
    return pd.Series(supply_t), pd.Series(area)


def assert_equals_exactextract(result, want_supply: pd.Series, want_area: pd.Series) -> None:
    """``result`` (a SupplyResult) against :func:`exactextract_oracle` within 1e-6: supply and
    area per county, area per (county, class)."""
    by_county = result.by_county.set_index("county")
    assert set(by_county.index) == set(want_supply.index)
    np.testing.assert_allclose(by_county["supply_t"].reindex(want_supply.index), want_supply, rtol=1e-6)
    county_km2 = want_area.groupby(level=0).sum()
    np.testing.assert_allclose(by_county["area_km2"].reindex(county_km2.index), county_km2, rtol=1e-6)
    pairs = result.by_county_class.set_index(["county", "lucode"])["area_km2"]
    pairs = pairs[pairs > 0]
    assert set(pairs.index) >= set(want_area.index)
    np.testing.assert_allclose(pairs.reindex(want_area.index), want_area, rtol=1e-6)
    extra = pairs.drop(index=want_area.index)  # pairs exactextract has not: nothing but rounding
    assert extra.sum() < 1e-9 * pairs.sum()
