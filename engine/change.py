"""Change between two land-use maps: transfer matrices, the carbon gained or lost through each
transition per county, InVEST's sequestration and valuation, and the land-use dynamic degree.

One pass of the accumulation layer reads both maps and the county ids chunk by chunk and counts
(county, class in the first map, class in the second) pixels and true areas
(:data:`~carbonscape.accumulate.TRANSITION_TABLES`); every table here is a finalize on that small table:
each map's supply is a margin of it, the change of a transition is its area times the difference of
the two densities, and the net present value is that change times InVEST's valuation constant.

InVEST (Carbon Storage and Sequestration, 3.20) computes the change per pixel only where both maps
hold a class: a pixel that is nodata in one map and not in the other counts in that map's total but
not in the change. Those pixels are counted per county here (``nodata_from_only_pixels``,
``nodata_to_only_pixels``) because a nodata mask that differs between years is the commonest cause
of a sequestration total that is not the difference of the two stocks.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from carbonscape.accumulate import TRANSITION_TABLES, ClassIndex, Layout, accumulate, lookup, pixel_areas
from carbonscape.carbon import (
    POOL_COLUMNS,
    M2_PER_HA,
    PoolTable,
    UnknownCodesError,
    _count_unknown,
    read_pools,
    unknown_codes_message,
)
from carbonscape.cluster import Executor, using
from carbonscape.errors import AlignmentError, InputError, PoolTableError
from carbonscape.io import RasterStore, atomic_path, open_store, staged_outputs
from carbonscape.rasterize import open_zones

log = logging.getLogger(__name__)

CHANGE_FILES = {
    "change_by_county": "change_by_county.csv",
    "transitions_by_county": "transitions_by_county.csv",
    "transitions": "transitions.csv",
    "transfer_matrix": "transfer_matrix_km2.csv",
    "dynamic_degree": "land_use_dynamic_degree.csv",
    "change_summary": "change_summary.json",
}
PIXEL_FILES = {"c_change": "c_change.tif", "npv": "npv.tif"}
# InVEST writes its carbon rasters with this nodata (stocks are never negative; changes can be, but
# InVEST keeps the value, so we do too for pixel-for-pixel parity).
INVEST_NODATA = -1.0


def valuation_constant(*, price: float, discount_rate: float, rate_change: float, years: tuple[int, int]) -> float:
    """InVEST's valuation constant: currency per t C of change between the two maps.

    ``V = price / n · Σ_{t=0}^{n-1} 1 / ((1 + r/100)^t (1 + c/100)^t)`` with ``n = year_to −
    year_from``, ``r`` the annual market discount rate (%) and ``c`` the annual change of the price
    of carbon (%): the change is spread evenly over the ``n`` years and each year's share is
    valued at that year's discounted price. The sum is taken in closed form,
    ``(1 − q^n) / (1 − q)`` with ``q = 1 / ((1 + r/100)(1 + c/100))``, and ``n`` when ``q = 1``
    (InVEST 3.20 ``carbon._calculate_valuation_constant``; the InVEST User's Guide, Carbon
    Storage and Sequestration, "Valuation"). The net present value of a pixel is its carbon
    change (t/ha) times ``V``.

    Raises :class:`InputError` unless ``year_to > year_from``.
    """
    year_from, year_to = (int(y) for y in years)
    n_years = year_to - year_from
    if n_years <= 0:
        raise InputError(
            f"the second map's year {year_to} is not after the first map's year {year_from}; valuation spreads the "
            "change over the years between the maps, so give --years BASE LATER with LATER > BASE"
        )
    ratio = 1.0 / ((1.0 + discount_rate / 100.0) * (1.0 + rate_change / 100.0))
    constant = price / n_years
    if ratio == 1.0:
        return constant * n_years
    return constant * (1.0 - ratio**n_years) / (1.0 - ratio)


@dataclass(frozen=True)
class Valuation:
    """InVEST's valuation inputs: price per t C, annual discount rate (%), annual price change (%)."""

    price: float
    discount_rate: float
    rate_change: float = 0.0

    def __post_init__(self) -> None:
        for name in ("price", "discount_rate", "rate_change"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise InputError(f"valuation {name} = {value!r} is not a number")
        if self.discount_rate <= -100 or self.rate_change <= -100:
            raise InputError(
                f"a discount rate or price change of -100 % or less ({self.discount_rate}, {self.rate_change}) has no "
                "present value; rates are percentages per year, e.g. --discount-rate 7"
            )
        if 0 < abs(self.discount_rate) < 1:  # InVEST's rates are percentages: 0.05 is 0.05 %, seldom what was meant
            log.warning("discount rate %g is read as %g %% a year (rates are percentages, as in InVEST); for %g %% give %g",
                        self.discount_rate, self.discount_rate, 100 * self.discount_rate, 100 * self.discount_rate)


@dataclass
class ChangeResult:
    """The tables of one comparison of two maps (all areas true areas, carbon in t C)."""

    by_county: pd.DataFrame
    transitions_by_county: pd.DataFrame
    transitions: pd.DataFrame
    transfer_matrix: pd.DataFrame
    dynamic_degree: pd.DataFrame
    summary: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def change_t(self) -> float:
        return float(self.by_county["change_t"].sum())

    def write(self, out: str | os.PathLike[str]) -> dict[str, Path]:
        """Write every table and ``change_summary.json`` to ``out``, each atomically."""
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        frames = {
            "change_by_county": (self.by_county, False),
            "transitions_by_county": (self.transitions_by_county, False),
            "transitions": (self.transitions, False),
            "transfer_matrix": (self.transfer_matrix, True),
            "dynamic_degree": (self.dynamic_degree, False),
        }
        for name, (frame, index) in frames.items():
            target = folder / CHANGE_FILES[name]
            with atomic_path(target) as tmp:
                frame.to_csv(tmp, index=index, encoding="utf-8", float_format="%.10g")
            self.files[name] = target
        target = folder / CHANGE_FILES["change_summary"]
        with atomic_path(target) as tmp:
            tmp.write_text(json.dumps(self.summary, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
        self.files["change_summary"] = target
        return dict(self.files)


def _open_map(path: str | os.PathLike[str], label: str) -> RasterStore:
    store = open_store(path)
    kind = store.attrs.get("carbonscape_kind")
    if kind not in (None, "landuse"):
        raise InputError(f"{label} map {store.path} is a {kind} store, not land use; pass a store `carbonscape ingest` wrote")
    return store


def _class_index(store: RasterStore, pools: PoolTable, label: str) -> ClassIndex:
    try:
        return ClassIndex.build(pools.codes, nodata=store.nodata)
    except InputError as exc:
        raise PoolTableError(f"{label} map {store.path} with {pools.source}: {exc}") from None


def _check_codes(store: RasterStore, pools: PoolTable, label: str) -> None:
    counts = store.attrs.get("code_counts")
    if counts is None:
        return  # found by the pass itself (the unknown column), then listed by a second pass
    nodata = None if store.nodata is None else int(store.nodata)
    unknown = {int(code): int(n) for code, n in counts.items() if int(code) not in pools.codes and int(code) != nodata}
    if unknown:
        raise UnknownCodesError(unknown_codes_message(f"{label} map {store.path}", pools, unknown))


def check_years(
    years: tuple[int, int] | None, *, valued: bool, labels: tuple[str, str] = ("first", "second"),
    fix: str = "swap --from and --to, or correct --years",
) -> None:
    """The years of two maps: valuation needs them, and the second must come after the first."""
    if years is None:
        if valued:
            raise InputError(
                "valuation needs the years of both maps (the change is spread over the years between them): give "
                "--years BASE LATER, e.g. --years 2020 2030"
            )
        return
    if len(years) != 2:
        raise InputError(f"--years takes two years (the {labels[0]} map's and the {labels[1]} map's); got {years}")
    if int(years[1]) <= int(years[0]):
        raise InputError(
            f"the {labels[1]} map's year {years[1]} is not after the {labels[0]} map's year {years[0]}; a scenario or "
            f"later map must come after its base: {fix}"
        )


def _density(pools: PoolTable) -> np.ndarray:
    """t/ha per class as InVEST sums it: the four pools in float32, in order (pixel-map parity)."""
    table = pools.table[list(POOL_COLUMNS)].to_numpy(dtype=np.float32)
    total = table[:, 0].copy()
    for k in range(1, table.shape[1]):
        total = (total + table[:, k]).astype(np.float32)
    return total


@dataclass(frozen=True)
class ChangeTerms:
    """What turns a pair of maps' (county id, class column A, class column B) cells into change
    tables, whichever form the cells come in (:func:`change_tables`, :func:`change_tables_from_cells`).

    ``pools_from`` and ``pools_to`` are the two maps' pool tables (their columns as
    :class:`~carbonscape.accumulate.ClassIndex` numbers them: classes, nodata, unknown);
    ``counties`` maps id → county (id 0, outside every county, is left out); ``years`` the two
    maps' years (the dynamic degree needs them, a valuation too); ``labels`` name the maps in the
    summary and in messages.
    """

    pools_from: PoolTable
    pools_to: PoolTable
    counties: pd.Series
    years: tuple[int, int] | None = None
    valuation: Valuation | None = None
    labels: tuple[str, str] = ("from", "to")


def change_tables(pixels: np.ndarray, areas_m2: np.ndarray, *, terms: ChangeTerms) -> ChangeResult:
    """Every change table from the (county id, column A, column B) pixels and areas (m²).

    ``pixels`` and ``areas_m2`` are ``(n_ids, n_a, n_b)`` with the columns of ``terms``' pool
    tables. Pure pandas: no raster is read.
    """
    z, a, b = np.nonzero(pixels)
    return change_tables_from_cells(z, a, b, pixels[z, a, b], areas_m2[z, a, b], terms=terms)


def change_tables_from_cells(
    county_ids: np.ndarray,
    col_from: np.ndarray,
    col_to: np.ndarray,
    pixels: np.ndarray,
    areas_m2: np.ndarray,
    *,
    terms: ChangeTerms,
) -> ChangeResult:
    """:func:`change_tables` from the cells present only (a sparse transfer matrix,
    :func:`carbonscape.accumulate.sparse_cells`): one entry per (county id, column A, column B)
    with its pixels and area (m²). Nothing of size ``n_counties × n_a × n_b`` is built; the
    region's ``n_a × n_b`` matrix is."""
    pools_from, pools_to, counties = terms.pools_from, terms.pools_to, terms.counties
    years, valuation, labels = terms.years, terms.valuation, terms.labels
    ids = counties.index.to_numpy()
    n_rows = len(ids)
    na, nb = len(pools_from.codes), len(pools_to.codes)
    county_ids = np.asarray(county_ids, dtype=np.int64)
    position = np.full(int(max(ids.max(initial=0), county_ids.max(initial=0))) + 1, -1, dtype=np.int64)
    position[ids] = np.arange(n_rows)
    keep = position[county_ids] >= 0
    zp = position[county_ids[keep]]
    a, b = np.asarray(col_from, dtype=np.int64)[keep], np.asarray(col_to, dtype=np.int64)[keep]
    px, ha = np.asarray(pixels, dtype=np.int64)[keep], np.asarray(areas_m2, dtype=np.float64)[keep] / M2_PER_HA
    dens_a = pools_from.total_density
    dens_b = pools_to.total_density
    delta = dens_b[None, :] - dens_a[:, None]  # t/ha, (na, nb)
    in_a, in_b = a < na, b < nb
    valid = in_a & in_b
    codes_a, codes_b = np.asarray(pools_from.codes), np.asarray(pools_to.codes)
    change_cell = np.where(valid, ha * delta[np.minimum(a, na - 1), np.minimum(b, nb - 1)], 0.0)  # t C per cell

    def per_county(weights: np.ndarray, where: np.ndarray | None = None) -> np.ndarray:
        if where is not None:
            weights = np.where(where, weights, 0)
        return np.bincount(zp, weights=weights, minlength=n_rows)[:n_rows]

    def count_per_county(where: np.ndarray) -> np.ndarray:
        return np.rint(per_county(px.astype(np.float64), where)).astype(np.int64)  # exact below 2^53

    constant = None
    if valuation is not None:
        if years is None:
            check_years(None, valued=True, labels=labels)
        constant = valuation_constant(
            price=valuation.price, discount_rate=valuation.discount_rate, rate_change=valuation.rate_change, years=years  # type: ignore[arg-type]
        )
    # Each map's own class areas per county (ha): margins of the cells.
    area_from = np.bincount(zp[in_a] * na + a[in_a], weights=ha[in_a], minlength=n_rows * na).reshape(n_rows, na)
    area_to = np.bincount(zp[in_b] * nb + b[in_b], weights=ha[in_b], minlength=n_rows * nb).reshape(n_rows, nb)
    county = counties.to_numpy()
    by_county = pd.DataFrame({
        "county": county,
        "supply_from_t": (area_from * dens_a[None, :]).sum(axis=1),
        "supply_to_t": (area_to * dens_b[None, :]).sum(axis=1),
        "change_t": per_county(change_cell),
    })
    if constant is not None:
        by_county["npv"] = by_county["change_t"] * constant
    other_cell = valid & (codes_a[np.minimum(a, na - 1)] != codes_b[np.minimum(b, nb - 1)])
    by_county["pixels_both"] = count_per_county(valid)
    by_county["changed_pixels"] = count_per_county(other_cell)
    by_county["nodata_from_only_pixels"] = count_per_county((a == na) & in_b)
    by_county["nodata_to_only_pixels"] = count_per_county(in_a & (b == nb))

    # Transfer matrix per county and for the region (class → class, both maps valid).
    shown = np.flatnonzero(valid & ((px > 0) | (ha > 0)))  # fraction mode: a county's part of a pixel centred elsewhere
    shown = shown[np.lexsort((b[shown], a[shown], zp[shown]))]
    transitions_by_county = pd.DataFrame({
        "county": county[zp[shown]],
        "from_code": codes_a[a[shown]],
        "to_code": codes_b[b[shown]],
        "pixels": px[shown],
        "area_km2": ha[shown] / 100.0,
        "carbon_change_t": change_cell[shown],
    })
    flat = a[valid] * nb + b[valid]
    region_px = np.rint(np.bincount(flat, weights=px[valid].astype(np.float64), minlength=na * nb)).astype(np.int64).reshape(na, nb)
    region_ha = np.bincount(flat, weights=ha[valid], minlength=na * nb).reshape(na, nb)
    ra, rb = np.nonzero((region_px > 0) | (region_ha > 0))  # fraction mode: a transition in parts of pixels only
    names_a, names_b = np.asarray(pools_from.names, dtype=object), np.asarray(pools_to.names, dtype=object)
    transitions = pd.DataFrame({
        "from_code": codes_a[ra],
        "from_name": names_a[ra],
        "to_code": codes_b[rb],
        "to_name": names_b[rb],
        "pixels": region_px[ra, rb],
        "area_km2": region_ha[ra, rb] / 100.0,
        "carbon_change_t": (region_ha * delta)[ra, rb],
    })
    if constant is not None:
        transitions["npv"] = transitions["carbon_change_t"] * constant
    matrix = pd.DataFrame(region_ha / 100.0, index=pd.Index([f"{c} {n}" for c, n in zip(codes_a, names_a)], name="from \\ to (km²)"),
                          columns=[f"{c} {n}" for c, n in zip(codes_b, names_b)])
    matrix["total_from"] = matrix.sum(axis=1)
    matrix.loc["total_to"] = matrix.sum(axis=0)

    # Land-use dynamic degree (README, "Change between maps"): each class's own area in each map.
    area_from_km2 = area_from.sum(axis=0) / 100.0
    area_to_by_code = dict(zip(pools_to.codes, area_to.sum(axis=0) / 100.0))
    other = codes_a[:, None] != codes_b[None, :]  # (na, nb): the transition leaves the class
    lost_km2 = (region_ha * other).sum(axis=1) / 100.0
    dynamic = pd.DataFrame({
        "lucode": codes_a,
        "name": names_a,
        "area_from_km2": area_from_km2,
        "area_to_km2": [area_to_by_code.get(int(c), 0.0) for c in codes_a],
        "lost_to_other_classes_km2": lost_km2,
    })
    span = None if years is None else int(years[1]) - int(years[0])
    comprehensive = None
    if span is not None and span > 0:
        with np.errstate(divide="ignore", invalid="ignore"):
            dynamic["single_dynamic_degree_pct_per_year"] = np.where(
                dynamic["area_from_km2"] > 0,
                (dynamic["area_to_km2"] - dynamic["area_from_km2"]) / dynamic["area_from_km2"] / span * 100.0,
                np.nan,
            )
        total_from = float(area_from_km2.sum())
        comprehensive = float(lost_km2.sum() / total_from / span * 100.0) if total_from > 0 else None
        lost_by_county = per_county(ha, other_cell)
        from_by_county = area_from.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            by_county["comprehensive_dynamic_degree_pct_per_year"] = np.where(
                from_by_county > 0, lost_by_county / from_by_county / span * 100.0, np.nan
            )

    summary: dict[str, Any] = {
        "maps": {"from": labels[0], "to": labels[1]},
        "years": None if years is None else [int(years[0]), int(years[1])],
        "supply_from_t": float(by_county["supply_from_t"].sum()),
        "supply_to_t": float(by_county["supply_to_t"].sum()),
        "change_t": float(by_county["change_t"].sum()),
        "change_t_meaning": "InVEST's sequestration: carbon change summed over pixels holding a class in both maps",
        "nodata_from_only_pixels": int(by_county["nodata_from_only_pixels"].sum()),
        "nodata_to_only_pixels": int(by_county["nodata_to_only_pixels"].sum()),
        "changed_pixels": int(by_county["changed_pixels"].sum()),
        "comprehensive_dynamic_degree_pct_per_year": comprehensive,
        "pools_from": pools_from.source,
        "pools_to": pools_to.source,
    }
    if constant is not None:
        summary["valuation"] = {
            "price_per_t_c": valuation.price,  # type: ignore[union-attr]
            "discount_rate_pct": valuation.discount_rate,  # type: ignore[union-attr]
            "rate_change_pct": valuation.rate_change,  # type: ignore[union-attr]
            "valuation_constant_per_t_c": constant,
            "npv": float(by_county["npv"].sum()),
        }
    return ChangeResult(
        by_county=by_county, transitions_by_county=transitions_by_county, transitions=transitions,
        transfer_matrix=matrix, dynamic_degree=dynamic, summary=summary,
    )


def change(
    landuse_from: str | os.PathLike[str],
    landuse_to: str | os.PathLike[str],
    zones: str | os.PathLike[str],
    pools: str | os.PathLike[str] | PoolTable,
    *,
    pools_to: str | os.PathLike[str] | PoolTable | None = None,
    years: tuple[int, int] | None = None,
    valuation: Valuation | None = None,
    out: str | os.PathLike[str] | None = None,
    pixel_maps: bool = False,
    labels: tuple[str, str] | None = None,
    scheduler: str | None = None,
    progress: bool = False,
    run: Executor | None = None,
) -> ChangeResult:
    """Carbon change between two land-use maps per county and per transition, as InVEST computes it.

    Parameters
    ----------
    landuse_from, landuse_to
        Land-use stores (:func:`carbonscape.ingest`) of the earlier map and the later (or
        scenario) map, on one grid.
    zones
        County store (:func:`carbonscape.rasterize_zones`) on that grid. A fraction-mode store
        (``coverage="fraction"``) shares each boundary pixel's transition among the counties
        covering it by covered fraction (areas, carbon, stocks; ``pixels`` stay pixel-centre counts).
    pools, pools_to
        InVEST carbon pools tables (t/ha) of the first map and, when densities change with time or
        scenario, of the second (default: the same table).
    years
        ``(year_from, year_to)``; needed for valuation and the dynamic degrees.
    valuation
        Price, discount rate and price change (InVEST's valuation); needs ``years``.
    out
        Folder for the tables (and pixel maps); nothing is written when None. All outputs are
        staged and moved into place together.
    pixel_maps
        Also write ``c_change.tif`` (t C/ha, InVEST's ``c_change_bas_alt.tif``) and, when valued,
        ``npv.tif`` (currency/ha, InVEST's ``npv_alt.tif``).
    labels
        Names of the two maps in messages (default: their paths).

    Returns
    -------
    ChangeResult
        Raises :class:`InputError` (before computing) for maps on different grids, a second year
        not after the first, valuation without years, and codes missing from a map's pools table.
    """
    started = time.perf_counter()
    table_from = pools if isinstance(pools, PoolTable) else read_pools(pools)
    table_to = table_from if pools_to is None else (pools_to if isinstance(pools_to, PoolTable) else read_pools(pools_to))
    names = labels or (os.fspath(landuse_from), os.fspath(landuse_to))
    check_years(years, valued=valuation is not None, labels=names)
    store_a, store_b = _open_map(landuse_from, names[0]), _open_map(landuse_to, names[1])
    store_a.grid.check_same_grid(store_b.grid, what=f"the map {names[1]!r} ({store_b.path})", reference=f"the map {names[0]!r} ({store_a.path})")
    county_store, county_table = open_zones(zones)
    store_a.grid.check_same_grid(county_store.grid, what=f"the county store {county_store.path}", reference=str(store_a.path))
    for store, label in ((store_b, names[1]), (county_store, "county")):
        if store.data.chunks != store_a.data.chunks:
            raise AlignmentError(
                f"{label} store {store.path} is chunked {store.grid.chunks}, {store_a.path} {store_a.grid.chunks}; "
                f"write it again with the same chunks (`carbonscape ingest --chunk`, `carbonscape zones --like {store_a.path}`)"
            )
    _check_codes(store_a, table_from, names[0])
    _check_codes(store_b, table_to, names[1])
    index_a, index_b = _class_index(store_a, table_from, names[0]), _class_index(store_b, table_to, names[1])
    layout = Layout(n_counties=county_table.n_zones, classes=index_a, classes_to=index_b)
    areas = pixel_areas(store_a.grid)
    specs = [_pair_statistic(layout)]
    rasters = {"landuse": store_a.data, "landuse_to": store_b.data}
    moves = _fraction_moves(county_store, layout, rasters)
    if moves is not None:
        specs.append(moves)
    lazy = accumulate(specs, county_store.data, rasters, layout=layout, areas=areas)

    staging = staged_outputs(out) if out is not None else contextlib.nullcontext(None)
    with using(run, scheduler) as active, staging as stage:
        shape = store_a.grid.shape
        computed = active.compute(*_in_order(lazy), progress=progress, label=f"change: 2 maps of {shape[0]}×{shape[1]} pixels")
        cells = PairCells.of(computed[0], layout)
        if moves is not None:  # fraction mode: boundary pixels shared by covered fraction
            cells = cells.moved(computed[1])
        if cells.pixels[cells.col_from == index_a.unknown_col].sum():
            raise UnknownCodesError(unknown_codes_message(f"{names[0]} map {store_a.path}", table_from, _count_unknown(store_a, table_from, active)))
        if cells.pixels[cells.col_to == index_b.unknown_col].sum():
            raise UnknownCodesError(unknown_codes_message(f"{names[1]} map {store_b.path}", table_to, _count_unknown(store_b, table_to, active)))
        terms = ChangeTerms(pools_from=table_from, pools_to=table_to, counties=county_table.series(), years=years,
                            valuation=valuation, labels=names)
        result = change_tables_from_cells(*cells.arrays(), terms=terms)
        result.summary.update({
            "grid_shape": list(shape), "crs": store_a.grid.crs.name, "geographic": store_a.grid.is_geographic,
            "sources": {"from": str(store_a.path), "to": str(store_b.path), "counties": str(county_store.path)},
            "coverage": "fraction" if moves is not None else "centre",  # how boundary pixels are given to counties
        })
        if pixel_maps and stage is not None:
            write_change_maps(store_a, store_b, index_a, index_b, table_from, table_to, stage,
                              constant=result.summary.get("valuation", {}).get("valuation_constant_per_t_c"))
        result.summary["seconds"] = time.perf_counter() - started
        if stage is not None:
            result.write(stage)
    if result.summary["nodata_from_only_pixels"] or result.summary["nodata_to_only_pixels"]:
        log.warning(
            "%s pixels are nodata in %s only and %s in %s only: they count in that map's supply but not in the change "
            "(as InVEST computes it); see nodata_*_only_pixels in change_by_county.csv",
            f"{result.summary['nodata_from_only_pixels']:,}", names[0], f"{result.summary['nodata_to_only_pixels']:,}", names[1],
        )
    if out is not None:
        folder = Path(out).absolute()
        result.files = {name: folder / path.name for name, path in result.files.items()}
        if pixel_maps:
            result.files["c_change"] = folder / PIXEL_FILES["c_change"]
            if "valuation" in result.summary:
                result.files["npv"] = folder / PIXEL_FILES["npv"]
    return result


#: Above this many (county, from, to) cells a pair's transfer matrix is accumulated sparse
#: (:data:`~carbonscape.accumulate.SPARSE_TRANSITIONS`: only the cells present) instead of dense
#: (2^21 cells: 32 MiB per dense partial table of pixels and areas).
SPARSE_ABOVE_CELLS = 1 << 21


def _in_order(lazy: Mapping[str, Any]) -> list[Any]:
    """The lazy tables of one pass as :class:`dask.delayed.Delayed` objects, so that computing them
    together gives them back in order and runs each chunk's task once.

    dask 2026.8's ``compute`` of dask arrays mixed with Delayed objects (the merged sparse tables)
    returned the results in another order than asked (the arrays' first or last: ``compute(d1, x,
    d2, x2)`` gave ``d1, d2, x, x2``), on a client too; wrapping the arrays as ``delayed(x)``
    restores the order but optimizes each array's graph apart, so the pass's shared chunk tasks ran
    once per table (three times on the 10^8-pixel benchmark). A "sum" table is one block: its
    block's Delayed, unoptimized, keeps the shared keys (a table of several blocks is wrapped whole).
    """
    from dask.delayed import Delayed, delayed

    out = []
    for table in lazy.values():
        if isinstance(table, Delayed):
            out.append(table)
            continue
        blocks = table.to_delayed(optimize_graph=False)
        out.append(blocks.flat[0] if blocks.size == 1 else delayed(table))  # (no such table here today)
    return out


def _fraction_moves(county_store: RasterStore, layout: Layout, rasters: dict[str, Any], name: str = "fraction transitions",
                    bound: Mapping[str, str] | None = None) -> Any:
    """In fraction mode (a county store of ``coverage = "fraction"``), the statistic of the area
    boundary pixels move between a pair's (county, from, to) cells
    (:data:`~carbonscape.accumulate.fraction_pairs.FRACTION_TRANSITIONS`), bound under ``name`` to
    ``layout`` (and to the rasters ``bound`` names, as :func:`~carbonscape.accumulate.bind`);
    else None. Counties burned on the fly (their rings a lazy raster of the store's attributes)
    add that raster to ``rasters``."""
    from carbonscape.accumulate import bind
    from carbonscape.accumulate.fraction_pairs import fraction_transitions
    from carbonscape.rasterize import COUNTY_RINGS

    if county_store.attrs.get("coverage") != "fraction":
        return None
    rings = county_store.attrs.get(COUNTY_RINGS)
    if rings is not None:
        rasters[COUNTY_RINGS] = rings
        params = {"boundary_rings": COUNTY_RINGS}
    else:
        params = {"boundary": str(county_store.path)}
    spec = fraction_transitions(rings=None if rings is None else COUNTY_RINGS)
    return bind(spec, name, rasters=dict(bound or {}), layout=replace(layout, params={**layout.params, **params}))


def _pair_statistic(layout: Layout) -> Any:
    from carbonscape.accumulate import SPARSE_TRANSITIONS

    dense = layout.n_counties * layout.n_cols * layout.to_classes.n_cols <= SPARSE_ABOVE_CELLS
    return TRANSITION_TABLES if dense else SPARSE_TRANSITIONS


@dataclass
class PairCells:
    """The (county id, column A, column B) cells present of one pair, with pixels and areas (m²),
    from a dense :data:`~carbonscape.accumulate.TRANSITION_TABLES` or a sparse table alike."""

    county: np.ndarray
    col_from: np.ndarray
    col_to: np.ndarray
    pixels: np.ndarray
    area_m2: np.ndarray
    layout: Layout

    @classmethod
    def of(cls, table: Any, layout: Layout) -> PairCells:
        from carbonscape.accumulate import SPARSE_DTYPE, sparse_cells

        table = np.asarray(table)
        if table.dtype == SPARSE_DTYPE:
            return cls(*sparse_cells(table, layout), layout=layout)
        z, a, b = np.nonzero(table[0])
        return cls(z, a, b, np.rint(table[0][z, a, b]).astype(np.int64), table[1][z, a, b], layout=layout)

    def arrays(self) -> tuple[np.ndarray, ...]:
        return self.county, self.col_from, self.col_to, self.pixels, self.area_m2

    def moved(self, moves: np.ndarray) -> PairCells:
        """These cells with the areas :data:`~carbonscape.accumulate.fraction_pairs.FRACTION_TRANSITIONS`
        moves (fraction mode: each boundary pixel shared among the counties covering it by covered
        fraction); pixel counts unchanged, cells reached only by a share with 0 pixels."""
        from carbonscape.accumulate.fraction_pairs import add_moves

        return PairCells(*add_moves(self.arrays(), moves, self.layout), layout=self.layout)

    def margin(self, side: str) -> tuple[np.ndarray, np.ndarray]:
        """``(pixels int64, areas m²)`` per (county, column) of the first (``"from"``) or second map."""
        n_cols = self.layout.n_cols if side == "from" else self.layout.to_classes.n_cols
        cols = self.col_from if side == "from" else self.col_to
        flat = self.county * n_cols + cols
        size = self.layout.n_counties * n_cols
        pixels = np.bincount(flat, weights=self.pixels.astype(np.float64), minlength=size)
        areas = np.bincount(flat, weights=self.area_m2, minlength=size)
        return np.rint(pixels).astype(np.int64).reshape(-1, n_cols), areas.reshape(-1, n_cols)


def write_change_maps(
    store_a: RasterStore, store_b: RasterStore, index_a: ClassIndex, index_b: ClassIndex,
    pools_from: PoolTable, pools_to: PoolTable, out: Path, *, constant: float | None,
) -> None:
    """``c_change.tif`` (t C/ha) and, with a valuation constant, ``npv.tif`` (currency/ha), chunk by
    chunk, float32 with InVEST's nodata −1 where either map has no class."""
    import rasterio

    grid = store_a.grid
    # lookup() gives NaN for nodata; densities summed pool by pool in float32 as InVEST does.
    carbon_a = lookup(store_a.data, index=index_a, values=_density(pools_from).astype(np.float64))
    carbon_b = lookup(store_b.data, index=index_b, values=_density(pools_to).astype(np.float64))
    delta = carbon_b - carbon_a
    profile = {
        "driver": "GTiff", "dtype": "float32", "count": 1, "width": grid.shape[1], "height": grid.shape[0],
        "crs": grid.crs_wkt, "transform": grid.affine, "nodata": INVEST_NODATA, "tiled": True,
        "blockxsize": 256, "blockysize": 256, "compress": "deflate", "predictor": 3, "BIGTIFF": "IF_SAFER",
    }
    targets = [("c_change", 1.0)] + ([("npv", constant)] if constant is not None else [])
    for name, factor in targets:
        with atomic_path(out / PIXEL_FILES[name]) as tmp, rasterio.open(tmp, "w", **profile) as dst:
            dst.update_tags(1, units="t C/ha" if name == "c_change" else "currency/ha")
            for _, (rows, cols) in grid.chunk_windows():
                block = np.asarray(delta[rows, cols].compute(scheduler="threads"), dtype=np.float32)
                if name == "npv":
                    block = (block * np.float32(factor)).astype(np.float32)
                block[~np.isfinite(block)] = INVEST_NODATA
                window = rasterio.windows.Window(cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start)
                dst.write(block, 1, window=window)


@dataclass
class MapsResult:
    """Every map's supply tables and every asked change, from one pass over all the maps."""

    supply: dict[str, Any]
    changes: dict[tuple[str, str], ChangeResult]
    summary: dict[str, Any]
    balances: dict[str, Any] = field(default_factory=dict)  # per map: demand, ratio, zones (a study's maps)


def maps_pass(
    maps: Mapping[str, str | os.PathLike[str]],
    zones: str | os.PathLike[str],
    pools: Mapping[str, str | os.PathLike[str] | PoolTable],
    *,
    pairs: Sequence[tuple[str, str]] = (),
    years: Mapping[str, int | None] | None = None,
    valuation: Valuation | None = None,
    scheduler: str | None = None,
    progress: bool = False,
    run: Executor | None = None,
) -> MapsResult:
    """Supply of every map and the change of every pair, reading each chunk of every map once.

    Parameters
    ----------
    maps
        Label → land-use store (:func:`carbonscape.ingest`), all on one grid.
    zones
        County store on that grid.
    pools
        Label → pools table of that map (densities may change with time or scenario).
    pairs
        ``(from label, to label)`` of every change wanted (consecutive historical maps, base →
        scenario...).
    years
        Label → year, for valuation and the dynamic degrees of each pair.
    valuation
        InVEST's valuation of each pair's change (needs both years).

    All the maps are one :class:`~carbonscape.accumulate.Trajectories` statistic (every pixel's
    path through all the maps; each pair's transfer matrix and each map's table are its margins).
    Where its keys would not fit an int64, each pair is one :data:`~carbonscape.accumulate.TRANSITION_TABLES` statistic (pixels
    and true areas in one kernel call; sparse where cells are many) and a map in no pair a
    :data:`~carbonscape.accumulate.COUNTS` one, all in one :func:`~carbonscape.accumulate.accumulate`. With a
    fraction-mode county store every map's areas and every pair's transition areas share boundary
    pixels by covered fraction (:data:`~carbonscape.accumulate.fraction_pairs.FRACTION_TRANSITIONS`
    moves them from the pixel-centre cells), so each pair's transitions of a county add up to each
    map's areas of it; pixel counts stay pixel-centre. Raises :class:`InputError` naming the
    map, before computing, for another grid, a pair whose later year is not after its base, or a
    code missing from the map's pools table.
    """
    from carbonscape.accumulate import AREAS, COUNTS, Trajectories, bind
    from carbonscape.carbon import _supply_result

    started = time.perf_counter()
    years = dict(years or {})
    labels = list(maps)
    if not labels:
        raise InputError("no land-use map given")
    tables = {label: pools[label] if isinstance(pools[label], PoolTable) else read_pools(pools[label]) for label in labels}  # type: ignore[arg-type]
    for a, b in pairs:
        for label in (a, b):
            if label not in maps:
                raise InputError(f"the change {a!r} → {b!r} names the map {label!r}, which is not one of {labels}")
        pair_years = (years.get(a), years.get(b))
        if None in pair_years:
            if valuation is not None:
                raise InputError(f"valuing the change {a!r} → {b!r} needs the year of both maps; give each map a year")
        else:
            check_years(pair_years, valued=valuation is not None, labels=(a, b), fix="correct the map's year")  # type: ignore[arg-type]
    stores = {label: _open_map(path, label) for label, path in maps.items()}
    first = stores[labels[0]]
    county_store, county_table = open_zones(zones)
    for label, store in stores.items():
        if label != labels[0]:
            first.grid.check_same_grid(store.grid, what=f"the map {label!r} ({store.path})", reference=f"the map {labels[0]!r} ({first.path})")
        if store.data.chunks != first.data.chunks:
            raise AlignmentError(f"the map {label!r} ({store.path}) is chunked {store.grid.chunks}, {first.path} {first.grid.chunks}; ingest it with the same --chunk")
    first.grid.check_same_grid(county_store.grid, what=f"the county store {county_store.path}", reference=str(first.path))
    for store in stores.values():
        # One grid (checked above): its measured pixel areas are computed once, not once per map
        # (0.14 s each on the 10^8-pixel benchmark grid). ``area_model`` is a cached property.
        if store.grid is not first.grid and "area_model" not in vars(store.grid):
            vars(store.grid)["area_model"] = first.grid.area_model
    for label, store in stores.items():
        _check_codes(store, tables[label], label)
    index = {label: _class_index(store, tables[label], label) for label, store in stores.items()}
    n = county_table.n_zones
    areas = pixel_areas(first.grid)
    per_pixel = areas.uniform_area_m2() is None
    specs = []
    pair_layouts: dict[tuple[str, str], Layout] = {}
    in_pair = {label for pair in pairs for label in pair}
    # One table of every pixel's trajectory through all the maps, whose margins are every pair's
    # transfer matrix and every map's own table (a further map adds one lookup per pixel, not a table
    # per pair); per-pair tables only where the trajectory keys would not fit an int64.
    paths = Trajectories(maps=tuple(f"map {label}" for label in labels), classes=tuple(index[label] for label in labels), n_counties=n)
    if len(labels) >= 2 and pairs and paths.fits():
        specs.append(paths.statistic())
        pairs_to_count: Sequence[tuple[str, str]] = ()
        in_pair = set(labels)
    else:
        paths = None  # type: ignore[assignment]
        pairs_to_count = pairs
    for a, b in pairs_to_count:
        layout = Layout(n_counties=n, classes=index[a], classes_to=index[b])
        rasters = {"landuse": f"map {a}", "landuse_to": f"map {b}"}
        specs.append(bind(_pair_statistic(layout), f"transitions {a} → {b}", rasters=rasters, layout=layout))
        pair_layouts[(a, b)] = layout
    for label in labels:
        if label not in in_pair:
            layout = Layout(n_counties=n, classes=index[label])
            specs.append(bind(COUNTS, f"counts {label}", rasters={"landuse": f"map {label}"}, layout=layout))
            if per_pixel:
                specs.append(bind(AREAS, f"areas {label}", rasters={"landuse": f"map {label}"}, layout=layout))
    # A fraction-mode county store (coverage = "fraction"): each map's supply shares its boundary
    # pixels by covered fraction, as the study's own supply does ...
    fraction = county_store.attrs.get("coverage") == "fraction"
    rasters = {f"map {label}": store.data for label, store in stores.items()}
    # ... and so does every pair's transfer matrix by county: the area its boundary pixels move
    # from the pixel-centre cells. A map in such a pair takes its own areas from them (the margin
    # of the moved cells: one fraction kernel call a pair, not one more a map); other maps, from
    # their own fraction-mode areas.
    moved: dict[tuple[str, str], str] = {}
    for a, b in pairs:
        moves = _fraction_moves(county_store, Layout(n_counties=n, classes=index[a], classes_to=index[b]), rasters,
                                name=f"fraction transitions {a} → {b}", bound={"landuse": f"map {a}", "landuse_to": f"map {b}"})
        if moves is not None:
            specs.append(moves)
            moved[(a, b)] = moves.name
    margin_of = {}
    for a, b in moved:
        margin_of.setdefault(a, ((a, b), "from"))
        margin_of.setdefault(b, ((a, b), "to"))
    if fraction:
        for label in labels:
            if label not in margin_of:
                layout = Layout(n_counties=n, classes=index[label], params={"boundary": str(county_store.path)})
                specs.append(bind(AREAS, f"fraction areas {label}", rasters={"landuse": f"map {label}"}, layout=layout))
    lazy = accumulate(specs, county_store.data, rasters, layout=Layout(n_counties=n), areas=areas)
    with using(run, scheduler) as active:
        shape = first.grid.shape
        computed = active.compute(*_in_order(lazy), progress=progress, label=f"{len(labels)} maps of {shape[0]}×{shape[1]} pixels, {len(pairs)} change(s)")
        found = {name: np.asarray(table) for name, table in zip(lazy, computed)}
        uniform = areas.uniform_area_m2()

        def area_of(name: str, pixels: np.ndarray) -> np.ndarray:
            return found[name] if per_pixel else pixels * uniform

        counts: dict[str, np.ndarray] = {}
        area_m2: dict[str, np.ndarray] = {}
        if paths is not None:
            joint = found.pop("trajectories")
            position = {label: k for k, label in enumerate(labels)}
            pair_cells = {
                (a, b): PairCells(*paths.pair(joint, position[a], position[b]),
                                  layout=Layout(n_counties=n, classes=index[a], classes_to=index[b]))
                for a, b in pairs
            }
            for label in labels:
                counts[label], area_m2[label] = paths.margin(joint, position[label])
        else:
            pair_cells = {(a, b): PairCells.of(found.pop(f"transitions {a} → {b}"), pair_layouts[(a, b)]) for a, b in pairs}
        for pair, name in moved.items():
            pair_cells[pair] = pair_cells[pair].moved(found.pop(name))
        for a, b in pairs:
            for label, side in ((a, "from"), (b, "to")):
                if label not in counts:
                    counts[label], area_m2[label] = pair_cells[(a, b)].margin(side)
        for label in labels:
            if label not in in_pair:
                counts[label] = found[f"counts {label}"]
                area_m2[label] = area_of(f"areas {label}", counts[label])
        if fraction:
            for label in labels:
                if label in margin_of:
                    pair, side = margin_of[label]
                    area_m2[label] = pair_cells[pair].margin(side)[1]
                else:
                    area_m2[label] = found[f"fraction areas {label}"]
        for label in labels:
            if counts[label][:, index[label].unknown_col].sum():
                raise UnknownCodesError(unknown_codes_message(f"{label} map {stores[label].path}", tables[label],
                                                              _count_unknown(stores[label], tables[label], active)))
    supply_results = {
        label: _supply_result(counts[label], area_m2[label], land=stores[label], index=index[label], pools=tables[label],
                              zone_table=county_table, started=started)
        for label in labels
    }
    from carbonscape.carbon import _add_coverage  # each map's covered, nodata and outside shares (carbonscape.coverage)

    for label in labels:
        _add_coverage(supply_results[label], counts[label], area_m2[label], index=index[label], zone_table=county_table, min_coverage=0.0,
                      fraction=fraction, warn=False)
    changes = {}
    for a, b in pairs:
        pair_years = (years.get(a), years.get(b))
        terms = ChangeTerms(pools_from=tables[a], pools_to=tables[b], counties=county_table.series(),
                            years=None if None in pair_years else pair_years,  # type: ignore[arg-type]
                            valuation=valuation if None not in pair_years else None, labels=(a, b))
        changes[(a, b)] = change_tables_from_cells(*pair_cells[(a, b)].arrays(), terms=terms)
    summary = {
        "maps": {label: {"store": str(stores[label].path), "year": years.get(label), "pools": tables[label].source,
                         "supply_t": supply_results[label].total_t} for label in labels},
        "changes": [{"from": a, "to": b, "change_t": changes[(a, b)].change_t} for a, b in pairs],
        "seconds": time.perf_counter() - started,
    }
    return MapsResult(supply=supply_results, changes=changes, summary=summary)


def transfer_table(change: ChangeResult, from_label: str, to_label: str) -> list[str]:
    """The region's transfer matrix as text lines (km²; rows the first map's classes, columns the
    second's, by class code, with each row's and column's total; classes present in either map
    only): what ``carbonscape change`` and ``carbonscape demo`` print. One decimal, more where the
    smallest transition needs them (0.010 km², not 0.0)."""
    matrix = change.transfer_matrix
    body = matrix.drop(index="total_to", columns="total_from")
    keep_rows = body.index[(body.sum(axis=1) > 0).to_numpy()]
    keep_cols = body.columns[(body.sum(axis=0) > 0).to_numpy()]
    body = body.loc[keep_rows, keep_cols]

    def code(label: Any) -> str:  # "12 arbor forest" → "12"
        return str(label).split(" ", 1)[0]

    names = {code(c): str(c).split(" ", 1)[-1] for c in [*keep_rows, *keep_cols]}
    # One decimal (a province's km²), more when the smallest transition would print as 0.0.
    values = body.to_numpy(dtype=float)
    smallest = float(values[values > 0].min()) if (values > 0).any() else 1.0
    places = int(min(max(1, np.ceil(-np.log10(smallest)) + 1), 6))
    lines = [f"  transfer matrix, km² (rows {from_label}, columns {to_label}; " + ", ".join(f"{k} {v}" for k, v in names.items()) + "):",
             "    " + f"{'':>6}" + "".join(f"{code(c):>10}" for c in body.columns) + f"{'total':>12}"]
    for label, row in body.iterrows():
        lines.append("    " + f"{code(label):>6}" + "".join(f"{v:10,.{places}f}" for v in row.to_numpy()) + f"{row.sum():12,.{places}f}")
    lines.append("    " + f"{'total':>6}" + "".join(f"{v:10,.{places}f}" for v in body.sum(axis=0).to_numpy()) + f"{values.sum():12,.{places}f}")
    return lines
