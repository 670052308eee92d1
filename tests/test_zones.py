import numpy as np
import pytest
import rasterio.features
import shapely
from carbonscape import ZoneError, ingest, open_store, open_zones, rasterize_zones
from carbonscape.errors import InputError
from conftest import pixel_box, write_tif, write_vector
from rasterio.transform import from_origin


@pytest.fixture
def landuse_3x3(tmp):
    src = write_tif(tmp / "lu.tif", np.ones((3, 3), dtype=np.uint8))
    return ingest(src, tmp / "lu.zarr", chunk=16, scheduler="synchronous")


def test_two_rectangles_by_pixel_centre(tmp, landuse_3x3):
    # A covers the centres of rows 0-1 × cols 0-1; B the centres of column 2.
    vector = write_vector(tmp / "c.gpkg", [pixel_box(0.2, 0.2, 1.8, 1.8), pixel_box(2.2, 0, 3, 3)], ["A", "B"])
    store = rasterize_zones(vector, like=landuse_3x3, id_field="county", out=tmp / "z.zarr", scheduler="synchronous")
    zones, table = open_zones(store)
    np.testing.assert_array_equal(zones.data.compute(), [[1, 1, 2], [1, 1, 2], [0, 0, 2]])
    assert table.values == ("A", "B") and table.ids == (1, 2)
    assert zones.grid.same_grid(open_store(landuse_3x3).grid)


def test_chunked_burn_equals_whole_raster_burn_after_reprojection(tmp):
    rows, cols = 70, 90
    src = write_tif(tmp / "lu.tif", np.ones((rows, cols), dtype=np.uint8))
    store = ingest(src, tmp / "lu.zarr", chunk=16, scheduler="synchronous")
    rng = np.random.default_rng(3)
    pts = shapely.points(rng.uniform(500_000, 500_000 + cols * 100, 12), rng.uniform(2_800_000 - rows * 100, 2_800_000, 12))
    frame = shapely.box(500_300, 2_800_000 - rows * 100 + 300, 500_000 + cols * 100 - 300, 2_799_700)
    cells = shapely.intersection(shapely.get_parts(shapely.voronoi_polygons(shapely.MultiPoint(pts), extend_to=frame)), frame)
    import geopandas as gpd

    # Stored in lon/lat: rasterize_zones must reproject to the grid's UTM.
    gdf = gpd.GeoDataFrame({"name": [f"z{i}" for i in range(len(cells))]}, geometry=cells, crs="EPSG:32648").to_crs("EPSG:4326")
    gdf.to_file(tmp / "v.gpkg")
    out = rasterize_zones(tmp / "v.gpkg", like=store, id_field="name", out=tmp / "z.zarr", scheduler="threads")
    utm = gdf.to_crs("EPSG:32648")
    expected = rasterio.features.rasterize(
        zip(utm.geometry, range(1, len(utm) + 1)), out_shape=(rows, cols), transform=from_origin(500_000, 2_800_000, 100, 100), dtype="uint8"
    )
    np.testing.assert_array_equal(open_zones(out)[0].data.compute(), expected)


def test_overlapping_polygons_name_the_pair(tmp, landuse_3x3):
    vector = write_vector(tmp / "o.gpkg", [pixel_box(0, 0, 2, 2), pixel_box(1, 1, 3, 3)], ["north", "south"])
    with pytest.raises(ZoneError, match="north and south \\(1 pixels\\)"):
        rasterize_zones(vector, like=landuse_3x3, id_field="county", out=tmp / "z.zarr", scheduler="synchronous")
    assert not (tmp / "z.zarr").exists()


