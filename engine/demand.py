"""Carbon demand per county (METHOD.md formula 3): per-capita emission × population density.

``CDE_i = (Cem / Yyn) × Pd_i`` with ``Pd_i = population_i / A_i``; or, with a county emission
inventory (e.g. CEADs), ``CDE_i = emissions_i / A_i``. Areas are the polygons' true areas on the
ellipsoid; the raster's pixel-count area is reported beside them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from carbonscape import remote
from carbonscape.errors import InputError, TableError
from carbonscape.tables import HEADER_SEARCH_ROWS, read_table


def per_capita_emission(*, total_emissions_t: float, total_population: float) -> float:
    """``Cem / Yyn``: the region's emissions per person (t per person per year)."""
    for name, value in (("total_emissions_t", total_emissions_t), ("total_population", total_population)):
        if not isinstance(value, (int, float, np.number)) or not np.isfinite(value) or value <= 0:
            raise InputError(f"{name} must be a positive number, not {value!r}")
    return float(total_emissions_t) / float(total_population)


def check_county_table(
    path: str | os.PathLike[str],
    *,
    key: str,
    sheet: str | int | None = None,
    numeric: Sequence[str] = (),
) -> tuple[pd.DataFrame | None, list[str]]:
    """Read a county table (CSV or XLSX) and list every problem in it at once.

    Parameters
    ----------
    path
        The table.
    key
        The column naming each county (read as text).
    sheet
        The Excel sheet (default: the first).
    numeric
        Columns that must be present and hold a non-negative number in every row (population,
        emissions).

    Returns
    -------
    (pandas.DataFrame or None, list of str)
        The table indexed by ``key`` (rows without a key left out, repeated keys kept so that
        matching the keys against the polygons still sees them), or None when the file cannot be
        read or has no ``key`` column; and every problem found: missing columns, empty or repeated
        keys, bad numbers. Each names the file, the rows and the fix. Row numbers are the file's,
        the header being row 1.
    """
    source = path if remote.is_url(path) else Path(path)
    try:
        frame, fmt = read_table(source, columns=[key], text_columns=[key], sheet=sheet)
    except InputError as exc:
        return None, [str(exc)]
    frame = frame.dropna(how="all")
    rows = pd.Series(frame.index.to_numpy(), index=frame.index)
    header_note = f" (the header found on row {fmt.header_row})" if fmt.header_row != 1 else ""
    problems: list[str] = []
    if key not in frame.columns:
        problems.append(
            f"{source}: no column {key!r} to match the counties by in the first {HEADER_SEARCH_ROWS} rows; the columns of row "
            f"{fmt.header_row} are {list(frame.columns)}. Name the right one in the study file ([demand] key)"
        )
    missing = [c for c in numeric if c not in frame.columns]
    if missing:
        problems.append(
            f"{source}: no column(s) {missing}; the columns are {list(frame.columns)}{header_note}. Rename them or name the right ones in the study file"
        )
    if key not in frame.columns:
        return None, problems
    no_key = frame[key].isna() | (frame[key].astype(str).str.strip() == "")
    if no_key.any():
        problems.append(f"{source}: rows {_listed(rows[no_key].tolist())} have no {key!r}; give every row its county")
    frame, rows = frame[~no_key], rows[~no_key]
    keys = frame[key].astype(str).str.strip()
    repeated = keys[keys.duplicated(keep=False)]
    if not repeated.empty:
        shown = "; ".join(f"{value!r} on rows {rows[keys == value].tolist()}" for value in repeated.unique()[:10])
        more = f" (and {repeated.nunique() - 10} more)" if repeated.nunique() > 10 else ""
        problems.append(f"{source}: {key!r} repeats: {shown}{more}; keep one row per county")
    for column in numeric:
        if column in frame.columns:
            bad = _bad_numbers(frame[column], labels=keys, rows=rows)
            if bad:
                problems.append(f"{source}: {column!r} must be a non-negative number in every row; bad: {bad}. Fix these cells")
    frame = frame.set_axis(pd.Index(keys, name="county"), axis=0).drop(columns=[key])
    frame.attrs["source"] = str(source)
    frame.attrs["format"] = fmt.describe()
    return frame, problems


