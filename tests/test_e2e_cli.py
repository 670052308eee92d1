"""The command line end to end, run as a user runs it (real `carbonscape` processes), on the
hand-built study of ``handbuilt.py``, with every number compared with the answer computed in the
test from the input files by numpy/pandas, pyproj's geodesic areas and jenkspy.

Exactness: pixel membership is exact (county edges on pixel edges) and every pixel is 1 ha, so
supply is a sum of t/ha values and must agree to float rounding (rtol 1e-12); areas, demand and
ratios go through a geodesic area and agree to 1e-9; classes and zones must be equal.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import handbuilt
import numpy as np
import pandas as pd
import pytest
import rasterio
import zarr

CARBONSCAPE = Path(sys.executable).with_name("carbonscape")


def carbonscape(*args: str, cwd: Path | None = None, ok: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the installed console script as a user would; stdout and stderr are captured."""
    done = subprocess.run([str(CARBONSCAPE), *args], capture_output=True, text=True, timeout=timeout, cwd=cwd)
    if ok:
        assert done.returncode == 0, f"carbonscape {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> handbuilt.HandBuilt:
    return handbuilt.write_handbuilt(tmp_path_factory.mktemp("handbuilt"), maps=True)


@pytest.fixture(scope="module")
def checked(study):
    """`carbonscape check` on the study before anything ran: its success path."""
    return carbonscape("check", str(study.study))


@pytest.fixture(scope="module")
def run(study, checked):
    """`carbonscape run study.toml --out results`, with the default scheduler (a LocalCluster)."""
    out = study.folder / "results"
    done = carbonscape("run", str(study.study), "--out", str(out), "--no-progress")
    return out, done


def test_check_passes_a_good_study_with_exit_0(checked, study):
    first, *checked_lines = checked.stdout.strip().splitlines()
    assert first == f"{study.study}: all inputs look right"
    # ...then what it checked: the counties, the grid and its area rule, the pixels per county.
    summary = "\n".join(checked_lines)
    assert "16 in counties.gpkg" in summary and "60 × 80 pixels" in summary and "pixels 100 × 100 m = 1 ha each" in summary
    assert checked.stderr == ""


def test_run_reports_supply_demand_ratio_classes_and_zones_computed_by_hand(run):
    out, _ = run
    want = handbuilt.expected()
    got = pd.read_csv(out / "ratio_zones.csv", dtype={"county": str}).set_index("county")
    assert sorted(got.index) == sorted(want.index)  # every county, once
    got = got.reindex(want.index)
    np.testing.assert_allclose(got["supply_t"], want["supply_t"], rtol=1e-12)
    np.testing.assert_allclose(got["supply_t_per_km2"], want["supply_t"] / want["area_km2"], rtol=1e-9)
    np.testing.assert_allclose(got["demand_t_per_km2"], want["demand_t_per_km2"], rtol=1e-9)
    finite = np.isfinite(want["ratio"])
    np.testing.assert_allclose(got["ratio"][finite], want["ratio"][finite], rtol=1e-9)
    assert got.loc[handbuilt.ZERO_SUPPLY, "supply_t"] == 0 and np.isinf(got.loc[handbuilt.ZERO_SUPPLY, "ratio"])
    assert got["ratio_infinite"].tolist() == (~finite).tolist()
    assert got["class"].tolist() == want["class"].tolist()
    assert got["zone"].tolist() == want["zone"].tolist()


def test_run_writes_supply_and_demand_tables_computed_by_hand(run):
    out, _ = run
    want = handbuilt.expected()
    supply = pd.read_csv(out / "supply_by_county.csv", dtype={"county": str}).set_index("county")
    assert sorted(supply.index) == sorted(want.index)
    supply = supply.reindex(want.index)
    np.testing.assert_allclose(supply["supply_t"], want["supply_t"], rtol=1e-12)
    assert supply["pixels"].tolist() == want["pixels"].tolist()
    np.testing.assert_allclose(supply["area_km2"], want["pixels"] * 0.01, rtol=1e-12)  # pixel area: 1 ha = 0.01 km² each
    np.testing.assert_allclose(supply["share_pct"], 100 * want["supply_t"] / want["supply_t"].sum(), rtol=1e-9)
    by_class = pd.read_csv(out / "supply_by_class.csv").set_index("lucode")["supply_t"]
    expected_classes = handbuilt.supply_by_class()
    np.testing.assert_allclose(by_class.reindex(expected_classes.index), expected_classes, rtol=1e-12)
    pairs = pd.read_csv(out / "supply_by_county_class.csv", dtype={"county": str})
    codes = handbuilt.make_codes()
    for name, (rows, cols) in handbuilt.county_slices().items():
        block = codes[rows, cols]
        for code, density in handbuilt.DENSITY.items():
            row = pairs[(pairs["county"] == name) & (pairs["lucode"] == code)]
            n = int((block == code).sum())
            assert (row["pixels"].sum() if len(row) else 0) == n, (name, code)
            assert (row["supply_t"].sum() if len(row) else 0.0) == pytest.approx(n * density, rel=1e-12)
    demand = pd.read_csv(out / "demand_by_county.csv", dtype={"county": str}).set_index("county").reindex(want.index)
    assert demand["population"].tolist() == want["population"].tolist()
    np.testing.assert_allclose(demand["area_km2"], want["area_km2"], rtol=1e-9)
    np.testing.assert_allclose(demand["demand_t_per_km2"], want["demand_t_per_km2"], rtol=1e-9)
    totals = pd.read_csv(out / "demand_totals.csv").set_index("total")["value"]
    assert totals["sum_of_county_densities_t_per_km2"] == pytest.approx(want["demand_t_per_km2"].sum(), rel=1e-9)
    assert totals["regional_density_t_per_km2"] == pytest.approx(3.0 * want["population"].sum() / want["area_km2"].sum(), rel=1e-9)


