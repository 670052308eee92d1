"""The scanline span burn (carbonscape.kernels.spans) against hand-computed rasters, its plain
numpy reference, and GDAL's rasterize (the rule it reproduces) on random and real polygons."""

import geopandas as gpd
import numpy as np
import pytest
import shapely
from affine import Affine
from carbonscape.demo import demo_paths
from carbonscape.kernels.spans import burn_rings_numpy
from carbonscape.rasterize import _burn_chunk, window_rings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rasterio.features import rasterize as gdal_rasterize

# Pixel units as world units, rows downwards: world (x, y) is pixel (col = x, row = 10 - y).
T = (1.0, 0.0, 0.0, 0.0, -1.0, 10.0)


def px(coords, holes=()):
    """A polygon given in pixel coordinates (col, row)."""
    flip = lambda ring: [(x, 10 - y) for x, y in ring]  # noqa: E731
    return shapely.Polygon(flip(coords), [flip(h) for h in holes])


def burn(geoms, shape=(8, 8), ids=None, transform=T):
    ids = tuple(range(1, len(geoms) + 1)) if ids is None else tuple(ids)
    return _burn_chunk(tuple(shapely.to_wkb(list(geoms))), ids, transform, shape, "uint16")


def gdal(geoms, shape=(8, 8), ids=None, transform=T):
    ids = list(range(1, len(geoms) + 1)) if ids is None else list(ids)
    return gdal_rasterize(zip(geoms, ids), out_shape=shape, transform=Affine(*transform), fill=0, dtype="uint16")


def reference(geoms, shape, ids=None, transform=T):
    ids = np.arange(1, len(geoms) + 1) if ids is None else np.asarray(ids)
    rings = window_rings(np.asarray(geoms, dtype=object), ids, transform, orient=False)
    return burn_rings_numpy(rings.xs, rings.ys, rings.ring_starts, rings.polygon_starts, rings.counties, shape)


def test_square_with_a_hole_by_hand():
    # Shell covers centres of rows 1..5 × cols 1..5; the hole those of rows 2..3 × cols 3..4.
    shape = px([(0.8, 0.8), (6.2, 0.8), (6.2, 6.2), (0.8, 6.2)], [[(2.9, 1.9), (4.8, 1.9), (4.8, 4.1), (2.9, 4.1)]])
    want = np.zeros((8, 8), dtype=np.uint16)
    want[1:6, 1:6] = 1
    want[2:4, 3:5] = 0
    np.testing.assert_array_equal(burn([shape]), want)


def test_multipolygon_parts_and_overlap_order_by_hand():
    # One county of two parts (a 2×2 block and one pixel), then a later county overlapping it:
    # the later one wins where both hold a centre (GDAL's replace).
    county = shapely.MultiPolygon([px([(0.2, 0.2), (2, 0.2), (2, 2), (0.2, 2)]), px([(6.1, 6.1), (6.9, 6.1), (6.9, 6.9), (6.1, 6.9)])])
    later = px([(1.2, 1.2), (3, 1.2), (3, 3), (1.2, 3)])
    got = burn([county, later], ids=[7, 9])
    want = np.zeros((8, 8), dtype=np.uint16)
    want[0:2, 0:2] = 7
    want[6, 6] = 7
    want[1:3, 1:3] = 9
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(gdal([county, later], ids=[7, 9]), want)


def test_county_inside_one_pixel():
    # Holding the pixel's centre: that one pixel; missing it: none (the pixel-centre rule).
    np.testing.assert_array_equal(np.argwhere(burn([px([(3.3, 4.3), (3.7, 4.3), (3.7, 4.7), (3.3, 4.7)])])), [[4, 3]])
    assert not burn([px([(3.1, 4.1), (3.4, 4.1), (3.4, 4.4), (3.1, 4.4)])]).any()


