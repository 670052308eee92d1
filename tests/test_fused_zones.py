"""`run` burns the counties' ids inside the supply pass (no zone store) and must give exactly what
the stored-zones path gives: the same bytes in every table, on a multi-chunk raster, on a real
LocalCluster."""

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from carbonscape import ingest, rasterize_zones, run_study, supply
from carbonscape.accumulate import COUNTS, ClassIndex, Layout, accumulate
from carbonscape.carbon import read_pools
from carbonscape.cluster import executor
from carbonscape.io import open_store
from carbonscape.rasterize import lazy_zones, open_zones
from carbonscape.study import pipeline
from carbonscape.synthetic import make_region
from conftest import REGION_INPUTS, demand_zoning

STUDY = """
[study]
name = "Fused zones"
year = 2020
""" + REGION_INPUTS + """""" + demand_zoning(6.9) + """
[outputs]
maps = false
report = false
"""

TABLES = ("supply_by_county", "supply_by_class", "supply_by_county_class", "supply_by_pool", "demand_by_county", "ratio_zones")


@pytest.fixture(scope="module")
def study_dir(small_study):
    # 700 × 600 pixels in 256² chunks: 3 × 3 chunks, counties crossing chunk edges, some nodata.
    return small_study("fused", STUDY, shape=(700, 600), n_counties=11, seed=5, population=lambda n: np.arange(1, n + 1) * 7_000).base


def test_a_plain_run_writes_no_zone_store_and_equals_the_stored_path(study_dir, monkeypatch):
    fused = run_study(study_dir / "study.toml", out=study_dir / "fused")  # a LocalCluster, as `carbonscape run`
    assert (study_dir / "fused" / "stores" / "landuse.zarr").is_dir()
    assert not (study_dir / "fused" / "stores" / "zones.zarr").exists(), "a plain run must not write the county-id store"
    monkeypatch.setattr(pipeline, "_needs_zone_store", lambda study: True)
    stored = run_study(study_dir / "study.toml", out=study_dir / "stored")
    assert (study_dir / "stored" / "stores" / "zones.zarr").is_dir()
    for table in TABLES:
        assert (study_dir / "fused" / f"{table}.csv").read_bytes() == (study_dir / "stored" / f"{table}.csv").read_bytes(), table
    # Coverage columns (centre mode) ride through as the store's zone table gave them.
    for column in ("covered_share", "nodata_share", "outside_share"):
        assert column in fused.ratio_zones.columns
        np.testing.assert_array_equal(fused.ratio_zones[column].to_numpy(), stored.ratio_zones[column].to_numpy())
    assert fused.totals == stored.totals


def test_supply_takes_counties_burned_on_the_fly(study_dir, tmp_path):
    region = study_dir / "region"
    with executor(None) as run:  # a LocalCluster
        landuse = ingest([region / "landuse.tif"], tmp_path / "landuse.zarr", chunk=256, run=run)
        store = rasterize_zones(region / "counties.gpkg", like=landuse, id_field="county", out=tmp_path / "zones.zarr", run=run)
        lazy = lazy_zones(region / "counties.gpkg", like=landuse, id_field="county")
        assert open_zones(lazy)[1] == open_zones(store)[1]  # the same id ↔ county table, areas included
        assert lazy.data.chunks == open_store(landuse).data.chunks and len(lazy.data.chunks[0]) > 1
        np.testing.assert_array_equal(np.asarray(lazy.data), np.asarray(open_zones(store)[0].data))
        from_store = supply(landuse, store, region / "pools.csv", out=tmp_path / "from_store", run=run)
        on_the_fly = supply(landuse, lazy, region / "pools.csv", out=tmp_path / "on_the_fly", run=run)
    for table in ("supply_by_county", "supply_by_class", "supply_by_county_class", "supply_by_pool"):
        assert (tmp_path / "from_store" / f"{table}.csv").read_bytes() == (tmp_path / "on_the_fly" / f"{table}.csv").read_bytes(), table
    assert from_store.summary["pixels_in_counties"] == on_the_fly.summary["pixels_in_counties"] > 0