def test_run_records_the_breaks_and_totals_and_prints_them(run):
    out, done = run
    want = handbuilt.expected()
    info = json.loads((out / "run.json").read_text(encoding="utf-8"))
    np.testing.assert_allclose(info["zoning"]["edges"], want.attrs["edges"], rtol=1e-12)
    assert info["zoning"]["method"] == "jenks" and info["zoning"]["k"] == 7
    assert info["totals"]["supply_t"] == pytest.approx(want["supply_t"].sum(), rel=1e-12)
    assert info["totals"]["counties"] == 16 and info["totals"]["counties_with_infinite_ratio"] == 1
    # stdout: the summary a user reads, with the same numbers.
    assert f"supply   {want['supply_t'].sum():,.0f} t C" in done.stdout and "in 16 counties" in done.stdout
    zones = want["zone"].value_counts()
    order = ["固碳优化区", "碳汇发展区", "协调发展区", "低碳保持区"]
    assert "zones    " + "; ".join(f"{z}: {zones[z]}" for z in order if z in zones) in done.stdout


def test_run_writes_counties_gpkg_with_each_countys_figures(run):
    out, _ = run
    want = handbuilt.expected()
    gpkg = gpd.read_file(out / "counties.gpkg", layer="counties").set_index("county").reindex(want.index)
    np.testing.assert_allclose(gpkg["supply_t"], want["supply_t"], rtol=1e-12)
    np.testing.assert_allclose(gpkg["demand_t_co2_per_km2"], want["demand_t_per_km2"], rtol=1e-9)
    assert gpkg["class"].tolist() == want["class"].tolist() and gpkg["zone"].tolist() == want["zone"].tolist()
    # Each row keeps its own polygon: the geometry's area is the county's rectangle (300 ha).
    np.testing.assert_allclose(gpkg.geometry.area, 300 * 1e4)


def test_run_draws_maps_and_a_report(run):
    out, _ = run
    for stem in ("fig1_supply_by_class", "fig2_supply", "fig3_demand", "fig4_ratio", "fig5_zones"):
        assert (out / "maps" / f"{stem}.png").stat().st_size > 10_000, stem
    page = (out / "report.html").read_text(encoding="utf-8")
    assert all(name in page for name in handbuilt.NAMES)


def test_maps_and_report_commands_redraw_a_run(run):
    out, _ = run
    maps = carbonscape("maps", str(out), "--format", "svg")
    written = {Path(line).name for line in maps.stdout.split()}
    assert {"fig2_supply.svg", "fig4_ratio.svg", "fig5_zones.svg"} <= written
    # The earlier draw's figures are gone (the run's statistics maps, which `maps` does not draw, stay).
    from carbonscape.maps import MAP_FILES

    assert not [p for p in (out / "maps").glob("*.png") if p.stem in MAP_FILES]
    report = carbonscape("report", str(out))
    assert report.stdout.strip() == str(out / "report.html")
    assert "data:image/svg+xml;base64," in (out / "report.html").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def steps(study, tmp_path_factory):
    """ingest → zones → supply --pixel-maps, each a `carbonscape` process (threads scheduler)."""
    base = tmp_path_factory.mktemp("steps")
    lu, zones, out = base / "lu.zarr", base / "zones.zarr", base / "out"
    done = {
        "ingest": carbonscape("ingest", str(study.landuse), "--out", str(lu), "--chunk", "32", "--scheduler", "threads", "--no-progress"),
        "zones": carbonscape("zones", str(study.counties), "--like", str(lu), "--id-field", "county", "--out", str(zones), "--scheduler", "threads", "--no-progress"),
        "supply": carbonscape("supply", "--landuse", str(lu), "--zones", str(zones), "--pools", str(study.pools), "--out", str(out), "--pixel-maps",
                              "--scheduler", "threads", "--no-progress"),
    }
    return base, done


def test_step_by_step_supply_equals_the_hand_computed_supply(steps):
    base, done = steps
    assert done["ingest"].stdout.strip() == str(base / "lu.zarr") and done["zones"].stdout.strip() == str(base / "zones.zarr")
    want = handbuilt.expected()
    got = pd.read_csv(base / "out" / "supply_by_county.csv", dtype={"county": str}).set_index("county")
    assert sorted(got.index) == sorted(want.index)
    np.testing.assert_allclose(got["supply_t"].reindex(want.index), want["supply_t"], rtol=1e-12)
    assert f"total supply {want['supply_t'].sum():,.0f} t C in 16 counties" in done["supply"].stdout
    assert f"({want['pixels'].sum():,} pixels, {want['nodata'].sum():,} nodata)" in done["supply"].stdout


