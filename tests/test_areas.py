"""True ground areas of pixels in any CRS, against an independent oracle: pyproj's geodesic area
(``Geod.polygon_area_perimeter``) of each pixel's outline, densified in the grid's CRS and
carried to lon/lat."""

import numpy as np
import pytest
from carbonscape import Grid
from carbonscape.grid import (
    AREA_ELLIPSOIDAL_ROWS,
    AREA_NOMINAL,
    AREA_TRUE_PIXELS,
    AREA_TRUE_ROWS,
    INTERPOLATION_TOLERANCE,
)
from carbonscape.kernels.area import lattice_areas_numpy, lattice_row, sum_pair_areas, sum_pair_areas_dense
from pyproj import Geod, Transformer
from rasterio.transform import from_origin

LCC_KRASSOWSKY = "+proj=lcc +lat_1=25 +lat_2=47 +lon_0=105 +ellps=krass +units=m +no_defs"
MERC_X, MERC_Y = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True).transform(102.7, 25.05)


def geodesic_pixel_area(grid: Grid, row: int, col: int, *, densify: int = 64) -> float:
    """The oracle: the pixel's outline, ``densify`` points per edge, as a geodesic polygon on
    the CRS's own ellipsoid."""
    a, _, c, _, e, f = grid.transform
    t = np.linspace(0.0, 1.0, densify, endpoint=False)
    du = np.concatenate([t, np.ones(densify), 1 - t, np.zeros(densify)])
    dv = np.concatenate([np.ones(densify), 1 - t, np.zeros(densify), t])
    to_lonlat = Transformer.from_crs(grid.crs, grid.crs.geodetic_crs, always_xy=True)
    lon, lat = to_lonlat.transform(c + a * (col + du), f + e * (row + dv))
    ellipsoid = grid.crs.ellipsoid
    geod = Geod(a=ellipsoid.semi_major_metre, rf=ellipsoid.inverse_flattening)
    return abs(geod.polygon_area_perimeter(lon, lat)[0])


# (CRS, origin x, origin y, pixel size, shape, the rule the measurement must find)
GRIDS = {
    "web mercator at 25N": ("EPSG:3857", MERC_X, MERC_Y, 100.0, (40, 60), AREA_TRUE_ROWS),
    "UTM 48N far from its meridian": ("EPSG:32648", 210_000.0, 3_100_000.0, 30.0, (3000, 2000), AREA_TRUE_PIXELS),
    "CGCS2000 3-degree Gauss-Kruger": ("EPSG:4547", 480_000.0, 2_800_000.0, 250.0, (800, 900), AREA_TRUE_PIXELS),
    "Lambert conformal on Krassowsky": (LCC_KRASSOWSKY, -500_000.0, 4_000_000.0, 1000.0, (900, 1200), AREA_TRUE_PIXELS),
    "LAEA Europe": ("EPSG:3035", 4_000_000.0, 3_000_000.0, 100.0, (500, 700), AREA_NOMINAL),
    "EASE-Grid 2.0": ("EPSG:6933", 1_000_000.0, 3_000_000.0, 1000.0, (400, 300), AREA_NOMINAL),
}


@pytest.mark.parametrize("name", list(GRIDS))
def test_area_rule_is_measured_and_pixel_areas_match_geodesic_outlines(name):
    crs, x0, y0, size, shape, rule = GRIDS[name]
    grid = Grid.from_affine(crs=crs, transform=from_origin(x0, y0, size, size), shape=shape)
    model = grid.area_model
    assert model.rule == rule
    assert model.interpolation_error <= INTERPOLATION_TOLERANCE
    rng = np.random.default_rng(7)
    pixels = [(0, 0), (shape[0] - 1, shape[1] - 1), (0, shape[1] - 1)] + [tuple(int(rng.integers(0, n)) for n in shape) for _ in range(6)]
    for row, col in pixels:
        oracle = geodesic_pixel_area(grid, row, col)
        # pyproj's geodesic areas of 30 m outlines are themselves only good to ~1e-8 (measured)
        assert grid.exact_pixel_areas_m2([row], [col])[0] == pytest.approx(oracle, rel=1e-7)
        assert grid.pixel_areas_m2(slice(row, row + 1), slice(col, col + 1))[0, 0] == pytest.approx(oracle, rel=1e-7)
    if rule == AREA_NOMINAL:
        assert abs(model.largest_difference) < 1e-7 and grid.uniform_area_m2() == size * size
    else:
        assert grid.uniform_area_m2() is None and abs(model.largest_difference) > 1e-4


