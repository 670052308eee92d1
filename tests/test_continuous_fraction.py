"""Continuous rasters (population, NPP, factors) in fraction mode: every boundary pixel's value
shared among the counties covering it by its exact covered fraction, as supply's areas are.

- The statistics' kernels against their plain-numpy references (shapely fractions of every pixel)
  on random polygons, chunks and values, from rings read in the pass and from a stored store.
- REAL data against exactextract: the demo's 49 county polygons over the MODIS 0.05° grid of
  ``tests/data/modis`` (~5.5 km pixels, counties of 14-170 of them), a people-per-pixel raster, an
  NPP raster and a factor raster on it: per county ``Σ f·v`` = exactextract's ``sum``, ``Σ f·v·a``
  and ``Σ f·a`` = exactextract's coverage × value × geodesic cell area, per (county, class)
  ``Σ f·a·factor``, within 1e-6, from a fraction-mode county store and from counties burned on
  the fly (`run`'s path).
- The user's check: 100 people/km² everywhere gives each county 100 × its polygon's area in
  fraction mode, and the pixel-centre rule's error (−13 % for 五华区) in centre mode; through
  ``carbonscape run`` on a study with ``[counties] coverage = "fraction"`` too.
"""

import subprocess
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from carbonscape import ingest, rasterize_zones, supply
from carbonscape.accumulate import Chunk, ClassIndex, Layout, RowAreas, accumulate, accumulate_numpy
from carbonscape.continuous import FACTOR_AREAS, VALUES, ingest_continuous, open_continuous, value_specs
from carbonscape.demo import demo_paths
from carbonscape.grid import Grid
from carbonscape.kernels.cells import N_VALID, SUM_A, SUM_V, SUM_VA
from carbonscape.rasterize import COUNTY_RINGS, lazy_zones, open_zones, window_rings
from conftest import CARBONSCAPE, write_pools
from exactextract import exact_extract
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import CRS, Geod

MODIS = Path(__file__).parent / "data" / "modis" / "mcd12c1_2019_central_yunnan.tif"
IGBP = {code: float(10 * code) for code in range(17)}  # t/ha per class: the areas are tested, not these


# ---- kernels against their plain references -------------------------------------------------------

def _disjoint(geoms):
    """Each polygon minus the ones before it (counties do not overlap)."""
    out = []
    for g in geoms:
        for before in out:
            g = shapely.difference(g, before)
        parts = [p for p in shapely.get_parts(g) if shapely.get_type_id(p) == 3 and not p.is_empty]
        if parts:
            out.append(shapely.MultiPolygon(parts) if len(parts) > 1 else parts[0])
    return out