def test_the_pass_runs_chunk_reads_inside_its_own_tasks(study_dir, tmp_path):
    region = study_dir / "region"
    landuse = ingest([region / "landuse.tif"], tmp_path / "landuse.zarr", chunk=256, scheduler="threads")
    land = open_store(landuse)
    lazy = lazy_zones(region / "counties.gpkg", like=landuse, id_field="county")
    n = len(lazy.attrs["ids"]) + 1
    layout = Layout(n_counties=n, classes=ClassIndex.build(read_pools(region / "pools.csv").codes, nodata=land.nodata))
    inlined = accumulate([COUNTS], lazy.data, {"landuse": land.data}, layout=layout)["counts"]
    apart = accumulate([COUNTS], lazy.data, {"landuse": land.data}, layout=layout, inline=False)["counts"]
    chunks = len(land.data.chunks[0]) * len(land.data.chunks[1])
    # Apart, every chunk position has a read and a burn task beside the counting one; inlined, none.
    assert len(dict(apart.__dask_graph__())) - len(dict(inlined.__dask_graph__())) == 2 * chunks
    np.testing.assert_array_equal(inlined.compute(scheduler="threads"), apart.compute(scheduler="threads"))


def test_geodesic_areas_are_the_same_in_batches_and_on_two_cores():
    import shapely
    from carbonscape.rasterize import geodesic_areas_km2
    from pyproj import Geod

    # Projected polygons (densified before measuring), one with a hole and one in two parts.
    square = shapely.box(500_000, 3_000_000, 560_000, 3_050_000)
    holed = shapely.Polygon(square.exterior.coords, [shapely.box(510_000, 3_010_000, 520_000, 3_020_000).exterior.coords])
    parts = shapely.MultiPolygon([shapely.box(600_000, 3_000_000, 620_000, 3_010_000), shapely.box(630_000, 3_000_000, 640_000, 3_030_000)])
    polygons = [shapely.affinity.translate(g, xoff=dx) for dx in (0, 200_000, 400_000) for g in (square, holed, parts)]
    gdf = gpd.GeoDataFrame({"county": range(len(polygons))}, geometry=polygons, crs="EPSG:32647")
    whole = geodesic_areas_km2(gdf, batch_points=10**9, parallel_points=float("inf"))  # one batch, one core
    for batch in (1, 5_000, 20_000):
        np.testing.assert_array_equal(geodesic_areas_km2(gdf, batch_points=batch, parallel_points=float("inf")), whole)
        np.testing.assert_array_equal(geodesic_areas_km2(gdf, batch_points=batch, parallel_points=0), whole)  # helper process
    # The hole counts negative, the parts add up: against pyproj on the densified lon/lat rings.
    geod = Geod(ellps="WGS84")
    lonlat = gpd.GeoSeries([shapely.segmentize(holed, 10.0)], crs="EPSG:32647").to_crs("EPSG:4326").iloc[0]
    expected = abs(geod.geometry_area_perimeter(shapely.orient_polygons(lonlat))[0]) / 1e6
    assert whole[1] == pytest.approx(expected, rel=1e-9)
    assert whole[1] == pytest.approx(whole[0] - 100.0, rel=1e-3)


FRACTION_TABLES = ("supply_by_county", "supply_by_class", "supply_by_county_class", "supply_by_pool", "ratio_zones")