def test_overlaps_are_judged_by_pixel_centres(tmp, landuse_3x3):
    # 0.2 px² of overlap around the centre of pixel (1, 1): that pixel would be in both counties.
    tiny = write_vector(tmp / "t.gpkg", [pixel_box(0, 0, 1.7, 3), pixel_box(1.3, 1.3, 3, 1.8)], ["west", "east"])
    with pytest.raises(ZoneError, match="west and east \\(1 pixels\\)"):
        rasterize_zones(tiny, like=landuse_3x3, id_field="county", out=tmp / "z.zarr", scheduler="synchronous")
    # 0.6 px² of overlap along a border, between rows of centres: no pixel is burned twice.
    sliver = write_vector(tmp / "s.gpkg", [pixel_box(0, 0, 3, 1.1), pixel_box(0, 0.9, 3, 3)], ["top", "rest"])
    store = rasterize_zones(sliver, like=landuse_3x3, id_field="county", out=tmp / "z.zarr", scheduler="synchronous")
    np.testing.assert_array_equal(open_zones(store)[0].data.compute(), [[1, 1, 1], [2, 2, 2], [2, 2, 2]])


def test_fraction_mode_judges_overlaps_by_area(tmp, landuse_3x3):
    """Fraction mode shares pixels by area: an overlap with area holding no pixel centre is refused
    too, a digitising sliver (≤ 0.5 px² and ≤ 1 % of the smaller county, or ≤ 0.01 % of it) along a
    shared border passes, as does a shared border."""
    from carbonscape.rasterize import lazy_zones

    sliver = write_vector(tmp / "s.gpkg", [pixel_box(0, 0, 3, 1.1), pixel_box(0, 0.9, 3, 3)], ["top", "rest"])  # 0.6 px², no centre
    with pytest.raises(ZoneError, match="top and rest \\(0.6 pixels of area, 18.2 % of the smaller\\)"):
        lazy_zones(sliver, like=landuse_3x3, id_field="county", coverage="fraction")
    hair = write_vector(tmp / "h.gpkg", [pixel_box(0, 0, 3, 1.001), pixel_box(0, 0.999, 3, 3)], ["top", "rest"])  # 0.006 px²
    border = write_vector(tmp / "b.gpkg", [pixel_box(0, 0, 3, 1.5), pixel_box(0, 1.5, 3, 3)], ["top", "rest"])
    thin = write_vector(tmp / "n.gpkg", [pixel_box(0, 0, 3, 1.05), pixel_box(0, 0.95, 3, 3)], ["top", "rest"])  # 0.3 px²
    # Under half a pixel but 9.5 % of the smaller county (3.15 px²): counted twice, so refused.
    with pytest.raises(ZoneError, match="top and rest \\(0.3 pixels of area, 9.52 % of the smaller\\)"):
        lazy_zones(thin, like=landuse_3x3, id_field="county", coverage="fraction")
    for vector in (hair, border):
        assert lazy_zones(vector, like=landuse_3x3, id_field="county", coverage="fraction").attrs["coverage"] == "fraction"


def test_fraction_mode_refuses_a_county_drawn_on_top_of_another_whatever_the_pixel_size(tmp, landuse_3x3):
    """A small county not cut out of the county around it (0.25 px², under the half-pixel tolerance)
    would be counted twice: refused as 100 % of the smaller; cut out, it passes."""
    from carbonscape.rasterize import lazy_zones

    outer = pixel_box(0, 0, 3, 3)
    inner = pixel_box(1.2, 1.2, 1.7, 1.7)
    nested = write_vector(tmp / "nested.gpkg", [outer, inner], ["county", "zone"])
    with pytest.raises(ZoneError, match=r"county and zone \(0.25 pixels of area, 100 % of the smaller\).*Difference"):
        lazy_zones(nested, like=landuse_3x3, id_field="county", coverage="fraction")
    cut = write_vector(tmp / "cut.gpkg", [shapely.difference(outer, inner), inner], ["county", "zone"])
    assert lazy_zones(cut, like=landuse_3x3, id_field="county", coverage="fraction").attrs["coverage"] == "fraction"


