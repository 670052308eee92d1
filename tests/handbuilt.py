"""A small study built by hand, and its answers computed independently of carbonscape.

The land use is a 60 × 80 raster of 100 m pixels (exactly 1 ha each of ground: the grid is equal-area,
EASE-Grid 2.0; in UTM a nominal hectare is 0.08 % short of the ground and carbonscape, measuring true
areas, would rightly not give these round numbers); the counties are
a 4 × 4 grid of 15 × 20-pixel rectangles whose edges lie on pixel edges, so which pixel belongs to
which county is known by slicing, with no rasterization rule involved. County ``P`` holds only
code 3, whose pools are all zero: a zero-supply county, whose ratio is infinite.

:func:`expected` computes every number a run reports with plain numpy/pandas from the files
themselves (the GeoTIFF, the pools CSV, the population CSV) and with the oracles DEVELOPERS.md
names: pyproj's geodesic areas and jenkspy's natural breaks. Nothing here imports carbonscape.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import jenkspy
import numpy as np
import pandas as pd
import rasterio
import shapely
from pyproj import Geod, Transformer
from rasterio.transform import from_origin

CRS = "EPSG:6933"  # EASE-Grid 2.0 (cylindrical equal-area on WGS 84)
ORIGIN = (500_000.0, 2_800_000.0)  # near 5.2° E, 22.1° N
PIXEL = 100.0  # m: one pixel is exactly one hectare
SHAPE = (60, 80)
BLOCK = (15, 20)  # county size in pixels
NODATA = 255
NAMES = [chr(ord("A") + i) for i in range(16)]  # A..P, row by row
ZERO_SUPPLY = "P"
# lucode: (c_above, c_below, c_soil, c_dead) in t/ha. Totals: 1 → 43, 2 → 100, 3 → 0, 4 → 5.5.
POOLS = {1: (10.0, 2.0, 30.0, 1.0), 2: (60.0, 15.0, 20.0, 5.0), 3: (0.0, 0.0, 0.0, 0.0), 4: (1.0, 0.5, 4.0, 0.0)}
DENSITY = {code: sum(pools) for code, pools in POOLS.items()}
TOTAL_EMISSIONS_T = 3.0e6
TOTAL_POPULATION = 1.0e6  # per capita: 3 t CO2 per person
# The paper's scheme: classes 7-5 optimization, 4 sink development, 3 coordinated, 2-1 low carbon.
PAPER_ZONES = {7: "固碳优化区", 6: "固碳优化区", 5: "固碳优化区", 4: "碳汇发展区", 3: "协调发展区", 2: "低碳保持区", 1: "低碳保持区"}

STUDY_TOML = """# A hand-built study: 16 rectangular counties on a 60 x 80 raster of 1 ha pixels.
[study]
name = "Hand-built test study"
year = 2020

[landuse]
rasters = ["landuse.tif"]
chunk = 256

[counties]
path = "counties.gpkg"
id_field = "county"

[pools]
path = "pools.csv"

[demand]
table = "population.csv"
key = "county"
population = "population"
total_emissions_t = {emissions}
total_population = {population}

[ratio]
units = "paper"

[zoning]
method = "jenks"
k = 7
scheme = "paper"

[outputs]
maps = {maps}
report = {maps}
"""


@dataclass(frozen=True)
class HandBuilt:
    folder: Path
    study: Path
    landuse: Path
    counties: Path
    pools: Path
    population: Path


def county_slices() -> dict[str, tuple[slice, slice]]:
    """The rows and columns of each county, A..P row by row."""
    rows, cols = BLOCK
    found = {}
    for i, name in enumerate(NAMES):
        r, c = divmod(i, SHAPE[1] // cols)
        found[name] = (slice(r * rows, (r + 1) * rows), slice(c * cols, (c + 1) * cols))
    return found


def make_codes(seed: int = 13) -> np.ndarray:
    """Land-use codes: each county its own mix of codes 1, 2, 4 (and 3), a few nodata pixels."""
    rng = np.random.default_rng(seed)
    codes = np.empty(SHAPE, dtype=np.uint8)
    for i, (name, (rows, cols)) in enumerate(county_slices().items()):
        if name == ZERO_SUPPLY:
            codes[rows, cols] = 3
            continue
        share = rng.dirichlet(np.full(4, 0.6 + 0.1 * i))
        codes[rows, cols] = rng.choice(np.array([1, 2, 3, 4], dtype=np.uint8), size=BLOCK, p=share)
    holes = rng.random(SHAPE) < 0.03
    codes[holes] = NODATA
    return codes


def county_polygon(rows: slice, cols: slice) -> shapely.Polygon:
    x0, y0 = ORIGIN
    return shapely.box(x0 + cols.start * PIXEL, y0 - rows.stop * PIXEL, x0 + cols.stop * PIXEL, y0 - rows.start * PIXEL)


def populations() -> dict[str, int]:
    """People per county: varied, so ratios spread over several classes."""
    rng = np.random.default_rng(7)
    return {name: int(v) for name, v in zip(NAMES, rng.integers(2_000, 120_000, size=len(NAMES)))}


def write_handbuilt(folder: Path, *, maps: bool = False, ids: list | None = None) -> HandBuilt:
    """Write the land use, counties, pools, population and study.toml into ``folder``.

    ``ids`` replaces the county names A..P (e.g. numbers, for numeric county ids)."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = list(NAMES) if ids is None else list(ids)
    codes = make_codes()
    landuse = folder / "landuse.tif"
    profile = dict(driver="GTiff", width=SHAPE[1], height=SHAPE[0], count=1, dtype="uint8", crs=CRS,
                   transform=from_origin(*ORIGIN, PIXEL, PIXEL), nodata=NODATA)
    with rasterio.open(landuse, "w", **profile) as dst:
        dst.write(codes, 1)
    polygons = [county_polygon(*s) for s in county_slices().values()]
    counties = folder / "counties.gpkg"
    gpd.GeoDataFrame({"county": ids}, geometry=polygons, crs=CRS).to_file(counties, engine="pyogrio")
    pools = folder / "pools.csv"
    pd.DataFrame([(code, f"class {code}", *values) for code, values in POOLS.items()],
                 columns=["lucode", "LULC_name", "c_above", "c_below", "c_soil", "c_dead"]).to_csv(pools, index=False)
    population = folder / "population.csv"
    pd.DataFrame({"county": ids, "population": list(populations().values())}).to_csv(population, index=False)
    study = folder / "study.toml"
    study.write_text(STUDY_TOML.format(emissions=TOTAL_EMISSIONS_T, population=TOTAL_POPULATION, maps=str(maps).lower()), encoding="utf-8")
    return HandBuilt(folder, study, landuse, counties, pools, population)