def test_edges_along_pixel_boundaries():
    # A box exactly on pixel boundaries covers exactly its pixels, and two boxes sharing a pixel
    # boundary take their own pixels each.
    got = burn([px([(1, 2), (4, 2), (4, 5), (1, 5)]), px([(4, 2), (7, 2), (7, 5), (4, 5)])])
    want = np.zeros((8, 8), dtype=np.uint16)
    want[2:5, 1:4] = 1
    want[2:5, 4:7] = 2
    np.testing.assert_array_equal(got, want)


def test_concave_shape_by_hand():
    # A U: two arms joined at the bottom; the notch between the arms (cols 2..4 of rows 0..3) stays empty.
    u = px([(0.5, 0.2), (1.9, 0.2), (1.9, 4.1), (5.1, 4.1), (5.1, 0.2), (6.8, 0.2), (6.8, 6.2), (0.5, 6.2)])
    # Centres x = 0.5 lie on the left edge (a < x <= b leaves them out): the arms are columns 1
    # and 5..6 of rows 0..3, the base columns 1..6 of rows 4..5.
    want = np.zeros((8, 8), dtype=np.uint16)
    want[0:4, 1] = 1
    want[0:4, 5:7] = 1
    want[4:6, 1:7] = 1
    np.testing.assert_array_equal(burn([u]), want)
    np.testing.assert_array_equal(gdal([u]), want)


def test_ties_centres_on_edges_follow_the_documented_rule():
    # A centre on a vertical edge belongs to the polygon on its left (a < x <= b); a centre on a
    # horizontal edge to the polygon below it (larger row), whichever comes first in the list.
    left, right = px([(0.2, 0.2), (3.5, 0.2), (3.5, 7), (0.2, 7)]), px([(3.5, 0.2), (7.8, 0.2), (7.8, 7), (3.5, 7)])
    for order in ((left, right), (right, left)):
        got = burn(list(order), ids=[1, 2] if order[0] is left else [2, 1])
        assert (got[0:7, 3] == 1).all() and (got[0:7, 4] == 2).all()
    top, bottom = px([(0.2, 0.2), (7, 0.2), (7, 3.5), (0.2, 3.5)]), px([(0.2, 3.5), (7, 3.5), (7, 7.8), (0.2, 7.8)])
    for order in ((top, bottom), (bottom, top)):
        got = burn(list(order), ids=[1, 2] if order[0] is top else [2, 1])
        assert (got[2, :7] == 1).all() and (got[3, :7] == 2).all()
    # GDAL agrees on the vertical border, and on the horizontal one only when the polygon below
    # comes last: GDAL fills a centre on a polygon's bottom edge too, so both claim row 3.
    np.testing.assert_array_equal(gdal([left, right]), burn([left, right]))
    np.testing.assert_array_equal(gdal([top, bottom]), burn([top, bottom]))
    assert (gdal([bottom, top], ids=[2, 1])[3, :7] == 1).all()


def _star(draw, centre, n, lattice):
    angles = np.sort(np.array(draw(st.lists(st.floats(0, 2 * np.pi, allow_nan=False), min_size=n, max_size=n, unique=True))))
    radii = np.array(draw(st.lists(st.floats(0.3, 9.0), min_size=n, max_size=n)))
    xy = np.column_stack([centre[0] + radii * np.cos(angles), centre[1] + radii * np.sin(angles)])
    if lattice:
        xy = np.round(xy * 2) / 2  # vertices on half pixels: edges through centres, the ties
    return xy