@pytest.mark.parametrize("kind", ["lines", "points"])
def test_counties_that_are_not_polygons_are_named_as_such(tmp, landuse_3x3, kind):
    """A layer of county boundary lines (or centroids) rasterizes to nothing: it is refused naming
    the geometry type (read_polygons: `zones`, `check` and `run` read counties through it), instead of being reported outside the raster."""
    box = pixel_box(0, 0, 3, 3)
    geometry = shapely.boundary(box) if kind == "lines" else shapely.centroid(box)
    vector = write_vector(tmp / f"{kind}.gpkg", [geometry, pixel_box(1, 1, 2, 2)], ["edge", "ok"])
    name = "LineString" if kind == "lines" else "Point"
    with pytest.raises(ZoneError, match=rf"1 of 2 feature\(s\) are not polygons \(edge: {name}\); counties must be polygon areas"):
        rasterize_zones(vector, like=landuse_3x3, id_field="county", out=tmp / "z.zarr", scheduler="synchronous")
    assert not (tmp / "z.zarr").exists()


def test_duplicate_ids_name_their_features(tmp, landuse_3x3):
    vector = write_vector(tmp / "d.gpkg", [pixel_box(0, 0, 1, 1), pixel_box(1, 1, 2, 2), pixel_box(2, 2, 3, 3)], ["a", "b", "a"])
    with pytest.raises(ZoneError, match=r"not unique: a in features \[0, 2\]"):
        rasterize_zones(vector, like=landuse_3x3, id_field="county", out=tmp / "z.zarr")


def test_out_never_replaces_a_folder_of_other_files(tmp, landuse_3x3):
    folder = tmp / "data"
    folder.mkdir()
    src = write_tif(folder / "lu.tif", np.ones((3, 3), dtype=np.uint8))
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="not a Zarr store; carbonscape will not replace it"):
        ingest(src, folder, chunk=16, scheduler="synchronous")
    assert sorted(p.name for p in folder.iterdir()) == ["lu.tif", "notes.txt"]
    vector = write_vector(folder / "c.gpkg", [pixel_box(0, 0, 3, 3)], ["all"])
    with pytest.raises(InputError, match="not a Zarr store"):
        rasterize_zones(vector, like=landuse_3x3, id_field="county", out=folder)
    assert (folder / "notes.txt").read_text() == "keep me"


def test_projected_coordinates_in_a_geojson_are_explained(tmp, landuse_3x3):
    import json

    # GeoJSON has no CRS member since RFC 7946: it is read as lon/lat, which UTM metres are not.
    ring = [list(c) for c in pixel_box(0, 0, 3, 3).exterior.coords]
    feature = {"type": "Feature", "properties": {"county": "A"}, "geometry": {"type": "Polygon", "coordinates": [ring]}}
    path = tmp / "utm.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    with pytest.raises(ZoneError, match="utm.geojson: the polygons cannot be reprojected .*GeoJSON is always read as lon/lat"):
        rasterize_zones(path, like=landuse_3x3, id_field="county", out=tmp / "z.zarr")


def test_id_field_missing_or_not_unique(tmp, landuse_3x3):
    vector = write_vector(tmp / "d.gpkg", [pixel_box(0, 0, 1, 1), pixel_box(1, 1, 2, 2)], ["same", "same"])
    with pytest.raises(ZoneError, match="no field 'name'.*\\['county'\\]"):
        rasterize_zones(vector, like=landuse_3x3, id_field="name", out=tmp / "z.zarr")
    with pytest.raises(ZoneError, match="not unique.*same"):
        rasterize_zones(vector, like=landuse_3x3, id_field="county", out=tmp / "z.zarr")


def test_polygons_away_from_the_raster(tmp, landuse_3x3):
    far = shapely.box(0, 0, 1000, 1000)
    vector = write_vector(tmp / "far.gpkg", [far], ["nowhere"])
    with pytest.raises(ZoneError, match="no polygon overlaps the raster"):
        rasterize_zones(vector, like=landuse_3x3, id_field="county", out=tmp / "z.zarr")