def test_web_mercator_is_measured_on_the_wgs84_ellipsoid_not_its_sphere():
    # The handed case: 100 m Web Mercator pixels at 25°N cover 0.8172 ha (first row) on WGS 84;
    # the spherical cos²φ would give 0.8204 ha.
    grid = Grid.from_affine(crs="EPSG:3857", transform=from_origin(round(MERC_X, -2), round(MERC_Y, -2), 100, 100), shape=(40, 60))
    first, last = grid.area_block(slice(0, 40), slice(0, 60))[[0, -1], 0] / 1e4
    assert first == pytest.approx(0.8171948725700379, rel=1e-7)
    assert last == pytest.approx(0.8176132126659155, rel=1e-7)
    assert grid.area_model.largest_difference == pytest.approx(1 / 0.8171948725700379 - 1, rel=1e-3)
    assert "22.4 %" in grid.area_model.sentence() or "+22.4" in grid.area_model.sentence()


def test_geographic_grids_keep_their_closed_form_row_areas():
    grid = Grid.from_affine(crs="EPSG:4326", transform=from_origin(100, 30, 0.01, 0.01), shape=(50, 7))
    assert grid.area_model.rule == AREA_ELLIPSOIDAL_ROWS
    np.testing.assert_allclose(grid.area_block(slice(3, 9), slice(0, 7))[:, 0], grid.row_areas_m2(3, 9), rtol=1e-12)


def test_interpolated_areas_stay_within_the_tolerance_between_nodes():
    # A large conformal grid (10 m, 200 km × 300 km, UTM off its meridian): the lattice is coarse,
    # and pixels far from every node are still within the measured bound.
    grid = Grid.from_affine(crs="EPSG:32648", transform=from_origin(210_000, 3_300_000, 10, 10), shape=(20_000, 30_000))
    model = grid.area_model
    assert len(model.node_rows) < 200 and len(model.node_cols) < 200
    rng = np.random.default_rng(3)
    rows, cols = rng.integers(0, 20_000, 40), rng.integers(0, 30_000, 40)
    exact = grid.exact_pixel_areas_m2(rows, cols)
    interpolated = np.array([grid.pixel_areas_m2(slice(r, r + 1), slice(c, c + 1))[0, 0] for r, c in zip(rows, cols)])
    np.testing.assert_allclose(interpolated, exact, rtol=3 * INTERPOLATION_TOLERANCE)


@pytest.mark.parametrize("name", ["web mercator at 25N", "Lambert conformal on Krassowsky"])
def test_kernel_rows_equal_the_numpy_reference(name):
    crs, x0, y0, size, shape, _ = GRIDS[name]
    grid = Grid.from_affine(crs=crs, transform=from_origin(x0, y0, size, size), shape=shape)
    lattice, node_rows, node_cols = grid.area_lattice()
    out = np.empty(37)
    for row, col0 in [(0, 0), (5, 11), (shape[0] - 1, shape[1] - 37), (shape[0] // 2, shape[1] // 3)]:
        lattice_row(lattice, node_rows, node_cols, row, col0, out)
        expected = lattice_areas_numpy(lattice, node_rows, node_cols, slice(row, row + 1), slice(col0, col0 + 37))[0]
        np.testing.assert_allclose(out, expected, rtol=1e-13)


@pytest.mark.parametrize("name", ["web mercator at 25N", "Lambert conformal on Krassowsky", "UTM 48N far from its meridian"])
def test_county_and_class_totals_match_per_pixel_geodesic_areas(name):
    """Totals per (county, class) from the chunked kernels equal the sum of every pixel's geodesic
    outline area within 1e-6."""
    crs, x0, y0, size, _, _ = GRIDS[name]
    shape = (24, 30)
    grid = Grid.from_affine(crs=crs, transform=from_origin(x0, y0, size * 40, size * 40), shape=shape)
    rng = np.random.default_rng(11)
    counties = np.zeros(shape, dtype=np.uint8)
    counties[:, 10:20] = 1
    counties[:, 20:] = 2
    counties[:4] = 0
    codes = rng.choice(np.array([1, 2, 5, 255], dtype=np.uint8), size=shape)
    oracle = np.zeros((3, 4))
    column = {1: 0, 2: 1, 5: 2, 255: 3}
    for r in range(shape[0]):
        for c in range(shape[1]):
            oracle[counties[r, c], column[int(codes[r, c])]] += geodesic_pixel_area(grid, r, c, densify=16)
    lut = np.full(256, 3, dtype=np.int32)
    lut[1], lut[2], lut[5] = 0, 1, 2
    lattice, node_rows, node_cols = grid.area_lattice()
    total = np.zeros((3, 4))
    for r0, r1, c0, c1 in [(0, 10, 0, 16), (0, 10, 16, 30), (10, 24, 0, 16), (10, 24, 16, 30)]:  # four chunks
        total += sum_pair_areas_dense(counties[r0:r1, c0:c1], codes[r0:r1, c0:c1], lut, 0, 3, 4, lattice, node_rows, node_cols, r0, c0)
    np.testing.assert_allclose(total, oracle, rtol=1e-6)
    general = sum_pair_areas(
        counties, codes.astype(np.int32), lut[:6].copy(), 0, 3, 4, 3, 255, 3, lattice, node_rows, node_cols, 0, 0
    )
    np.testing.assert_allclose(general, oracle, rtol=1e-6)