def test_supply_pixel_maps_hold_each_pixels_carbon_density(steps):
    base, _ = steps
    codes = handbuilt.make_codes()
    expected = np.full(codes.shape, np.nan)
    for code, density in handbuilt.DENSITY.items():
        expected[codes == code] = density  # t/ha; nodata pixels stay NaN
    with rasterio.open(base / "out" / "carbon_t_per_ha.tif") as src:
        assert src.shape == codes.shape and src.crs.to_epsg() == 6933
        assert src.transform == rasterio.transform.from_origin(*handbuilt.ORIGIN, 100, 100)
        cog = src.read(1)
    np.testing.assert_array_equal(cog, expected)
    store = zarr.open_group(str(base / "out" / "carbon_t_per_ha.zarr"), mode="r")
    np.testing.assert_array_equal(np.asarray(store["carbon_t_per_ha"][:]), expected)


def _mtime(store: Path) -> int:
    return (store / "zarr.json").stat().st_mtime_ns


def test_ingest_reuses_a_current_store_and_force_rebuilds_it(steps, study):
    base, _ = steps
    lu, zones = base / "lu.zarr", base / "zones.zarr"
    before = {lu: _mtime(lu), zones: _mtime(zones)}
    again = carbonscape("-v", "ingest", str(study.landuse), "--out", str(lu), "--chunk", "32", "--scheduler", "threads", "--no-progress")
    assert _mtime(lu) == before[lu] and "up to date" in again.stderr  # nothing rewritten
    carbonscape("ingest", str(study.landuse), "--out", str(lu), "--chunk", "32", "--scheduler", "threads", "--no-progress", "--force")
    carbonscape("zones", str(study.counties), "--like", str(lu), "--id-field", "county", "--out", str(zones), "--scheduler", "threads",
                "--no-progress", "--force")
    assert _mtime(lu) != before[lu] and _mtime(zones) != before[zones]
    # Rebuilt, and still right: the store holds the GeoTIFF's codes exactly.
    group = zarr.open_group(str(lu), mode="r")
    np.testing.assert_array_equal(np.asarray(group["landuse"][:]), handbuilt.make_codes())


def test_zones_layer_picks_the_named_layer(steps, study, tmp_path):
    """A GeoPackage whose first layer holds the 16 counties and whose second, `halves`, two:
    west = columns 0-39 (counties A, B, E, F, I, J, M, N) and east; --layer halves picks the second."""
    base, _ = steps
    vector = tmp_path / "two_layers.gpkg"
    gpd.read_file(study.counties).to_file(vector, layer="counties", engine="pyogrio")
    halves = [handbuilt.county_polygon(slice(0, 60), slice(0, 40)), handbuilt.county_polygon(slice(0, 60), slice(40, 80))]
    gpd.GeoDataFrame({"county": ["West", "East"]}, geometry=halves, crs=handbuilt.CRS).to_file(vector, layer="halves", engine="pyogrio")
    carbonscape("zones", str(vector), "--like", str(base / "lu.zarr"), "--id-field", "county", "--layer", "halves", "--out", str(tmp_path / "z.zarr"),
                "--scheduler", "threads", "--no-progress")
    carbonscape("supply", "--landuse", str(base / "lu.zarr"), "--zones", str(tmp_path / "z.zarr"), "--pools", str(study.pools),
                "--out", str(tmp_path / "o"), "--scheduler", "threads", "--no-progress")
    want = handbuilt.expected()
    got = pd.read_csv(tmp_path / "o" / "supply_by_county.csv").set_index("county")["supply_t"]
    west = want.loc[list("ABEFIJMN"), "supply_t"].sum()
    assert sorted(got.index) == ["East", "West"]
    assert got["West"] == pytest.approx(west, rel=1e-12)
    assert got["East"] == pytest.approx(want["supply_t"].sum() - west, rel=1e-12)


def test_generate_writes_a_region_of_the_size_asked(tmp_path):
    done = carbonscape("generate", str(tmp_path / "g"), "--size", "40x50", "--counties", "3", "--seed", "1", "--pixel-size", "25")
    assert done.stdout.splitlines() == [f"landuse: {tmp_path / 'g' / 'landuse.tif'}", f"counties: {tmp_path / 'g' / 'counties.gpkg'}",
                                        f"pools: {tmp_path / 'g' / 'pools.csv'}"]
    with rasterio.open(tmp_path / "g" / "landuse.tif") as src:
        assert src.shape == (40, 50) and src.res == (25.0, 25.0)
    assert len(gpd.read_file(tmp_path / "g" / "counties.gpkg")) == 3


def test_init_then_check_lists_the_missing_inputs_and_exits_2(tmp_path):
    carbonscape("init", str(tmp_path / "s" / "study.toml"))
    done = carbonscape("check", str(tmp_path / "s" / "study.toml"), ok=False)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("Error: ") and "landuse.tif" in done.stderr and "Traceback" not in done.stderr

