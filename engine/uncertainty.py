"""Uncertainty of the carbon densities: Monte Carlo over the unit × class table, with no pass over the raster.

A pools table may give each pool's spread beside its density, as InVEST's carbon model did before
3.3 removed its uncertainty mode: ``c_above_sd, c_below_sd, c_soil_sd, c_dead_sd`` (a normal
distribution around the density, t/ha), or ``c_above_min, c_above_max, …`` (a triangular
distribution from min to max with its mode at the density). Spreads are given for all four pools
or none; a pool that is certain has a spread of 0.

The model: a class's density is uncertain, not each pixel's. Each draw ``s`` takes one density per
class and pool for the whole study, ``ρ_s[k] = Σ_p d_s[k, p]`` (t/ha), and every unit's supply is
``supply_s[i] = Σ_k A[i, k] · ρ_s[k]`` with ``A`` the unit × class area table (ha) the supply pass
already made — a ``(units × classes) @ (classes × draws)`` product, so 10,000 draws of 3,000
counties cost no more raster reading. Demand is taken as known; each draw's ratio is the study's
demand density over the drawn supply density, classed with the study's own class edges and zone
scheme, so ``p_zone_<zone>`` is the share of draws that put the unit in that zone (how stable its
zone is under the density uncertainty; the edges stay those of the point estimate).

Normal draws below zero are set to 0 (a density cannot be negative), with a warning giving their
share; the analytic normal interval of a unit's supply, ``Σ A·μ ± 1.645·√(Σ_k A² Σ_p σ²)``, holds
exactly when none are.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from carbonscape.breaks import classify
from carbonscape.errors import InputError, PoolTableError

log = logging.getLogger(__name__)

POOLS = ("above", "below", "soil", "dead")
SPREAD_KINDS = {"sd": "normal (density ± sd)", "range": "triangular (min, density, max)"}
DEFAULT_DRAWS = 1000
DEFAULT_SEED = 12345
UNCERTAINTY_FILE = "uncertainty_by_county.csv"
# Units per block of the draws' matrix: ~20 MB of float64 per block at 10,000 draws, so memory
# stays flat however many units there are.
_BLOCK_UNITS = 256


@dataclass(frozen=True)
class PoolSpreads:
    """Densities and their spreads per class and pool (t/ha), aligned with a pools table.

    Attributes
    ----------
    kind
        ``"sd"`` (normal) or ``"range"`` (triangular).
    density
        ``(n_classes, 4)`` densities of the pools above, below, soil, dead.
    low, high
        ``(n_classes, 4)``: for ``"sd"`` both hold the standard deviation; for ``"range"`` the
        minimum and maximum.
    codes
        The land-use codes of the rows.
    source
        The file the spreads were read from.
    """

    kind: str
    density: np.ndarray
    low: np.ndarray
    high: np.ndarray
    codes: tuple[int, ...]
    source: str = "<table>"

    @property
    def sd(self) -> np.ndarray:
        if self.kind != "sd":
            raise InputError("these spreads are ranges, not standard deviations")
        return self.low


def read_spreads(table: str | os.PathLike[str] | pd.DataFrame) -> PoolSpreads | None:
    """The pools' spreads from an InVEST pools table, or None when it gives none.

    Parameters
    ----------
    table
        The pools CSV (or its frame): ``lucode``, ``c_above`` … and either ``c_<pool>_sd`` for all
        four pools, or ``c_<pool>_min`` and ``c_<pool>_max`` for all four (t/ha, case-insensitive).

    Returns
    -------
    PoolSpreads or None

    Raises
    ------
    PoolTableError
        Spreads for some pools only, both kinds at once, blank, negative or non-numeric spreads,
        or a density outside its own min–max range; the message names the file, rows and fix.
    """
    if isinstance(table, pd.DataFrame):
        raw, source = table.copy(), "<table>"
    else:
        source = os.fspath(table)
        try:
            raw = pd.read_csv(source, encoding="utf-8-sig")
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise PoolTableError(f"{source}: cannot read the pools table for its spreads ({exc})") from exc
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    raw = raw.dropna(how="all")
    sd_cols = [f"c_{p}_sd" for p in POOLS]
    min_cols = [f"c_{p}_min" for p in POOLS]
    max_cols = [f"c_{p}_max" for p in POOLS]
    has_sd = [c for c in sd_cols if c in raw.columns]
    has_range = [c for c in (*min_cols, *max_cols) if c in raw.columns]
    if not has_sd and not has_range:
        return None
    if has_sd and has_range:
        raise PoolTableError(
            f"{source}: give the pools' spreads either as standard deviations (c_above_sd …) or as ranges "
            f"(c_above_min, c_above_max …), not both; found {has_sd + has_range}"
        )
    wanted = sd_cols if has_sd else [*min_cols, *max_cols]
    missing = [c for c in wanted if c not in raw.columns]
    if missing:
        raise PoolTableError(
            f"{source}: spreads are given for some pools only; missing column(s) {missing}. Give a spread for every "
            "pool (0 for a pool whose density is certain)"
        )
    need = ["lucode", *(f"c_{p}" for p in POOLS)]
    absent = [c for c in need if c not in raw.columns]
    if absent:
        raise PoolTableError(f"{source}: missing column(s) {absent} beside the spreads")
    codes = pd.to_numeric(raw["lucode"], errors="coerce")
    if codes.isna().any() or (codes != codes.round()).any():
        raise PoolTableError(f"{source}: lucode must be an integer; bad value(s) {list(raw.loc[codes.isna(), 'lucode'])[:10]}")
    problems: list[str] = []

    def numbers(column: str) -> np.ndarray:
        values = pd.to_numeric(raw[column], errors="coerce")
        for code, given, parsed in zip(codes.astype(np.int64), raw[column], values):
            if pd.isna(parsed) or not np.isfinite(parsed):
                problems.append(f"lucode {code}: {column} = {given!r} is not a number (write 0 for a certain density)")
            elif parsed < 0:
                problems.append(f"lucode {code}: {column} = {parsed:g} is negative")
        return values.to_numpy(dtype=np.float64)

    density = np.column_stack([numbers(f"c_{p}") for p in POOLS])
    if has_sd:
        low = high = np.column_stack([numbers(c) for c in sd_cols])
    else:
        low = np.column_stack([numbers(c) for c in min_cols])
        high = np.column_stack([numbers(c) for c in max_cols])
        if not problems:
            for i, code in enumerate(codes.astype(np.int64)):
                for j, pool in enumerate(POOLS):
                    if not low[i, j] <= density[i, j] <= high[i, j]:
                        problems.append(
                            f"lucode {code}: c_{pool} = {density[i, j]:g} lies outside its range "
                            f"[c_{pool}_min, c_{pool}_max] = [{low[i, j]:g}, {high[i, j]:g}]"
                        )
    if problems:
        raise PoolTableError(f"{source}: bad spreads (t/ha): " + "; ".join(problems[:10]) + (f" and {len(problems) - 10} more" if len(problems) > 10 else ""))
    order = np.argsort(codes.to_numpy(dtype=np.int64), kind="stable")
    return PoolSpreads(
        kind="sd" if has_sd else "range",
        density=density[order],
        low=low[order],
        high=high[order],
        codes=tuple(int(c) for c in codes.to_numpy(dtype=np.int64)[order]),
        source=source,
    )


def draw_densities(spreads: PoolSpreads, *, draws: int = DEFAULT_DRAWS, seed: int = DEFAULT_SEED) -> np.ndarray:
    """Total density per draw and class (t/ha), one draw per class and pool for the whole study:
    the sum over the pools of :func:`draw_pool_densities` (the same draws for the same seed).

    Parameters
    ----------
    spreads
        From :func:`read_spreads`.
    draws
        Number of Monte Carlo draws ``S``.
    seed
        Seed of numpy's PCG64 generator: the same seed gives the same draws.

    Returns
    -------
    numpy.ndarray
        ``(S, n_classes)`` float64: the sum of the four pools' drawn densities.
    """
    return draw_pool_densities(spreads, draws=draws, seed=seed).sum(axis=2)


def draw_pool_densities(spreads: PoolSpreads, *, draws: int = DEFAULT_DRAWS, seed: int = DEFAULT_SEED) -> np.ndarray:
    """Each pool's density per draw and class (t/ha): ``(S, n_classes, 4)`` float64, pools in the
    order above, below, soil, dead (see :func:`draw_densities` for the distributions)."""
    check_draws(draws, seed)
    rng = np.random.default_rng(seed)
    shape = (draws, *spreads.density.shape)
    if spreads.kind == "sd":
        pools = spreads.density + spreads.low * rng.standard_normal(shape)
        negative = pools < 0
        if negative.any():
            log.warning(
                "%.3g%% of the drawn pool densities fell below 0 and were set to 0 (sd large against the density in %s)",
                100.0 * negative.mean(), spreads.source,
            )
            pools[negative] = 0.0
    else:
        # Triangular by its inverse CDF, vectorised over classes and pools (numpy's triangular
        # takes scalars' shapes but refuses min == max, a pool given as certain).
        a, m, b = spreads.low, spreads.density, spreads.high
        width = b - a
        u = rng.random(shape)
        with np.errstate(divide="ignore", invalid="ignore"):
            cut = np.where(width > 0, (m - a) / width, 0.0)
        left = a + np.sqrt(u * width * (m - a))
        right = b - np.sqrt((1.0 - u) * width * (b - m))
        pools = np.where(u < cut, left, right)
        pools = np.where(width > 0, pools, m)
    return pools


def check_draws(draws: Any, seed: Any) -> None:
    """Refuse a number of draws or a seed that cannot be used, naming the ``[uncertainty]`` setting."""
    if isinstance(draws, bool) or not isinstance(draws, (int, np.integer)) or not 20 <= draws <= 1_000_000:
        raise InputError(f"[uncertainty] draws must be an integer from 20 to 1000000 (default {DEFAULT_DRAWS}), not {draws!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"[uncertainty] seed must be a non-negative integer, not {seed!r}")


@dataclass
class UncertaintyResult:
    """Monte Carlo intervals per unit.

    Attributes
    ----------
    by_unit
        Indexed by unit: ``supply_t_mean, supply_t_sd, supply_t_p05, supply_t_p95, ratio_p05,
        ratio_p95`` and ``p_zone_<zone key>`` per zone of the scheme.
    info
        Draws, seed, spread kind, source, and the share of clipped draws.
    """

    by_unit: pd.DataFrame
    info: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)

    def write(self, out: str | os.PathLike[str], *, unit: str = "county", name: str = UNCERTAINTY_FILE) -> Path:
        """``uncertainty_by_county.csv`` (or ``name``) in ``out``, written atomically."""
        from carbonscape.io import atomic_path

        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / name
        table = self.by_unit.rename_axis(unit).reset_index()
        with atomic_path(target) as tmp:
            table.to_csv(tmp, index=False, encoding="utf-8", float_format="%.10g")
        self.files["uncertainty"] = target
        return target


def supply_uncertainty(
    area_ha: pd.DataFrame,
    spreads: PoolSpreads,
    *,
    area_km2: pd.Series | None = None,
    demand_t_per_km2: pd.Series | None = None,
    edges: Sequence[float] | None = None,
    zones: Sequence[tuple[str, Sequence[int]]] = (),
    draws: int = DEFAULT_DRAWS,
    seed: int = DEFAULT_SEED,
    factors: np.ndarray | None = None,
) -> UncertaintyResult:
    """Monte Carlo intervals of each unit's supply, ratio and zone from the density spreads.

    Parameters
    ----------
    area_ha
        Area per unit (rows) and land-use code (columns), hectares: the supply pass's table.
        Codes not in ``spreads`` raise; codes of ``spreads`` absent here have no area.
    spreads
        From :func:`read_spreads`.
    area_km2, demand_t_per_km2
        Per unit, as in the ratio table (its area and demand density in the ratio's units). Without
        them no ratio or zone columns are made.
    edges
        The study's ``k + 1`` ratio class edges (``zoning.edges``).
    zones
        ``(zone key, classes)`` pairs in the scheme's order, e.g. from a
        :class:`carbonscape.zoning.ZoneScheme`.
    draws, seed
        Number of draws and the generator's seed (see :func:`draw_densities`).
    factors
        ``(n_units, n_classes, 4)``, aligned with ``area_ha``: the mean correction factor of each
        pool's density in the unit's pixels of the class (:func:`factors_from_pairs`, from the
        factor rasters or table of ``[continuous]``). Each draw's pool density is corrected as the
        point estimate is, ``supply_s[i] = Σ_k Σ_p A[i, k] · f[i, k, p] · d_s[k, p]``, so the draws
        centre on the corrected supply. None: no correction (one matrix product for all pools).

    Returns
    -------
    UncertaintyResult
    """
    codes = [int(c) for c in area_ha.columns]
    unknown = sorted(set(codes) - set(spreads.codes))
    if unknown:
        raise PoolTableError(f"{spreads.source}: land-use code(s) {unknown} have area but no row with spreads")
    pool_density = draw_pool_densities(spreads, draws=draws, seed=seed)  # (S, n_spread_classes, 4)
    column = {code: i for i, code in enumerate(spreads.codes)}
    pool_density = pool_density[:, [column[c] for c in codes]]  # (S, n_classes, 4) in area_ha's column order
    density = pool_density.sum(axis=2)
    areas = area_ha.to_numpy(dtype=np.float64)
    n_units = areas.shape[0]
    if factors is not None:
        factors = np.asarray(factors, dtype=np.float64)
        if factors.shape != (*areas.shape, len(POOLS)):
            raise ValueError(f"factors must be (units, classes, 4) = {(*areas.shape, len(POOLS))}, not {factors.shape}")
        flat_density = np.ascontiguousarray(pool_density.reshape(pool_density.shape[0], -1))  # (S, classes × 4)
    with_ratio = area_km2 is not None and demand_t_per_km2 is not None
    if with_ratio:
        km2 = pd.Series(area_km2).reindex(area_ha.index).to_numpy(dtype=np.float64)
        demand = pd.Series(demand_t_per_km2).reindex(area_ha.index).to_numpy(dtype=np.float64)
    zone_list = list(zones) if with_ratio and edges is not None else []
    k = len(edges) - 1 if edges is not None else 0
    zone_of_class = np.full(k + 1, -1, dtype=np.int64)  # class 0 (NaN ratio) has no zone
    for z, (_, classes) in enumerate(zone_list):
        for c in classes:
            zone_of_class[int(c)] = z
    out: dict[str, np.ndarray] = {name: np.empty(n_units) for name in ("supply_t_mean", "supply_t_sd", "supply_t_p05", "supply_t_p95")}
    if with_ratio:
        out["ratio_p05"], out["ratio_p95"] = np.empty(n_units), np.empty(n_units)
    shares = np.zeros((n_units, len(zone_list)))
    for start in range(0, n_units, _BLOCK_UNITS):
        block = slice(start, min(start + _BLOCK_UNITS, n_units))
        if factors is None:
            supply = areas[block] @ density.T  # (units, S) t C
        else:  # the corrected densities: Σ_k Σ_p (A·f)[i, k, p] d_s[k, p], one product over (class, pool) pairs
            weighted = (areas[block, :, None] * factors[block]).reshape(block.stop - block.start, -1)
            supply = weighted @ flat_density.T
        out["supply_t_mean"][block] = supply.mean(axis=1)
        out["supply_t_sd"][block] = supply.std(axis=1, ddof=1)
        out["supply_t_p05"][block], out["supply_t_p95"][block] = np.percentile(supply, [5, 95], axis=1)
        if with_ratio:
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = demand[block, None] / (supply / km2[block, None])
            ratio[(supply <= 0) & (demand[block, None] > 0)] = np.inf
            ratio[(supply <= 0) & ~(demand[block, None] > 0)] = np.nan
            # Infinite ratios (no supply in a draw) as the largest float, so that interpolating
            # between two of them gives infinity again rather than inf − inf = NaN.
            top = np.finfo(np.float64).max
            finite = np.where(np.isposinf(ratio), top, ratio)
            low, high = np.nanpercentile(finite, [5, 95], axis=1) if np.isnan(ratio).any() else np.percentile(finite, [5, 95], axis=1)
            out["ratio_p05"][block] = np.where(low >= top / 2, np.inf, low)
            out["ratio_p95"][block] = np.where(high >= top / 2, np.inf, high)
            if zone_list:
                zone = zone_of_class[classify(ratio, edges, clip=True)]
                for z in range(len(zone_list)):
                    shares[block, z] = (zone == z).mean(axis=1)
    frame = pd.DataFrame(out, index=area_ha.index)
    for z, (key, _) in enumerate(zone_list):
        frame[f"p_zone_{key}"] = shares[:, z]
    info = {"draws": int(draws), "seed": int(seed), "spreads": spreads.kind, "distribution": SPREAD_KINDS[spreads.kind],
            "source": spreads.source, "edges": None if edges is None else [float(e) for e in edges],
            "densities": "uncorrected" if factors is None else "corrected per unit and class ([continuous] factors or factor_table)"}
    return UncertaintyResult(by_unit=frame, info=info)


def analytic_normal_interval(area_ha: np.ndarray, density: np.ndarray, sd: np.ndarray, *, z: float = 1.6448536269514722,
                             factors: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The exact normal mean and 5–95 % interval of each unit's supply when pool densities are
    independent normals (no clipping): ``μ = A·Σ_p d``, ``σ² = A²·Σ_p sd²``; with correction
    ``factors`` ``f[i, k, p]``: ``μ_i = Σ_k Σ_p A f d``, ``σ²_i = Σ_k (Σ_p (A f sd)²)`` (a class's
    draw is shared by every unit, its factor scales it: a sum of independent normals).

    Parameters
    ----------
    area_ha
        ``(n_units, n_classes)`` hectares.
    density, sd
        ``(n_classes, 4)`` pool densities and standard deviations, t/ha.
    factors
        ``(n_units, n_classes, 4)`` mean correction factors, see :func:`supply_uncertainty`.

    Returns
    -------
    (mean, p05, p95), each ``(n_units,)`` t C.
    """
    if factors is None:
        mean = area_ha @ density.sum(axis=1)
        sigma = np.sqrt((area_ha**2) @ (sd**2).sum(axis=1))
    else:
        weighted = area_ha[:, :, None] * np.asarray(factors, dtype=np.float64)  # (units, classes, 4) ha
        mean = (weighted * density[None]).sum(axis=(1, 2))
        sigma = np.sqrt(((weighted * sd[None]) ** 2).sum(axis=(1, 2)))
    return mean, mean - z * sigma, mean + z * sigma


def factors_from_pairs(pairs: pd.DataFrame, area_ha: pd.DataFrame) -> np.ndarray | None:
    """The ``factor_c_above`` … ``factor_c_dead`` columns of a corrected ``supply_by_county_class``
    (:func:`carbonscape.continuous.corrected_supply`) as ``(units, classes, 4)`` aligned with
    ``area_ha`` (``pairs`` has ``county`` and ``lucode`` columns; absent pairs get 1); None when
    the supply was not corrected."""
    columns = [f"factor_c_{p}" for p in POOLS]
    if not set(columns) <= set(pairs.columns):
        return None
    keyed = pairs.assign(county=pairs["county"].astype(str)).set_index(["county", "lucode"])
    return np.stack([
        keyed[c].unstack("lucode").reindex(index=area_ha.index.astype(str), columns=area_ha.columns).fillna(1.0).to_numpy(dtype=np.float64)
        for c in columns
    ], axis=-1)