@st.composite
def polygons(draw):
    """1..4 star-shaped (hence simple but often concave) polygons, some with a hole, some as
    multipolygons, vertices anywhere or on a half-pixel lattice (many centres on edges)."""
    lattice = draw(st.booleans())
    out = []
    for _ in range(draw(st.integers(1, 4))):
        centre = (draw(st.floats(2, 22)), draw(st.floats(2, 18)))
        shell = shapely.Polygon(_star(draw, centre, draw(st.integers(3, 12)), lattice))
        shell = shapely.make_valid(shell)
        if draw(st.booleans()):
            hole = shapely.Point(centre).buffer(draw(st.floats(0.5, 3)), quad_segs=draw(st.integers(1, 4)))
            shell = shapely.make_valid(shapely.difference(shell, hole))
        parts = [p for p in shapely.get_parts(shell) if shapely.get_type_id(p) == 3 and not p.is_empty]
        if parts:
            out.append(shapely.MultiPolygon(parts) if len(parts) > 1 else parts[0])
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(polygons())
def test_random_polygons_equal_gdal_but_for_centres_on_edges(geoms):
    shape = (22, 26)
    transform = (1.0, 0.0, 0.0, 0.0, -1.0, 22.0)
    if not geoms:
        return
    ours = burn(geoms, shape, transform=transform)
    # The plain reference gives exactly the same raster (same rule, every centre against every edge).
    np.testing.assert_array_equal(ours, reference(geoms, shape, transform=transform))
    theirs = gdal(geoms, shape, transform=transform)
    differ = np.argwhere(ours != theirs)
    # Every difference is a centre lying exactly on a polygon's horizontal edge (the one case of
    # the rule that departs from GDAL's); off the half-pixel lattice there are none at all.
    boundary = shapely.union_all([shapely.boundary(g) for g in geoms])
    for r, c in differ:
        centre = shapely.Point(c + 0.5, 22 - (r + 0.5))
        assert shapely.distance(centre, boundary) < 1e-9, (r, c)
        on = shapely.intersection(boundary, shapely.box(c + 0.5 - 1e-6, 22 - r - 0.5 - 1e-9, c + 0.5 + 1e-6, 22 - r - 0.5 + 1e-9))
        assert shapely.length(on) > 0, (r, c)  # a horizontal edge runs through the centre
    centres_on_edges = sum(
        shapely.distance(shapely.Point(c + 0.5, 22 - (r + 0.5)), boundary) < 1e-9 for r in range(shape[0]) for c in range(shape[1])
    ) if len(differ) else 0
    assert len(differ) <= centres_on_edges


def test_ties_are_counted_and_bounded_on_a_half_pixel_lattice():
    """On polygons whose vertices all lie on half pixels, many centres fall on edges: the pixels
    where ours and GDAL's differ are counted and stay a small share of those centres."""
    rng = np.random.default_rng(11)
    shape = (60, 60)
    transform = (1.0, 0.0, 0.0, 0.0, -1.0, 60.0)
    pts = shapely.points(np.round(rng.uniform(0, 60, (40, 2)) * 2) / 2)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.MultiPoint(pts)))
    cells = shapely.intersection(cells, shapely.box(0, 0, 60, 60))
    # Axis-aligned blocks on half pixels: edges through rows and columns of centres.
    blocks = [shapely.box(x0, y0, x0 + w, y0 + h) for x0, y0, w, h in np.round(rng.uniform([0, 0, 2, 2], [50, 50, 10, 10], (30, 4)) * 2) / 2]
    for geoms in (list(cells), blocks):
        ours, theirs = burn(geoms, shape, transform=transform), gdal(geoms, shape, transform=transform)
        differ = int((ours != theirs).sum())
        boundary = shapely.union_all([shapely.boundary(g) for g in geoms])
        centres = shapely.points(np.column_stack([np.tile(np.arange(60) + 0.5, 60), np.repeat(60 - (np.arange(60) + 0.5), 60)]))
        on_edges = int((shapely.distance(centres, boundary) < 1e-9).sum())
        # Only centres on a horizontal edge can differ (a short horizontal probe through the centre
        # runs along the boundary there): the one tie where the rule departs from GDAL's.
        xy = shapely.get_coordinates(centres)
        probes = shapely.linestrings(np.stack([np.column_stack([xy[:, 0] - 1e-6, xy[:, 1]]), np.column_stack([xy[:, 0] + 1e-6, xy[:, 1]])], axis=1))
        on_horizontal = shapely.length(shapely.intersection(probes, boundary)) > 1e-7
        assert on_edges > 0
        print(f"{differ} of {on_edges} centres on edges ({int(on_horizontal.sum())} on horizontal ones) burned otherwise than GDAL")
        rows, cols = np.nonzero(ours != theirs)
        assert on_horizontal.reshape(shape)[rows, cols].all()
        assert differ <= on_edges
        np.testing.assert_array_equal(ours, reference(geoms, shape, transform=transform))