@st.composite
def cases(draw):
    rows, cols = draw(st.integers(2, 18)), draw(st.integers(2, 20))
    n = draw(st.integers(1, 4))
    geoms = []
    for _ in range(n):
        cx, cy = draw(st.floats(-1, cols + 1)), draw(st.floats(-1, rows + 1))
        radius = draw(st.floats(0.6, max(rows, cols)))
        k = draw(st.integers(3, 7))
        angles = np.sort(np.array(draw(st.lists(st.floats(0, 2 * np.pi), min_size=k, max_size=k, unique=True))))
        geoms.append(shapely.Polygon(np.column_stack([cx + radius * np.cos(angles), cy + radius * np.sin(angles)])).buffer(0))
    seed = draw(st.integers(0, 2**31 - 1))
    kind = draw(st.sampled_from(["projected", "geographic"]))
    return geoms, (rows, cols), seed, kind


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_values_and_factor_areas_share_boundary_pixels_as_their_references(case):
    """VALUES and FACTOR_AREAS from rings read in the pass (``boundary_rings``) against their
    references (shapely's covered fraction of every pixel and county), NaN and nodata values
    included; and the sums of every pixel conserved (each pixel's weight lands once in all)."""
    geoms, shape, seed, kind = case
    rows, cols = shape
    # Rings clipped to the chunk with a one-pixel margin, as the pass clips them.
    geoms = _disjoint([g for g in shapely.clip_by_rect(np.asarray(geoms, dtype=object), -1, -1, cols + 1, rows + 1) if g.is_valid and not g.is_empty])
    if not geoms:
        return
    rng = np.random.default_rng(seed)
    values = rng.uniform(0, 50, shape).astype(np.float32)
    values[rng.random(shape) < 0.15] = np.nan
    values[rng.random(shape) < 0.1] = -9.0  # nodata
    factor = rng.uniform(0.5, 2.0, shape).astype(np.float32)
    factor[rng.random(shape) < 0.2] = np.nan
    codes = rng.choice(np.array([1, 2, 3, 9], dtype=np.uint8), size=shape)
    # Pixel units, y = row (the transform burn and rings use: x = column, y = row).
    transform = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    rings = window_rings(np.asarray(geoms, dtype=object), np.arange(1, len(geoms) + 1), transform)
    centres = shapely.points(np.column_stack([(np.indices(shape)[1] + 0.5).ravel(), (np.indices(shape)[0] + 0.5).ravel()]))
    ids = np.zeros(rows * cols, dtype=np.uint8)
    for k, g in enumerate(geoms, start=1):
        ids[shapely.contains(g, centres)] = k
    ids = ids.reshape(shape)
    grid = Grid(crs_wkt=CRS.from_epsg(4326 if kind == "geographic" else 32648).to_wkt(),
                transform=(0.01, 0.0, 100.0, 0.0, -0.01, 40.0) if kind == "geographic" else (30.0, 0.0, 5e5, 0.0, -30.0, 3e6), shape=shape)
    layout = Layout(n_counties=len(geoms) + 1, classes=ClassIndex.build([1, 2, 3], nodata=9),
                    params={"boundary_rings": COUNTY_RINGS, "values_nodata": -9.0})
    where = Chunk(layout=layout, rows=slice(0, rows), cols=slice(0, cols), areas=RowAreas(grid))
    blocks = {"counties": ids, "values": values, "landuse": codes, "factor": factor, COUNTY_RINGS: rings}
    for spec in (VALUES, FACTOR_AREAS):
        got = spec.chunk(blocks, where)
        want = spec.reference(blocks, where)
        scale = float(np.max(np.abs(want), initial=1.0))
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9 * scale)
    # Conservation: the shared sums over all ids equal the plain sums over the pixels.
    got = VALUES.chunk(blocks, where)
    centre = VALUES.chunk(blocks, Chunk(layout=Layout(n_counties=layout.n_counties, classes=layout.classes, params={"values_nodata": -9.0}),
                                        rows=where.rows, cols=where.cols, areas=where.areas))
    np.testing.assert_allclose(got.sum(axis=0), centre.sum(axis=0), rtol=1e-12)
    np.testing.assert_array_equal(got[:, N_VALID], centre[:, N_VALID])  # valued pixels: counted by the pixel-centre rule


GRIDS = {
    "mercator": ("EPSG:3857", (250.0, 0.0, 11_000_000.0, 0.0, -250.0, 3_000_000.0)),
    "utm_off_zone": ("EPSG:32648", (500.0, 0.0, 1_500_000.0, 0.0, -500.0, 3_000_000.0)),
    "lonlat": ("EPSG:4326", (0.01, 0.0, 100.0, 0.0, -0.01, 30.0)),
}