def read_county_table(
    path: str | os.PathLike[str],
    *,
    key: str,
    sheet: str | int | None = None,
    numeric: Sequence[str] = (),
) -> pd.DataFrame:
    """Read a county table (CSV or XLSX) indexed by ``key`` (as text).

    Raises :class:`TableError` listing every problem :func:`check_county_table` finds (repeated or
    empty keys, missing columns, non-numeric or negative values in the ``numeric`` columns).
    """
    frame, problems = check_county_table(path, key=key, sheet=sheet, numeric=numeric)
    if problems or frame is None:
        raise TableError("; ".join(problems))
    return frame


def _listed(values: list[int], limit: int = 10) -> str:
    shown = str(values[:limit])
    return shown if len(values) <= limit else f"{shown[:-1]}, ... ({len(values)} in all)]"


def _bad_numbers(values: pd.Series, *, labels: pd.Series | pd.Index, rows: pd.Series | None = None, allow_zero: bool = True) -> str:
    """``'C002' (row 3): 'abc', ...`` for the values that are not non-negative numbers, or ''."""
    parsed = pd.to_numeric(values, errors="coerce")
    bad = parsed.isna() | (parsed < 0) | ~np.isfinite(parsed.fillna(0))
    if not allow_zero:
        bad |= parsed == 0
    if not bad.any():
        return ""
    label_of = pd.Series(list(labels), index=values.index)
    parts = []
    for position in np.flatnonzero(bad.to_numpy())[:10]:
        index = values.index[position]
        raw = values.iloc[position]
        raw = raw.item() if isinstance(raw, np.generic) else raw  # -1, not np.int64(-1)
        where = f" (row {rows.loc[index]})" if rows is not None else ""
        parts.append(f"{label_of.loc[index]!r}{where}: {'empty' if pd.isna(raw) else repr(raw)}")
    more = f" and {int(bad.sum()) - 10} more" if bad.sum() > 10 else ""
    return ", ".join(parts) + more


def _numeric(table: pd.DataFrame, column: str, *, allow_zero: bool = True) -> pd.Series:
    source = table.attrs.get("source")
    where = f"{source}: " if source else ""
    if column not in table.columns:
        raise TableError(f"{where}the county table has no column {column!r}; the columns are {list(table.columns)}")
    bad = _bad_numbers(table[column], labels=table.index, allow_zero=allow_zero)
    if bad:
        raise TableError(f"{where}{column!r} must be a non-negative number for every county; bad: {bad}")
    return pd.to_numeric(table[column], errors="coerce").astype(np.float64)


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
        demand_t_per_km2, share_pct`` (share of the sum of county densities, as METHOD.md's Table 3 gives it).
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

    ``sum_of_county_densities_t_per_km2`` is the convention of tabulated county densities summed (a sum of
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


# What each region total is, for demand_totals.csv: (unit, meaning).
TOTALS = {
    "sum_of_county_densities_t_per_km2": (
        "t CO2/km²",
        "sum over the counties of each county's demand density (the total some studies tabulate); a sum of densities, not the region's density",
    ),
    "regional_density_t_per_km2": ("t CO2/km²", "the region's demand density: total demand / total area"),
    "total_demand_t": ("t CO2", "yearly emissions of all the counties together (per-capita emission × population, or the county inventory)"),
    "total_population": ("people", "population of all the counties together"),
    "total_area_km2": ("km²", "area of all the counties together (polygon areas on the ellipsoid)"),
}


def demand_totals_table(demand: pd.DataFrame, *, per_capita_t: float | None = None) -> pd.DataFrame:
    """The region totals as a table, one row per total: ``total, value, unit, meaning``.

    Parameters
    ----------
    demand
        From :func:`demand_by_county`.
    per_capita_t
        The per-capita emission used, added as a row when given.

    Returns
    -------
    pandas.DataFrame
        The totals of :func:`demand_totals`, each with its unit and what it means.
    """
    totals = demand_totals(demand)
    rows = [{"total": name, "value": totals[name], "unit": unit, "meaning": meaning} for name, (unit, meaning) in TOTALS.items()]
    if per_capita_t is not None:
        rows.append({"total": "per_capita_t", "value": float(per_capita_t), "unit": "t CO2/person", "meaning": "emission per person used for the demand (Cem / Yyn, or as given)"})
    return pd.DataFrame(rows, columns=["total", "value", "unit", "meaning"])
