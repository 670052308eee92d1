"""Carbon demand per county (METHOD.md formula 3): per-capita emission × population density.

``CDE_i = (Cem / Yyn) × Pd_i`` with ``Pd_i = population_i / A_i``; or, with a county emission
inventory (e.g. CEADs), ``CDE_i = emissions_i / A_i``. Areas are the polygons' true areas on the
ellipsoid; the raster's pixel-count area is reported beside them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from carbonscape.errors import InputError, TableError


def per_capita_emission(*, total_emissions_t: float, total_population: float) -> float:
    """``Cem / Yyn``: the region's emissions per person (t per person per year)."""
    for name, value in (("total_emissions_t", total_emissions_t), ("total_population", total_population)):
        if not isinstance(value, (int, float, np.number)) or not np.isfinite(value) or value <= 0:
            raise InputError(f"{name} must be a positive number, not {value!r}")
    return float(total_emissions_t) / float(total_population)


def read_county_table(path: str | os.PathLike[str], *, key: str, sheet: str | int | None = None) -> pd.DataFrame:
    """Read a county table (CSV or XLSX) indexed by ``key`` (as text), checking keys are unique."""
    source = Path(path)
    if not source.is_file():
        raise TableError(f"{source}: no such file")
    if source.suffix.lower() in (".xlsx", ".xlsm", ".xls"):
        try:
            import openpyxl  # noqa: F401
        except ImportError:
            raise InputError(f"{source}: reading Excel files needs openpyxl: `pip install openpyxl` (or save the sheet as CSV)") from None
        frame = pd.read_excel(source, sheet_name=sheet or 0, dtype={key: str})
    else:
        try:
            frame = pd.read_csv(source, dtype={key: str}, encoding="utf-8-sig")
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise TableError(f"{source}: not a readable CSV ({exc}); save it as UTF-8 CSV") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    if key not in frame.columns:
        raise TableError(f"{source}: no column {key!r} to match the counties by; the columns are {list(frame.columns)}")
    keys = frame[key].astype(str).str.strip()
    empty = frame.index[frame[key].isna()].tolist()
    if empty:
        raise TableError(f"{source}: rows {[i + 2 for i in empty][:10]} have no {key!r}")
    duplicated = keys[keys.duplicated(keep=False)]
    if not duplicated.empty:
        rows = {value: [i + 2 for i in keys.index[keys == value]] for value in duplicated.unique()[:10]}
        raise TableError(f"{source}: {key!r} repeats: " + "; ".join(f"{v!r} on rows {r}" for v, r in rows.items()) + "; keep one row per county")
    frame.index = pd.Index(keys, name="county")
    return frame.drop(columns=[key])


def _numeric(table: pd.DataFrame, column: str, *, allow_zero: bool = True) -> pd.Series:
    if column not in table.columns:
        raise TableError(f"the county table has no column {column!r}; the columns are {list(table.columns)}")
    values = pd.to_numeric(table[column], errors="coerce")
    bad = table.index[values.isna() | (values < 0) | (~allow_zero & (values == 0))]
    if len(bad):
        shown = ", ".join(f"{k!r}: {table.loc[k, column]!r}" for k in bad[:10])
        raise TableError(f"{column!r} must be a non-negative number for every county; bad: {shown}")
    return values.astype(np.float64)


def demand_by_county(
    table: pd.DataFrame,
    *,
    area_km2: pd.Series,
    pixel_area_km2: pd.Series | None = None,
    per_capita_t: float | None = None,
    emissions_column: str | None = None,
    population_column: str = "population",
) -> pd.DataFrame:
    """Demand density per county (t/km²).

    Parameters
    ----------
    table
        County table indexed by the county key (see :func:`read_county_table`).
    area_km2
        Each county's true area (km²), indexed by the same key.
    pixel_area_km2
        The raster's pixel-count area, reported beside the true one.
    per_capita_t
        Emission per person (``Cem / Yyn``); or
    emissions_column
        a column of each county's own emissions (t). Exactly one of the two.
    population_column
        The population column.

    Returns
    -------
    pandas.DataFrame
        Indexed by county: ``population, area_km2, pixel_area_km2, density_per_km2,
        demand_t_per_km2, share_pct`` (share of the sum of county densities, as the paper's Table 3).
    """
    if (per_capita_t is None) == (emissions_column is None):
        raise InputError("give exactly one of per_capita_t (Cem / Yyn) or emissions_column (county inventory)")
    if table.index.has_duplicates:
        raise TableError(f"county keys repeat in the table: {sorted(set(table.index[table.index.duplicated()]))[:10]}")
    table_keys, area_keys = set(table.index), set(area_km2.index)
    if table_keys != area_keys:
        problems = []
        if table_keys - area_keys:
            problems.append(f"{len(table_keys - area_keys)} county(ies) in the table have no polygon: {sorted(table_keys - area_keys)[:20]}")
        if area_keys - table_keys:
            problems.append(f"{len(area_keys - table_keys)} polygon(s) have no row in the table: {sorted(area_keys - table_keys)[:20]}")
        raise TableError("; ".join(problems) + ". Make the county keys match (same spelling in both files)")
    order = list(area_km2.index)
    population = _numeric(table, population_column).reindex(order)
    area = area_km2.astype(np.float64).reindex(order)
    if (area <= 0).any():
        raise TableError(f"counties with no area: {list(area.index[area <= 0])[:10]}")
    if emissions_column is not None:
        emissions = _numeric(table, emissions_column).reindex(order)
    else:
        if not np.isfinite(per_capita_t) or per_capita_t <= 0:  # type: ignore[arg-type]
            raise InputError(f"per_capita_t must be a positive number, not {per_capita_t!r}")
        emissions = population * float(per_capita_t)  # type: ignore[arg-type]
    frame = pd.DataFrame(index=pd.Index(order, name="county"))
    frame["population"] = population
    frame["area_km2"] = area
    if pixel_area_km2 is not None:
        frame["pixel_area_km2"] = pixel_area_km2.astype(np.float64).reindex(order)
    frame["density_per_km2"] = population / area
    frame["emissions_t"] = emissions
    frame["demand_t_per_km2"] = emissions / area
    total = frame["demand_t_per_km2"].sum()
    frame["share_pct"] = 100.0 * frame["demand_t_per_km2"] / total if total > 0 else 0.0
    return frame


def demand_totals(demand: pd.DataFrame) -> dict[str, float]:
    """Region totals, each named for what it is.

    ``sum_of_county_densities_t_per_km2`` is the paper's "67,613.71 t/km²" convention (a sum of
    densities, not a density); ``regional_density_t_per_km2`` is total demand over total area.
    """
    total_area = float(demand["area_km2"].sum())
    total_demand = float(demand["emissions_t"].sum())
    return {
        "sum_of_county_densities_t_per_km2": float(demand["demand_t_per_km2"].sum()),
        "regional_density_t_per_km2": total_demand / total_area if total_area else float("nan"),
        "total_demand_t": total_demand,
        "total_population": float(demand["population"].sum()),
        "total_area_km2": total_area,
    }