@pytest.mark.parametrize("name", sorted(GRIDS))
def test_dask_pass_over_a_fraction_store_equals_the_references(tmp_path, name):
    """VALUES and FACTOR_AREAS over a fraction-mode county store (its per-chunk rings) in 32²
    chunks, through dask, against their references over the whole raster (the store's boundary
    entries gathered whatever the chunking), on grids whose areas vary by row, both ways, and
    lon/lat; and in centre mode the same statistics give each pixel to its centre's county."""
    import dask
    from affine import Affine
    from carbonscape.io import open_store
    from conftest import write_tif, write_vector

    crs, gt = GRIDS[name]
    transform = Affine(gt[0], gt[1], gt[2], gt[3], gt[4], gt[5])
    rng = np.random.default_rng(7)
    shape = (70, 90)
    codes = rng.choice(np.array([1, 2, 3, 255], dtype=np.uint8), size=shape, p=[0.4, 0.3, 0.2, 0.1])
    lu = ingest(write_tif(tmp_path / "lu.tif", codes, transform=transform, crs=crs, nodata=255), tmp_path / "lu.zarr", chunk=32,
                scheduler="synchronous")
    x0, y0 = transform * (0, 0)
    x1, y1 = transform * (90, 70)
    p = lambda fx, fy: (x0 + fx * (x1 - x0), y0 + fy * (y1 - y0))  # noqa: E731
    polys = [shapely.Polygon([p(0.02, 0.03), p(0.37, 0), p(0.29, 1), p(0, 0.93)]),
             shapely.Polygon([p(0.37, 0), p(0.71, 0), p(0.66, 1), p(0.29, 1)]),
             shapely.Polygon([p(0.71, 0), p(1.2, 0), p(1.2, 0.8), p(0.66, 1)])]
    vector = write_vector(tmp_path / "c.gpkg", polys, ["A", "B", "C"], crs=crs)
    land = open_store(lu)
    values = rng.uniform(0, 10, shape)
    values[rng.random(shape) < 0.1] = np.nan
    factor = rng.uniform(0.5, 1.5, shape).astype(np.float32)
    factor[rng.random(shape) < 0.1] = np.nan
    lazy_rasters = {"landuse": land.data, "values": land.data.map_blocks(lambda b, block_info=None: values[
        tuple(slice(*r) for r in block_info[0]["array-location"])], dtype=np.float64), "factor": land.data.map_blocks(
        lambda b, block_info=None: factor[tuple(slice(*r) for r in block_info[0]["array-location"])], dtype=np.float32)}
    specs = [VALUES, FACTOR_AREAS]
    for coverage in ("fraction", "centre"):
        zones = rasterize_zones(vector, like=lu, id_field="county", out=tmp_path / f"z{coverage}.zarr", coverage=coverage, scheduler="synchronous")
        zone_store, table = open_zones(zones)
        layout = Layout(n_counties=table.n_zones, classes=ClassIndex.build((1, 2, 3), nodata=255),
                        params={"boundary": str(zone_store.path)} if coverage == "fraction" else {})
        got = dict(zip(["values", "factor_areas"],
                       dask.compute(*accumulate(specs, zone_store.data, lazy_rasters, layout=layout, areas=land.grid).values(), scheduler="synchronous")))
        want = accumulate_numpy(specs, np.asarray(zone_store.data), {"landuse": codes, "values": values, "factor": factor}, layout=layout,
                                areas=land.grid)
        for key in got:
            np.testing.assert_allclose(got[key], want[key], rtol=1e-9, atol=1e-6)
        if coverage == "fraction":
            shared = got
            # A store written before rings were kept (per-chunk boundary tables): the same sums.
            from carbonscape.rasterize import boundary_file, read_boundary, rings_file

            for location, (r, c) in zone_store.grid.chunk_windows():
                np.save(boundary_file(zones, location), read_boundary(zones, location, (r.stop - r.start, c.stop - c.start)), allow_pickle=False)
                rings_file(zones, location).unlink()
            older = dask.compute(*accumulate(specs, zone_store.data, lazy_rasters, layout=layout, areas=land.grid).values(), scheduler="synchronous")
            for key, table in zip(got, older):
                np.testing.assert_allclose(table, got[key], rtol=1e-12, atol=1e-9)
        else:
            assert not np.allclose(shared["values"][:, SUM_VA], got["values"][:, SUM_VA], rtol=1e-3)
            np.testing.assert_allclose(shared["values"].sum(axis=0), got["values"].sum(axis=0), rtol=1e-12)  # nothing lost or made


# ---- real data: MODIS grid, the demo's counties, exactextract ------------------------------------