def test_a_fraction_run_writes_no_zone_store_and_equals_the_stored_path(study_dir, monkeypatch):
    toml = study_dir / "fraction.toml"
    toml.write_text(STUDY.replace('id_field = "county"', 'id_field = "county"\ncoverage = "fraction"'), encoding="utf-8")
    fused = run_study(toml, out=study_dir / "fraction-fused")  # a LocalCluster, as `carbonscape run`
    assert not (study_dir / "fraction-fused" / "stores" / "zones.zarr").exists(), "a fraction run must not write the county-id store"
    monkeypatch.setattr(pipeline, "_needs_zone_store", lambda study: True)
    stored = run_study(toml, out=study_dir / "fraction-stored")
    assert (study_dir / "fraction-stored" / "stores" / "zones.zarr" / "boundary").is_dir()
    for table in FRACTION_TABLES:
        assert (study_dir / "fraction-fused" / f"{table}.csv").read_bytes() == (study_dir / "fraction-stored" / f"{table}.csv").read_bytes(), table
    assert fused.totals == stored.totals
    # Fraction mode really shared the boundary pixels: areas are not whole pixels any more.
    by_class = pd.read_csv(study_dir / "fraction-fused" / "supply_by_county_class.csv")
    area = next(c for c in by_class.columns if c.startswith("area"))
    pixel_km2 = 30.0 * 30.0 / 1e6
    assert not np.allclose(by_class[area] / pixel_km2, np.rint(by_class[area] / pixel_km2))


@pytest.mark.parametrize("crs", ["EPSG:32647", "EPSG:3857"])
def test_fraction_supply_takes_counties_and_rings_made_on_the_fly(tmp_path, crs):
    """The rings clipped in the pass's task equal the store's, on a UTM grid (one nominal area for
    every pixel) and on Web Mercator (true areas from the area lattice): the same bytes in every table."""
    region = make_region(tmp_path / "region", shape=(600, 520), n_counties=9, seed=11, crs=crs)
    with executor(None) as run:  # a LocalCluster
        landuse = ingest([region.landuse], tmp_path / "landuse.zarr", chunk=200, run=run)
        store = rasterize_zones(region.counties, like=landuse, id_field="county", out=tmp_path / "zones.zarr", run=run, coverage="fraction")
        lazy = lazy_zones(region.counties, like=landuse, id_field="county", coverage="fraction")
        assert open_zones(lazy)[1] == open_zones(store)[1]
        assert len(lazy.data.chunks[0]) > 1 and len(lazy.data.chunks[1]) > 1
        from_store = supply(landuse, store, region.pools, out=tmp_path / "from_store", run=run)
        on_the_fly = supply(landuse, lazy, region.pools, out=tmp_path / "on_the_fly", run=run)
        centre = supply(landuse, lazy_zones(region.counties, like=landuse, id_field="county"), region.pools, run=run)
    for table in ("supply_by_county", "supply_by_class", "supply_by_county_class", "supply_by_pool"):
        assert (tmp_path / "from_store" / f"{table}.csv").read_bytes() == (tmp_path / "on_the_fly" / f"{table}.csv").read_bytes(), table
    assert on_the_fly.summary["coverage"]["mode"] == "fraction" and centre.summary["coverage"]["mode"] == "centre"
    assert not on_the_fly.by_county["area_km2"].equals(centre.by_county["area_km2"])  # the pixels were shared


def test_the_rings_made_on_the_fly_are_the_stored_ones(study_dir, tmp_path):
    from carbonscape.rasterize import COUNTY_RINGS, read_rings

    region = study_dir / "region"
    landuse = ingest([region / "landuse.tif"], tmp_path / "landuse.zarr", chunk=256, scheduler="threads")
    store = rasterize_zones(region / "counties.gpkg", like=landuse, id_field="county", out=tmp_path / "zones.zarr",
                            coverage="fraction", scheduler="threads")
    rings = lazy_zones(region / "counties.gpkg", like=landuse, id_field="county", coverage="fraction").attrs[COUNTY_RINGS]
    graph = dict(rings.__dask_graph__())
    for i in range(len(rings.chunks[0])):
        for j in range(len(rings.chunks[1])):
            task = graph[(rings.name, i, j)]
            made, kept = task[0](*task[1:]), read_rings(store, (i, j))
            for field in ("xs", "ys", "ring_starts", "polygon_starts", "counties"):
                np.testing.assert_array_equal(getattr(made, field), getattr(kept, field), err_msg=f"{field} of chunk {(i, j)}")
