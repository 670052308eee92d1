"""The fused counts-and-areas pass (COUNTS_AREAS) against the two statistics it replaces, on the
area lattices of real grids (the property tests of the accumulation layer use plain area sources,
which take its fallback path): Web Mercator (areas by row), UTM far off its zone (areas vary both
ways), lon/lat, each with and without fraction-mode boundary pixels, and its numpy reference."""

import dask
import dask.array as da
import numpy as np
import pytest
from carbonscape import ingest, rasterize_zones
from carbonscape.accumulate import AREAS, COUNTS, ClassIndex, Layout, accumulate, accumulate_numpy
from carbonscape.accumulate.library import COUNTS_AREAS
from carbonscape.io import open_store
from carbonscape.rasterize import open_zones
from conftest import write_tif, write_vector
from rasterio.transform import from_origin

GRIDS = {
    "mercator": ("EPSG:3857", from_origin(11_000_000, 3_000_000, 250, 250)),
    "utm_off_zone": ("EPSG:32648", from_origin(1_500_000, 3_000_000, 500, 500)),
    "lonlat": ("EPSG:4326", from_origin(100.0, 30.0, 0.01, 0.01)),
}


@pytest.mark.parametrize("coverage", ["centre", "fraction"])
@pytest.mark.parametrize("name", sorted(GRIDS))
def test_fused_pass_equals_counts_and_areas_and_its_reference(tmp_path, name, coverage):
    import shapely

    crs, transform = GRIDS[name]
    rng = np.random.default_rng(3)
    codes = rng.choice(np.array([1, 2, 3, 255], dtype=np.uint8), size=(70, 90), p=[0.4, 0.3, 0.2, 0.1])
    lu = ingest(write_tif(tmp_path / "lu.tif", codes, transform=transform, crs=crs, nodata=255), tmp_path / "lu.zarr", chunk=32, scheduler="synchronous")
    # Three counties with slanted borders through pixels (so fraction mode has boundary pixels).
    x0, y0 = transform * (0, 0)
    x1, y1 = transform * (90, 70)
    w, h = x1 - x0, y1 - y0
    p = lambda fx, fy: (x0 + fx * w, y0 + fy * h)  # noqa: E731
    polys = [shapely.Polygon([p(0, 0), p(0.37, 0), p(0.29, 1), p(0, 1)]), shapely.Polygon([p(0.37, 0), p(0.71, 0), p(0.66, 1), p(0.29, 1)]),
             shapely.Polygon([p(0.71, 0), p(1.2, 0), p(1.2, 1), p(0.66, 1)])]
    zones = rasterize_zones(write_vector(tmp_path / "c.gpkg", polys, ["A", "B", "C"], crs=crs), like=lu, id_field="county",
                            out=tmp_path / "z.zarr", coverage=coverage, scheduler="synchronous")
    land = open_store(lu)
    zone_store, table = open_zones(zones)
    grid = land.grid
    assert grid.uniform_area_m2() is None and hasattr(grid, "area_lattice")
    layout = Layout(n_counties=table.n_zones, classes=ClassIndex.build((1, 2, 3), nodata=255),
                    params={"boundary": str(zone_store.path)} if coverage == "fraction" else {})
    lazy = accumulate([COUNTS_AREAS, COUNTS, AREAS], zone_store.data, {"landuse": land.data}, layout=layout, areas=grid)
    fused, counts, areas = dask.compute(*lazy.values(), scheduler="synchronous")
    np.testing.assert_array_equal(fused[0], counts)
    np.testing.assert_allclose(fused[1], areas, rtol=1e-13, atol=1e-6)
    reference = accumulate_numpy([COUNTS_AREAS], np.asarray(zone_store.data), {"landuse": np.asarray(land.data)}, layout=layout, areas=grid)
    np.testing.assert_allclose(fused, reference["counts_areas"], rtol=1e-10, atol=1e-3)  # m²: the kernels drop shares under 1e-12 of a pixel
    assert fused[0].sum() == codes.size