@pytest.fixture(scope="module")
def modis(tmp_path_factory):
    """The MODIS land use ingested in 32² chunks (boundaries across chunk edges), a people-per-pixel
    raster (a smooth field with nodata holes), an NPP raster and a factor raster on its grid, and
    the geodesic area of each row's cell on the raster's own ellipsoid (Clarke 1866)."""
    base = tmp_path_factory.mktemp("modis_continuous")
    lu = ingest(MODIS, base / "lu.zarr", chunk=32, scheduler="synchronous")
    with rasterio.open(MODIS) as src:
        profile, transform, height, width, codes = src.profile, src.transform, src.height, src.width, src.read(1)
        crs = CRS.from_user_input(src.crs)
    r, c = np.indices((height, width))
    people = (2000 + 1500 * np.sin(r / 7.0) * np.cos(c / 5.0)).astype(np.float32)
    people[(r * 7 + c * 3) % 41 == 0] = np.nan
    npp = (300 + 200 * np.cos((r + c) / 9.0)).astype(np.float32)
    npp[(r * 5 + c) % 37 == 0] = np.nan
    factor = (1 + 0.5 * np.sin(c / 4.0)).astype(np.float32)
    tifs = {}
    for name, array in (("people", people), ("npp", npp), ("factor", factor)):
        tifs[name] = base / f"{name}.tif"
        with rasterio.open(tifs[name], "w", **{**profile, "dtype": "float32", "nodata": np.nan}) as dst:
            dst.write(array, 1)
    stores = {name: ingest_continuous(tifs[name], base / f"{name}.zarr", like=lu, quantity="count" if name == "people" else "density",
                                      scheduler="synchronous") for name in tifs}
    geod = Geod(a=crs.ellipsoid.semi_major_metre, rf=crs.ellipsoid.inverse_flattening)
    along = np.linspace(0.0, transform.a, 200)
    row_m2 = np.array([abs(geod.polygon_area_perimeter(
        np.concatenate([along, along[::-1]]),
        np.concatenate([np.full(200, transform.f + transform.e * (k + 1)), np.full(200, transform.f + transform.e * k)]))[0])
        for k in range(height)])
    counties = gpd.read_file(demo_paths()["counties"]).to_crs(crs)
    return dict(base=base, lu=lu, tifs=tifs, stores=stores, row_m2=row_m2, width=width, codes=codes.ravel(), counties=counties,
                pools=write_pools(base / "pools.csv", [(code, d, 0.0, 0.0, 0.0) for code, d in IGBP.items()]))