@pytest.mark.parametrize("pixels_across", [40, 157, 611])
def test_demo_counties_equal_gdal_at_several_resolutions(pixels_across):
    """The demo's 49 real county polygons (lon/lat) burned on grids of three resolutions, whole and
    in chunks clipped as the pass clips them: GDAL's raster exactly (real vertices do not sit on
    pixel centres)."""
    from carbonscape.grid import Grid

    gdf = gpd.read_file(demo_paths()["counties"])
    left, bottom, right, top = gdf.total_bounds
    size = (right - left) / pixels_across
    rows = int(np.ceil((top - bottom) / size))
    transform = (size, 0.0, left, 0.0, -size, top)
    geoms = list(gdf.geometry)
    want = gdal(geoms, (rows, pixels_across), transform=transform)
    np.testing.assert_array_equal(burn(geoms, (rows, pixels_across), transform=transform), want)
    # Chunk by chunk, from the clipped polygons of _chunk_tasks, as the supply pass burns them.
    from carbonscape.rasterize import _chunk_tasks

    grid = Grid(crs_wkt=gdf.crs.to_wkt(), transform=transform, shape=(rows, pixels_across), chunks=(64, 64))
    ids = np.arange(1, len(gdf) + 1)
    got = np.zeros_like(want)
    for (i, j), (wkbs, chunk_ids, chunk_transform, chunk_shape) in _chunk_tasks(gdf, grid, ids=ids).items():
        got[i * 64:i * 64 + chunk_shape[0], j * 64:j * 64 + chunk_shape[1]] = _burn_chunk(wkbs, chunk_ids, chunk_transform, chunk_shape, "uint16")
    np.testing.assert_array_equal(got, want)


# ---- Counting along spans, with no id raster (SPAN_COUNTS_AREAS) ----

from carbonscape.accumulate import Chunk, ClassIndex, Layout, RowAreas  # noqa: E402
from carbonscape.accumulate.library import COUNTS_AREAS, SPAN_COUNTS_AREAS  # noqa: E402
from carbonscape.grid import Grid  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402
from pyproj import CRS  # noqa: E402


def _chunk(layout, shape, areas):
    return Chunk(layout=layout, rows=slice(0, shape[0]), cols=slice(0, shape[1]), areas=areas)


def test_span_counts_by_hand():
    # 4 × 6 pixels of 10 m (100 m² each); county 1 holds the centres of cols 0..2, county 2 of
    # cols 3..4 of rows 1..2; column 5 and rows 0 and 3 are outside. Codes: 1 left half, 2 right
    # half, 9 (nodata) at (1, 4).
    codes = np.array([[1, 1, 1, 2, 2, 2]] * 4, dtype=np.uint8)
    codes[1, 4] = 9
    geoms = [px([(0, 1), (3, 1), (3, 3), (0, 3)]), px([(3, 1), (5, 1), (5, 3), (3, 3)])]
    transform = (1.0, 0.0, 0.0, 0.0, -1.0, 10.0)
    rings = window_rings(np.asarray(geoms, dtype=object), np.array([1, 2]), transform)
    layout = Layout(n_counties=3, classes=ClassIndex.build([1, 2], nodata=9))
    grid = Grid(crs_wkt=CRS.from_epsg(32648).to_wkt(), transform=(10.0, 0.0, 5e5, 0.0, -10.0, 3e6), shape=(4, 6))
    table = SPAN_COUNTS_AREAS.chunk({"landuse": codes, "county_rings": rings}, _chunk(layout, (4, 6), RowAreas(grid)))
    # columns: class 1, class 2, nodata, unknown
    want = np.array([[6, 8, 0, 0], [6, 0, 0, 0], [0, 3, 1, 0]], dtype=np.float64)  # outside: rows 0, 3 and (1..2, 5)
    np.testing.assert_array_equal(table[0], want)
    np.testing.assert_array_equal(table[1], want * 100.0)


