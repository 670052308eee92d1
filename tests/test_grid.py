import numpy as np
import pytest
from carbonscape import Grid, GridError
from carbonscape.errors import AlignmentError
from pyproj import CRS, Geod
from rasterio.transform import Affine, from_origin


def test_projected_pixel_area_and_bounds():
    grid = Grid.from_affine(crs="EPSG:32648", transform=from_origin(1000, 5000, 30, 30), shape=(10, 20), chunks=(4, 8))
    assert grid.pixel_area_m2 == 900.0
    assert grid.bounds == (1000.0, 4700.0, 1600.0, 5000.0)
    assert grid.dask_chunks == ((4, 4, 2), (8, 8, 4))
    windows = list(grid.chunk_windows())
    assert len(windows) == 9 and windows[-1] == ((2, 2), (slice(8, 10), slice(16, 20)))


def test_feet_are_converted_to_metres():
    # NAD83 / California zone 6 in US survey feet
    grid = Grid.from_affine(crs="EPSG:2230", transform=from_origin(0, 0, 10, 10), shape=(2, 2))
    assert grid.pixel_area_m2 == pytest.approx(100 * (1200 / 3937) ** 2, rel=1e-9)


def test_rotated_grid_is_refused():
    with pytest.raises(GridError, match="rotated"):
        Grid.from_affine(crs="EPSG:32648", transform=Affine(30, 1, 0, 0, -30, 0), shape=(2, 2))


def test_crs_without_units_is_refused():
    engineering = CRS.from_wkt('LOCAL_CS["arbitrary",UNIT["unknown",1]]')
    with pytest.raises(GridError, match="no linear units"):
        Grid.from_affine(crs=engineering, transform=from_origin(0, 0, 1, 1), shape=(2, 2))


@pytest.mark.parametrize("lat_top", [60.0, 1.0, -30.0])
def test_geographic_row_areas_match_pyproj_geodesics(lat_top):
    res = 0.01
    grid = Grid.from_affine(crs="EPSG:4326", transform=from_origin(100.0, lat_top, res, res), shape=(5, 3))
    geod = Geod(ellps="WGS84")
    expected = []
    for r in range(5):
        north, south = lat_top - r * res, lat_top - (r + 1) * res
        area, _ = geod.polygon_area_perimeter([100, 100 + res, 100 + res, 100], [south, south, north, north])
        expected.append(abs(area))
    np.testing.assert_allclose(grid.row_areas_m2(), expected, rtol=1e-7)
    with pytest.raises(GridError):
        _ = grid.pixel_area_m2


def test_check_same_grid_names_the_difference():
    a = Grid.from_affine(crs="EPSG:32648", transform=from_origin(0, 0, 30, 30), shape=(10, 10))
    b = Grid.from_affine(crs="EPSG:32648", transform=from_origin(30, 0, 30, 30), shape=(10, 10))
    a.check_same_grid(a.with_chunks((5, 5)), what="x", reference="y")
    with pytest.raises(AlignmentError, match="transform"):
        a.check_same_grid(b, what="the zone store", reference="landuse.zarr")


def test_a_lon_lat_grid_reports_no_nominal_difference():
    """run.json said 0.0 % nominal-vs-true difference on lon/lat grids, which have no nominal area."""
    from pyproj import CRS

    grid = Grid(crs_wkt=CRS.from_epsg(4326).to_wkt(), transform=(0.01, 0, 100, 0, -0.01, 26), shape=(100, 100), chunks=(50, 50))
    described = grid.area_model.describe()
    assert described["nominal_pixel_area_m2"] is None and described["largest_nominal_vs_true_difference_pct"] is None