def geodesic_area_km2(polygon: shapely.Polygon, crs: str = CRS) -> float:
    """True area on WGS 84 (the CRS's ellipsoid): pyproj's Geod on the outline in lon/lat.

    The rectangle's edges are straight in the CRS (its top and bottom are parallels, not
    geodesics), so the outline is densified to 1 m first."""
    to_lonlat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    lon, lat = to_lonlat.transform(*np.asarray(shapely.segmentize(polygon, 1.0).exterior.coords).T)
    area, _ = Geod(ellps="WGS84").polygon_area_perimeter(lon, lat)
    return abs(area) / 1e6


def paper_class_of(ratio: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Class 1..k of each ratio for edges ``[min, b1, ..., max]``: class i holds (b_{i-1}, b_i],
    class 1 its lower edge too; an infinite ratio (no supply) takes the top class."""
    k = len(edges) - 1
    classes = np.searchsorted(np.asarray(edges[1:-1]), ratio, side="left") + 1
    return np.where(np.isinf(ratio), k, np.clip(classes, 1, k))


def expected(codes: np.ndarray | None = None, *, k: int = 7, ids: list | None = None) -> pd.DataFrame:
    """Every county's answer, computed from the inputs with numpy and pandas only.

    Columns: pixels (not nodata), nodata, supply_t (pixels × t/ha × 1 ha), area_km2 (geodesic),
    population, demand_t_per_km2 (per capita × population / area), ratio (demand density / supply
    density), class (jenkspy's natural breaks of the finite ratios; infinite → top class), zone.
    """
    codes = make_codes() if codes is None else codes
    ids = list(NAMES) if ids is None else list(ids)
    density = np.zeros(256)
    for code, value in DENSITY.items():
        density[code] = value
    per_capita = TOTAL_EMISSIONS_T / TOTAL_POPULATION
    people = populations()
    rows = []
    for key, (name, (r, c)) in zip(ids, county_slices().items()):
        block = codes[r, c]
        valid = block != NODATA
        area = geodesic_area_km2(county_polygon(r, c))
        supply = float(density[block[valid]].sum())  # t/ha × 1 ha per pixel
        demand = per_capita * people[name] / area
        rows.append({"county": str(key), "pixels": int(valid.sum()), "nodata": int((~valid).sum()), "supply_t": supply, "area_km2": area,
                     "population": people[name], "demand_t_per_km2": demand,
                     "ratio": demand / (supply / area) if supply > 0 else np.inf})
    frame = pd.DataFrame(rows).set_index("county")
    finite = frame["ratio"][np.isfinite(frame["ratio"])].to_numpy()
    edges = np.asarray(jenkspy.jenks_breaks(finite, n_classes=k), dtype=float)
    frame["class"] = paper_class_of(frame["ratio"].to_numpy(), edges)
    frame["zone"] = frame["class"].map(PAPER_ZONES) if k == 7 else ""
    frame.attrs["edges"] = edges
    return frame


def supply_by_class(codes: np.ndarray | None = None) -> pd.Series:
    """Supply per land-use code over all counties (t C)."""
    codes = make_codes() if codes is None else codes
    valid = codes[codes != NODATA]
    values, counts = np.unique(valid, return_counts=True)
    return pd.Series({int(v): float(n * DENSITY[int(v)]) for v, n in zip(values, counts)}, name="supply_t")