@st.composite
def span_passes(draw):
    geoms = draw(polygons())
    rows, cols = draw(st.integers(1, 22)), draw(st.integers(1, 26))
    dtype = draw(st.sampled_from([np.uint8, np.int16, np.int32]))  # int32: the id-raster fallback
    codes = draw(hnp.arrays(dtype, (rows, cols), elements=st.integers(0, 5)))
    layout_codes = draw(st.lists(st.integers(0, 4), min_size=1, max_size=4, unique=True))
    nodata = draw(st.one_of(st.none(), st.just(5)))
    kind = draw(st.sampled_from(["projected", "geographic", "mercator", "utm-off-zone"]))
    if kind in ("projected", "geographic"):
        grid = Grid(crs_wkt=CRS.from_epsg(4326 if kind == "geographic" else 32648).to_wkt(),
                    transform=(0.01, 0.0, 100.0, 0.0, -0.01, 40.0) if kind == "geographic" else (30.0, 0.0, 5e5, 0.0, -30.0, 3e6),
                    shape=(rows, cols))
        areas = RowAreas(grid)
    else:  # the grid as its own area source: rows only (Web Mercator), rows and columns (the fallback)
        crs, x0 = (3857, 1.2e7) if kind == "mercator" else (32648, 9.5e5)
        areas = Grid(crs_wkt=CRS.from_epsg(crs).to_wkt(), transform=(30.0, 0.0, x0, 0.0, -30.0, 3e6), shape=(rows, cols))
    fraction = draw(st.booleans())
    layout = Layout(n_counties=len(geoms) + 1, classes=ClassIndex.build(layout_codes, nodata=nodata),
                    params={"boundary_rings": "county_rings"} if fraction else {})
    return geoms, codes, layout, areas


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(span_passes())
def test_span_counts_equal_their_reference_and_the_id_raster_path(case):
    """Counting along spans equals (a) the plain reference (ids centre by centre, fractions by
    shapely) and (b) the id-raster path (burn, then COUNTS_AREAS with the same rings), in centre
    and fraction mode, on uniform, per-row and per-pixel areas, 8/16-bit codes and wider ones."""
    geoms, codes, layout, areas = case
    if not geoms:
        return
    shape = codes.shape
    transform = (1.0, 0.0, 0.0, 0.0, -1.0, float(shape[0]))
    geoms = [g for g in shapely.clip_by_rect(np.asarray(geoms, dtype=object), -1, -1, shape[1] + 1, shape[0] + 1) if not g.is_empty]
    # Counties do not overlap (the overlap check refuses those that share a centre): each polygon
    # minus the ones before it.
    disjoint = []
    for g in geoms:
        for before in disjoint:
            g = shapely.difference(g, before)
        parts = [p for p in shapely.get_parts(g) if shapely.get_type_id(p) == 3 and not p.is_empty]
        if parts:
            disjoint.append(shapely.MultiPolygon(parts) if len(parts) > 1 else parts[0])
    geoms = disjoint
    if not geoms:
        return
    rings = window_rings(np.asarray(geoms, dtype=object), np.arange(1, len(geoms) + 1), transform)
    where = _chunk(layout, shape, areas)
    got = SPAN_COUNTS_AREAS.chunk({"landuse": codes, "county_rings": rings}, where)
    want = SPAN_COUNTS_AREAS.reference({"landuse": codes, "county_rings": rings}, _chunk(layout, shape, areas))
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1], rtol=1e-9, atol=1e-6 * float(np.max(np.abs(want[1]), initial=1.0)))
    ids = burn(geoms, shape, ids=range(1, len(geoms) + 1), transform=transform)
    by_raster = COUNTS_AREAS.chunk({"counties": ids, "landuse": codes, "county_rings": rings}, _chunk(layout, shape, areas))
    np.testing.assert_array_equal(got[0], by_raster[0])
    np.testing.assert_allclose(got[1], by_raster[1], rtol=1e-12, atol=1e-9)
