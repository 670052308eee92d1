"""InVEST parity of `change`: InVEST 3.20.2's own c_change and npv rasters on the same small real
rasters, compared pixel for pixel.

The inputs (tests/data/invest_change: two 60 × 80 land-use GeoTIFFs whose nodata masks differ, and
the demo's pools table) were made by make_inputs.py; InVEST's outputs were made once with InVEST
3.20.2 (see invest_run.json for the command and its parameters) and are committed, so InVEST is
never a dependency of the project or its CI.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from carbonscape import Valuation, change, ingest, rasterize_zones
from conftest import write_vector

DATA = Path(__file__).parent / "data" / "invest_change"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("invest")
    params = json.loads((DATA / "invest_run.json").read_text())
    a = ingest(DATA / "lulc_bas.tif", tmp / "a.zarr", chunk=32, scheduler="synchronous")
    b = ingest(DATA / "lulc_alt.tif", tmp / "b.zarr", chunk=32, scheduler="synchronous")
    with rasterio.open(DATA / "lulc_bas.tif") as src:
        bounds = src.bounds
        crs = src.crs.to_string()
    vector = write_vector(tmp / "region.gpkg", [shapely.box(*bounds)], ["region"], crs=crs)
    zones = rasterize_zones(vector, like=a, id_field="county", out=tmp / "z.zarr", scheduler="synchronous")
    pools = tmp / "pools.csv"
    shutil.copy(DATA / "pools.csv", pools)
    v = params["valuation"]
    result = change(a, b, zones, pools, years=tuple(v["years"]), out=tmp / "out", pixel_maps=True, scheduler="synchronous",
                    valuation=Valuation(price=v["price"], discount_rate=v["discount_rate"], rate_change=v["rate_change"]))
    return result, tmp / "out", params


def _read(path: Path) -> tuple[np.ndarray, float]:
    with rasterio.open(path) as src:
        return src.read(1), src.nodata


def test_c_change_equals_invest_pixel_for_pixel(run):
    _, out, _ = run
    ours, our_nodata = _read(out / "c_change.tif")
    theirs, their_nodata = _read(DATA / "invest_c_change_bas_alt.tif")
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(ours == our_nodata, theirs == their_nodata)
    valid = theirs != their_nodata
    assert valid.sum() > 4000 and (theirs[valid] != 0).sum() > 100  # real changes, not an empty comparison
    np.testing.assert_array_equal(ours[valid], theirs[valid])


def test_npv_equals_invest_pixel_for_pixel(run):
    _, out, _ = run
    ours, our_nodata = _read(out / "npv.tif")
    theirs, their_nodata = _read(DATA / "invest_npv_alt.tif")
    np.testing.assert_array_equal(ours == our_nodata, theirs == their_nodata)
    valid = theirs != their_nodata
    np.testing.assert_allclose(ours[valid], theirs[valid], rtol=1e-6, atol=1e-3)


def _true_over_nominal() -> float:
    """InVEST counts each pixel's nominal area; carbonscape its true ground area. This raster is
    projected (not equal-area), so the two differ by the projection's area scale, nearly constant
    over so small a raster: the centre pixel's geodesic outline area (pyproj) over its nominal area."""
    from pyproj import Geod, Transformer

    with rasterio.open(DATA / "lulc_bas.tif") as src:
        t, crs, (h, w) = src.transform, src.crs, src.shape
    u = np.linspace(0, 1, 33)
    cols = np.concatenate([u, np.ones(33), 1 - u, np.zeros(33)]) + w // 2
    rows = np.concatenate([np.zeros(33), u, np.ones(33), 1 - u]) + h // 2
    xs, ys = t * (cols, rows)
    lon, lat = Transformer.from_crs(crs, crs.to_epsg() and "EPSG:4326" or crs.geodetic_crs, always_xy=True).transform(xs, ys)
    return abs(Geod(ellps="WGS84").polygon_area_perimeter(lon, lat)[0]) / abs(t.a * t.e)


def test_totals_equal_invest_s_summary(run):
    result, _, params = run
    totals = params["invest_summary"]
    # UTM near its central meridian is ~0.08 % off ground area, under the 0.1 % tolerance: carbonscape
    # uses nominal areas there, as InVEST does, so the totals are InVEST's own.
    assert _true_over_nominal() == pytest.approx(1.0, abs=1e-3)
    scale = 1.0
    assert result.summary["supply_from_t"] == pytest.approx(totals["c_storage_bas"] * scale, rel=1e-5)
    assert result.summary["supply_to_t"] == pytest.approx(totals["c_storage_alt"] * scale, rel=1e-5)
    assert result.summary["change_t"] == pytest.approx(totals["c_change_bas_alt"] * scale, rel=1e-5)
    assert result.summary["valuation"]["npv"] == pytest.approx(totals["npv_alt"] * scale, rel=1e-5)
    # The nodata masks differ, so the change is not the difference of the stocks (InVEST's own figures).
    assert abs(totals["c_storage_alt"] - totals["c_storage_bas"] - totals["c_change_bas_alt"]) > 100