def _oracle(m, name):
    """exactextract per county: ``sum`` (Σ f·v), and from its cells Σ f·v·a, Σ f·a (valued cells)
    and per (county, class) Σ f·a·v, ``a`` the cell's geodesic area."""
    frame = exact_extract(str(m["tifs"][name]), m["counties"], ["sum", "cell_id", "coverage", "values"], include_cols=["county"],
                          output="pandas").set_index("county")
    va, a, by_class = {}, {}, {}
    for county, row in frame.iterrows():
        cells, cover, values = np.asarray(row["cell_id"]), np.asarray(row["coverage"]), np.asarray(row["values"], dtype=np.float64)
        keep = np.isfinite(values)
        m2 = cover[keep] * m["row_m2"][cells[keep] // m["width"]]
        va[county], a[county] = float((m2 * values[keep]).sum()), float(m2.sum())
        classes = m["codes"][cells[keep]]
        for code in np.unique(classes):
            by_class[(county, int(code))] = float((m2 * values[keep])[classes == code].sum())
    return frame["sum"], pd.Series(va), pd.Series(a), pd.Series(by_class)


@pytest.fixture(scope="module")
def passes(modis):
    """The supply pass with the three rasters' statistics, from a fraction-mode county store and
    from counties burned on the fly (lazy_zones: `run`'s path), and in centre mode."""
    m = modis
    specs = value_specs("people") + value_specs("npp") + value_specs("factor", factor=True)
    rasters = {name: open_continuous(store).data for name, store in m["stores"].items()}
    counties = demo_paths()["counties"]
    out = {}
    for label, zones in (
        ("store", rasterize_zones(counties, like=m["lu"], id_field="county", out=m["base"] / "zf.zarr", coverage="fraction", scheduler="synchronous")),
        ("fused", lazy_zones(counties, like=m["lu"], id_field="county", coverage="fraction")),
        ("centre", rasterize_zones(counties, like=m["lu"], id_field="county", out=m["base"] / "zc.zarr", scheduler="synchronous")),
    ):
        result = supply(m["lu"], zones, m["pools"], extra=specs, rasters=rasters, scheduler="threads")
        _, table = open_zones(zones)
        keys = [str(v) for v in table.values]
        ids = list(table.ids)
        out[label] = {name: pd.DataFrame(result.tables[name][ids], index=keys) if result.tables[name].ndim == 2 else None
                      for name in ("values people", "values npp")}
        out[label]["factor_areas"] = result.tables["factor_areas factor"][ids]
        out[label]["areas"] = result.tables["areas"][ids]
        out[label]["result"] = result
    return out


@pytest.mark.parametrize("path", ["store", "fused"])
def test_population_and_npp_equal_exactextract_on_modis(modis, passes, path):
    got = passes[path]
    sums, va, a, _ = _oracle(modis, "people")
    people = got["values people"]
    # Stored as people per m² of the source pixel and summed as Σ f·d·a: exactextract's Σ f·count.
    np.testing.assert_allclose(people.loc[sums.index, SUM_VA], sums, rtol=1e-6)
    sums, va, a, _ = _oracle(modis, "npp")
    npp = got["values npp"]
    np.testing.assert_allclose(npp.loc[sums.index, SUM_V], sums, rtol=1e-6)  # Σ f·v: exactextract's sum
    np.testing.assert_allclose(npp.loc[va.index, SUM_VA], va, rtol=1e-6)  # Σ f·v·a
    np.testing.assert_allclose(npp.loc[a.index, SUM_A], a, rtol=1e-6)  # Σ f·a of the valued cells


@pytest.mark.parametrize("path", ["store", "fused"])
def test_factor_areas_per_county_and_class_equal_exactextract_on_modis(modis, passes, path):
    got = passes[path]
    *_, by_class = _oracle(modis, "factor")
    index = ClassIndex.build(tuple(IGBP), nodata=255)
    keys = list(got["values people"].index)
    table = pd.Series({(county, code): got["factor_areas"][i, index.columns(np.array([code]))[0]]
                       for i, county in enumerate(keys) for code in IGBP})
    np.testing.assert_allclose(table.reindex(by_class.index), by_class, rtol=1e-6)
    rest = table.drop(index=by_class.index)  # (county, class) cells exactextract has not: rounding only
    assert rest.abs().sum() < 1e-9 * table.abs().sum()


def test_the_stored_and_fused_paths_agree_and_centre_mode_differs(passes):
    for name in ("values people", "values npp"):
        np.testing.assert_allclose(passes["fused"][name], passes["store"][name], rtol=1e-9)
        assert not np.allclose(passes["centre"][name][SUM_VA], passes["store"][name][SUM_VA], rtol=1e-3)
        np.testing.assert_array_equal(passes["centre"][name][N_VALID], passes["store"][name][N_VALID])
    np.testing.assert_allclose(passes["fused"]["factor_areas"], passes["store"]["factor_areas"], rtol=1e-9, atol=1e-3)


# ---- the user's check: a uniform density -----------------------------------------------------------

STUDY = """
[study]
name = "Uniform people on coarse pixels"

[landuse]
rasters = ["lu.tif"]
chunk = 256

[counties]
path = "{counties}"
id_field = "county"
coverage = "{coverage}"

[pools]
path = "pools.csv"

[demand]
per_capita_t = 2.0

[zoning]
method = "quantile"
k = 2
scheme = "classes"

[outputs]
maps = false
report = false

[continuous]
population = "pop.tif"
"""

PER_KM2 = 100.0


@pytest.fixture(scope="module")
def uniform(tmp_path_factory):
    """The MODIS land use re-declared on WGS 84 (the polygons' datum, so polygon areas and pixel
    areas are measured on one ellipsoid) and a people-per-pixel raster of 100 people/km²
    everywhere (100 × each pixel's true area, the engine's own area model of the grid)."""
    base = tmp_path_factory.mktemp("uniform")
    with rasterio.open(MODIS) as src:
        profile, codes = src.profile, src.read(1)
    profile = {**profile, "crs": "EPSG:4326"}
    with rasterio.open(base / "lu.tif", "w", **profile) as dst:
        dst.write(codes, 1)
    grid = Grid.from_affine(crs="EPSG:4326", transform=profile["transform"], shape=codes.shape)
    people = PER_KM2 * grid.pixel_areas_m2(slice(0, codes.shape[0]), slice(0, codes.shape[1])) / 1e6
    with rasterio.open(base / "pop.tif", "w", **{**profile, "dtype": "float64", "nodata": None}) as dst:
        dst.write(people, 1)
    write_pools(base / "pools.csv", [(code, d, 0.0, 0.0, 0.0) for code, d in IGBP.items()])
    return base


def _run_study(base: Path, coverage: str) -> tuple[pd.DataFrame, str]:
    folder = base / coverage
    folder.mkdir()
    for name in ("lu.tif", "pop.tif", "pools.csv"):
        (folder / name).symlink_to(base / name)
    (folder / "study.toml").write_text(STUDY.format(counties=Path(demo_paths()["counties"]).as_posix(), coverage=coverage), encoding="utf-8")
    done = subprocess.run([str(CARBONSCAPE), "run", str(folder / "study.toml"), "--scheduler", "synchronous", "--out", str(folder / "out")],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    demand = pd.read_csv(folder / "out" / "demand_by_county.csv").set_index("county")
    supply_table = pd.read_csv(folder / "out" / "supply_by_county.csv").set_index("county")
    return pd.DataFrame({"population": demand["population"], "polygon_km2": supply_table["polygon_area_km2"],
                         "area_km2": supply_table["area_km2"]}), done.stderr


def test_uniform_density_gives_density_times_polygon_area_through_run_in_fraction_mode(uniform):
    """The user's check: 100 people/km² on 0.05° pixels. Fraction mode: every county's people =
    100 × its polygon's area (the rest is the polygons' straight lon/lat edges against geodesic
    pixel areas), as its supply area matches the polygon; centre mode keeps the pixel-centre
    rule's error (五华区 −13.1 %, 西山区 +9.1 %, what the user measured)."""
    fraction, _ = _run_study(uniform, "fraction")
    error = fraction["population"] / (PER_KM2 * fraction["polygon_km2"]) - 1
    assert len(error) == 49 and error.abs().max() < 1e-4, error.abs().sort_values().tail()
    np.testing.assert_allclose(fraction["population"], PER_KM2 * fraction["area_km2"], rtol=1e-6)  # demand over the same area as supply
    centre, _ = _run_study(uniform, "centre")
    error = centre["population"] / (PER_KM2 * centre["polygon_km2"]) - 1
    assert error["五华区"] == pytest.approx(-0.131, abs=0.002) and error["西山区"] == pytest.approx(0.091, abs=0.002)
    assert error.abs().max() > 0.05


def test_a_county_store_rewritten_between_passes_is_read_afresh(tmp_path):
    """A chunk's boundary entries are kept for the other statistics of the same task only: a
    fraction store rewritten at the same path (other counties) gives the new counties' sums in
    the next pass, every chunk (the last chunk of a pass is the one a stale entry would hit)."""
    import dask
    from carbonscape.io import open_store
    from conftest import write_tif, write_vector
    from rasterio.transform import from_origin

    transform = from_origin(500_000, 2_800_000, 100, 100)
    codes = np.ones((40, 50), dtype=np.uint8)
    lu = ingest(write_tif(tmp_path / "lu.tif", codes, transform=transform, nodata=255), tmp_path / "lu.zarr", chunk=16, scheduler="synchronous")
    values = np.linspace(1, 2, codes.size).reshape(codes.shape)

    land = open_store(lu)
    lazy_values = land.data.map_blocks(lambda b, block_info=None: values[tuple(slice(*r) for r in block_info[0]["array-location"])], dtype=np.float64)
    x0, y1 = 500_000, 2_800_000
    for split in (0.37, 0.61):
        polys = [shapely.Polygon([(x0, y1), (x0 + 5000 * split, y1), (x0 + 5000 * split * 0.8, y1 - 4000), (x0, y1 - 4000)]),
                 shapely.Polygon([(x0 + 5000 * split, y1), (x0 + 5000, y1), (x0 + 5000, y1 - 4000), (x0 + 5000 * split * 0.8, y1 - 4000)])]
        vector = write_vector(tmp_path / f"c{split}.gpkg", polys, ["A", "B"])
        zones = rasterize_zones(vector, like=lu, id_field="county", out=tmp_path / "z.zarr", coverage="fraction", force=True, scheduler="synchronous")
        zone_store, table = open_zones(zones)
        layout = Layout(n_counties=table.n_zones, classes=ClassIndex.build((1,), nodata=255), params={"boundary": str(zone_store.path)})
        # One chunk's task as the pass runs it, first and last (so the first of the rewritten
        # store's comes right after the same chunk of the former store's), and a whole pass.
        where = Chunk(layout=layout, rows=slice(0, 16), cols=slice(16, 32), location=(0, 1), areas=land.grid)
        blocks = {"counties": np.asarray(zone_store.data[0:16, 16:32]), "values": values[0:16, 16:32]}
        np.testing.assert_allclose(VALUES.chunk(blocks, where), VALUES.reference(blocks, where), rtol=1e-12, atol=1e-6)
        got = dask.compute(*accumulate([VALUES], zone_store.data, {"values": lazy_values}, layout=layout, areas=land.grid).values(),
                           scheduler="synchronous")[0]
        want = accumulate_numpy([VALUES], np.asarray(zone_store.data), {"values": values}, layout=layout, areas=land.grid)["values"]
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-6)
        np.testing.assert_allclose(VALUES.chunk(blocks, where), VALUES.reference(blocks, where), rtol=1e-12, atol=1e-6)