def test_missing_store_is_a_clear_error(tmp):
    vector = write_vector(tmp / "v.gpkg", [pixel_box(0, 0, 1, 1)], ["a"])
    with pytest.raises(InputError, match="no such store"):
        rasterize_zones(vector, like=tmp / "nope.zarr", id_field="county", out=tmp / "z.zarr")


def test_geodesic_areas_subtract_holes_whatever_the_winding():
    import geopandas as gpd
    from carbonscape import geodesic_areas_km2
    from pyproj import Geod

    outer = [(102.0, 25.0), (102.2, 25.0), (102.2, 25.2), (102.0, 25.2)]
    inner = [(102.05, 25.05), (102.1, 25.05), (102.1, 25.1), (102.05, 25.1)]
    geod = Geod(ellps="WGS84")
    expected = (abs(geod.polygon_area_perimeter(*zip(*outer))[0]) - abs(geod.polygon_area_perimeter(*zip(*inner))[0])) / 1e6
    for ring in (outer, outer[::-1]):
        for hole in (inner, inner[::-1]):
            gdf = gpd.GeoDataFrame(geometry=[shapely.Polygon(ring, [hole])], crs="EPSG:4326")
            assert geodesic_areas_km2(gdf)[0] == pytest.approx(expected, rel=1e-9)
    # The same polygon in a projected CRS: the area is still the ellipsoidal one.
    projected = gpd.GeoDataFrame(geometry=[shapely.Polygon(outer, [inner])], crs="EPSG:4326").to_crs("EPSG:32648")
    assert geodesic_areas_km2(projected)[0] == pytest.approx(expected, rel=1e-5)


def test_shared_borders_reprojected_to_lambert_conformal_are_not_overlaps(tmp):
    """Two counties sharing a wiggly border in lon/lat, rasterized on a Lambert conformal grid.
    East's border carries extra vertices midway along west's edges (as when counties come from
    different sources): collinear in lon/lat, not after reprojection, so the intersection becomes
    the border line plus hairline slivers. GDAL burned every pixel the line parts touch, and the
    border was reported as pixels in both counties."""
    import geopandas as gpd

    lcc = "+proj=lcc +lat_1=25 +lat_2=47 +lon_0=105 +ellps=krass +units=m +no_defs"
    transform = from_origin(-300_000, 3_000_000, 1000, 1000)
    src = write_tif(tmp / "lu.tif", np.ones((120, 150), dtype=np.uint8), transform=transform, crs=lcc)
    store = ingest(src, tmp / "lu.zarr", chunk=64, scheduler="synchronous")
    lats = np.linspace(25.2, 25.9, 40)
    border = [(103.0 + 0.05 * np.sin(9 * lat), lat) for lat in lats]  # shared vertices, north to south reversed below
    west = shapely.Polygon([(102.2, 25.2), *border, (102.2, 25.9)])
    denser = [border[0]]
    for (x0, y0), (x1, y1) in zip(border[:-1], border[1:]):
        denser += [((x0 + x1) / 2, (y0 + y1) / 2), (x1, y1)]
    east = shapely.Polygon([*denser, (103.8, 25.9), (103.8, 25.2)])
    gpd.GeoDataFrame({"county": ["west", "east"]}, geometry=[west, east], crs="EPSG:4326").to_file(tmp / "c.gpkg")
    out = rasterize_zones(tmp / "c.gpkg", like=store, id_field="county", out=tmp / "z.zarr", scheduler="synchronous")
    ids = open_zones(out)[0].data.compute()
    assert {1, 2} <= set(np.unique(ids).tolist())
    # A real overlap of a few pixels is still refused.
    east_over = shapely.Polygon([*[(x - 0.03, y) for x, y in border], (103.8, 25.9), (103.8, 25.2)])
    gpd.GeoDataFrame({"county": ["west", "east"]}, geometry=[west, east_over], crs="EPSG:4326").to_file(tmp / "o.gpkg")
    with pytest.raises(ZoneError, match="west and east"):
        rasterize_zones(tmp / "o.gpkg", like=store, id_field="county", out=tmp / "z2.zarr", scheduler="synchronous")
