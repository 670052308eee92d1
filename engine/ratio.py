"""Supply–demand ratio per county (METHOD.md formula 4): demand density over supply density.

``R_i = CDE_i / (C_total_i / A_i)``, which equals the county's yearly emissions over its carbon
stock. ``R_i < 1``: supply exceeds demand.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from carbonscape.errors import InputError, TableError

log = logging.getLogger(__name__)

CO2_TO_C = 12.0 / 44.0
# The only list of ratio units (the study settings take their choices from here).
UNITS = {
    "co2_per_c": "demand in t CO2/km² over supply in t C/km², compared directly "
                 "(ratio = demand density ÷ supply density, with no conversion between CO2 and C)",
    "carbon": "demand converted to carbon (× 12/44) so both sides are t C/km²",
}
# Older names still accepted for a ratio unit: "paper" was the first name of "co2_per_c".
UNIT_ALIASES = {"paper": "co2_per_c"}
# The unit of the ratio table's ``demand_t_per_km2`` under each convention: demand_by_county's
# column of the same name is always t CO2/km², this one is not.
DEMAND_UNITS = {"co2_per_c": "t CO2/km²", "carbon": "t C/km²"}


def ratio_units(name: str) -> str:
    """The current name of a ratio unit (an old alias such as ``"paper"`` is translated).

    Raises
    ------
    InputError
        When ``name`` is neither a unit of :data:`UNITS` nor an alias of one.
    """
    name = UNIT_ALIASES.get(name, name)
    if name not in UNITS:
        raise InputError(f"ratio units {name!r} is not one of {', '.join(UNITS)}")
    return name


def supply_demand_ratio(supply_t: pd.Series, demand: pd.DataFrame, *, units: str = "co2_per_c",
                        supply_area_km2: pd.Series | None = None) -> pd.DataFrame:
    """The ratio per county, with zero supply flagged as an infinite ratio rather than an error.

    Parameters
    ----------
    supply_t
        Carbon supply per county (t C), indexed by county.
    demand
        From :func:`carbonscape.demand.demand_by_county` (``area_km2``, ``demand_t_per_km2``).
    units
        ``"co2_per_c"`` or ``"carbon"`` (see :data:`UNITS`; ``"paper"`` is accepted for ``"co2_per_c"``).
    supply_area_km2
        The area (km²) each county's supply density is over, indexed by county (default: its
        ``area_km2``): counties the land-use raster covers only in part, accepted by a lowered
        ``min_coverage``, get their supply density over the covered area (demand stays over the
        whole county, where its people live).

    Returns
    -------
    pandas.DataFrame
        Indexed by county: ``supply_t, area_km2, supply_t_per_km2, demand_t_per_km2, ratio,
        ratio_infinite, demand_unit``. ``demand_unit`` says what ``demand_t_per_km2`` holds here
        (:data:`DEMAND_UNITS`): t CO2/km² for ``"co2_per_c"``, t C/km² for ``"carbon"``.
    """
    units = ratio_units(units)
    supply_keys, demand_keys = set(supply_t.index), set(demand.index)
    if supply_keys != demand_keys:
        raise TableError(
            f"supply and demand cover different counties: only in supply {sorted(supply_keys - demand_keys)[:20]}, "
            f"only in demand {sorted(demand_keys - supply_keys)[:20]}"
        )
    order = list(demand.index)
    frame = pd.DataFrame(index=pd.Index(order, name="county"))
    frame["supply_t"] = supply_t.astype(np.float64).reindex(order)
    frame["area_km2"] = demand["area_km2"].astype(np.float64)
    supply_area = frame["area_km2"] if supply_area_km2 is None else supply_area_km2.astype(np.float64).reindex(order).fillna(frame["area_km2"])
    with np.errstate(divide="ignore", invalid="ignore"):
        frame["supply_t_per_km2"] = frame["supply_t"] / supply_area
    factor = CO2_TO_C if units == "carbon" else 1.0
    frame["demand_t_per_km2"] = demand["demand_t_per_km2"].astype(np.float64) * factor
    with np.errstate(divide="ignore", invalid="ignore"):
        if "emissions_t" in demand.columns:
            # Both densities are over the county's one area, which cancels: emissions over supply, so
            # that counties alike in supply and emissions get one ratio (the densities' quotient
            # would differ in its last bit and split a tie).
            ratio = demand["emissions_t"].astype(np.float64) * factor / frame["supply_t"]
            if supply_area_km2 is not None:  # exactly 1 where supply is over the whole county
                ratio = ratio * (supply_area / frame["area_km2"])
        else:
            ratio = frame["demand_t_per_km2"] / frame["supply_t_per_km2"]
    infinite = frame["supply_t"] <= 0
    ratio[infinite & (frame["demand_t_per_km2"] > 0)] = np.inf
    ratio[infinite & (frame["demand_t_per_km2"] <= 0)] = np.nan
    frame["ratio"] = ratio
    frame["ratio_infinite"] = np.isinf(ratio)
    frame["demand_unit"] = DEMAND_UNITS[units]
    if frame["ratio_infinite"].any():
        log.warning("counties with no carbon supply get an infinite ratio: %s", list(frame.index[frame["ratio_infinite"]])[:10])
    return frame
