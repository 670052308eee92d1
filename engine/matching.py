"""Supply–demand matching indices beside the ratio: ESDR, balance, z-score quadrants, coupling coordination.

Every index is computed from the same supply and demand densities, in the same units, as the
supply–demand ratio of :func:`carbonscape.ratio.supply_demand_ratio` (``supply_t_per_km2`` and
``demand_t_per_km2`` of its table), one row per unit (county or grid cell). The module is pure
pandas/numpy: a table in, a table out.

Formulas (S = supply density, D = demand density of unit i; max, mean, sd over all units):

* **ESDR**, the ecological supply–demand ratio of Li et al. (2016), *Ecological Indicators* 60,
  1008–1016: ``esdr_i = (S_i − D_i) / ((S_max + D_max) / 2)``. Positive: surplus; negative: deficit;
  bounded by ±2.
* **Balance**: ``balance_i = S_i − D_i`` (surplus > 0, deficit < 0), in the densities' units.
* **Quadrant** from the signs of the z-scores ``z = (x − mean) / sd`` (population sd) of S and of D,
  as in the supply–demand matching quadrants of e.g. Chen et al. (2019), *Science of the Total
  Environment* 650, 1426–1439: ``HS-HD`` (z_S > 0, z_D > 0), ``HS-LD``, ``LS-HD``, ``LS-LD``. A
  z-score of exactly 0 (a value at the mean) counts as low.
* **Coupling coordination degree** (the coupling coordination model common in this literature):
  ``U1, U2`` = min–max normalised S and D, ``C = 2·√(U1·U2) / (U1 + U2)`` (coupling degree, 0 when
  ``U1 + U2 = 0``), ``T = α·U1 + β·U2`` (comprehensive index, ``α + β = 1``, 0.5 each by default),
  ``ccd = √(C·T)``.

Under the ratio's ``"co2_per_c"`` units S is t C/km² and D t CO2/km², and the balance subtracts one from
the other exactly as the ratio divides them; use ``units = "carbon"`` for a balance in t C/km².
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from carbonscape.errors import InputError

log = logging.getLogger(__name__)

QUADRANTS = ("HS-HD", "HS-LD", "LS-HD", "LS-LD")
# The columns :func:`matching_indices` adds, in order, with what each holds.
COLUMNS = {
    "balance": "supply density − demand density (the ratio's units)",
    "esdr": "(S − D) / ((S_max + D_max) / 2), Li et al. 2016",
    "z_supply": "z-score of the supply density (population sd)",
    "z_demand": "z-score of the demand density (population sd)",
    "quadrant": "HS-HD, HS-LD, LS-HD or LS-LD from the signs of z_supply and z_demand",
    "coupling": "C = 2√(U1·U2)/(U1 + U2) on min–max normalised supply and demand",
    "ccd": "coupling coordination degree √(C·T), T = α·U1 + β·U2",
}


def esdr(supply: np.ndarray, demand: np.ndarray) -> np.ndarray:
    """The ecological supply–demand ratio ``(S − D) / ((S_max + D_max) / 2)`` (Li et al. 2016).

    Parameters
    ----------
    supply, demand
        Densities per unit, shape ``(n,)``, in the ratio's units. NaN values are left out of the
        maxima and give NaN.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` float64 in [−2, 2]; all NaN when ``S_max + D_max`` is 0 or not finite.
    """
    s, d = _as_float(supply), _as_float(demand)
    scale = (_nanmax(s) + _nanmax(d)) / 2.0
    if not np.isfinite(scale) or scale == 0:
        return np.full(s.shape, np.nan)
    return (s - d) / scale


def zscores(values: np.ndarray) -> np.ndarray:
    """``(x − mean) / sd`` with the population sd (ddof = 0), NaN values left out of both; all
    zeros when every finite value is the same."""
    x = _as_float(values)
    finite = np.isfinite(x)
    if not finite.any():
        return np.full(x.shape, np.nan)
    mean, sd = x[finite].mean(), x[finite].std()
    if sd == 0:
        return np.where(finite, 0.0, np.nan)
    return np.where(finite, (x - mean) / sd, np.nan)


def quadrants(supply: np.ndarray, demand: np.ndarray) -> np.ndarray:
    """``HS-HD``, ``HS-LD``, ``LS-HD`` or ``LS-LD`` per unit from the signs of the z-scores of supply
    and demand (``> 0`` is high; a value at the mean is low); ``""`` where either is not finite."""
    zs, zd = zscores(supply), zscores(demand)
    out = np.where(zs > 0, "HS", "LS").astype(object) + "-" + np.where(zd > 0, "HD", "LD").astype(object)
    out[~(np.isfinite(zs) & np.isfinite(zd))] = ""
    return out.astype(str)


def minmax(values: np.ndarray) -> np.ndarray:
    """``(x − min) / (max − min)`` over the finite values; NaN everywhere when max = min (no spread
    to normalise)."""
    x = _as_float(values)
    lo, hi = _nanmin(x), _nanmax(x)
    if not np.isfinite(lo) or not np.isfinite(hi) or hi == lo:
        return np.full(x.shape, np.nan)
    return (x - lo) / (hi - lo)


def coupling_coordination(
    supply: np.ndarray, demand: np.ndarray, *, alpha: float = 0.5, beta: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Coupling degree C and coupling coordination degree D = √(C·T) of supply and demand.

    Parameters
    ----------
    supply, demand
        Densities per unit, shape ``(n,)``; min–max normalised here to ``U1``, ``U2``.
    alpha, beta
        Weights of supply and demand in ``T = α·U1 + β·U2``: non-negative, summing to 1.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``C`` and ``ccd``, each ``(n,)`` in [0, 1]; ``C = 0`` where ``U1 + U2 = 0``; NaN where a
        side has no spread (every unit the same) or a value is not finite.

    Raises
    ------
    InputError
        Weights that are negative or do not sum to 1.
    """
    check_weights(alpha, beta)
    u1, u2 = minmax(supply), minmax(demand)
    total = u1 + u2
    with np.errstate(divide="ignore", invalid="ignore"):
        coupling = np.where(total > 0, 2.0 * np.sqrt(u1 * u2) / total, 0.0)
    coupling = np.where(np.isfinite(total), coupling, np.nan)
    comprehensive = alpha * u1 + beta * u2
    return coupling, np.sqrt(coupling * comprehensive)


def check_weights(alpha: float, beta: float) -> None:
    """Refuse coupling-coordination weights that are not two non-negative numbers summing to 1."""
    for name, value in (("alpha", alpha), ("beta", beta)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not np.isfinite(value) or value < 0:
            raise InputError(f"the coupling coordination weight {name} must be a number in [0, 1], not {value!r}")
    if abs(alpha + beta - 1.0) > 1e-9:
        raise InputError(
            f"the coupling coordination weights must sum to 1 (alpha + beta = {alpha} + {beta} = {alpha + beta:g}); "
            "e.g. alpha = 0.5, beta = 0.5"
        )


def matching_indices(
    ratio: pd.DataFrame,
    *,
    alpha: float = 0.5,
    beta: float = 0.5,
    supply_column: str = "supply_t_per_km2",
    demand_column: str = "demand_t_per_km2",
) -> pd.DataFrame:
    """Every matching index per unit, from the ratio table's densities.

    Parameters
    ----------
    ratio
        One row per unit (county or cell), as :func:`carbonscape.supply_demand_ratio` returns it:
        ``supply_t_per_km2`` and ``demand_t_per_km2`` in the ratio's units.
    alpha, beta
        Coupling coordination weights of supply and demand (see :func:`coupling_coordination`).
    supply_column, demand_column
        The density columns to use.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``ratio``: ``balance, esdr, z_supply, z_demand, quadrant, coupling, ccd``
        (see :data:`COLUMNS`).

    Raises
    ------
    InputError
        A missing density column or bad weights.
    """
    missing = [c for c in (supply_column, demand_column) if c not in ratio.columns]
    if missing:
        raise InputError(f"the ratio table has no {missing} column(s); matching needs supply and demand densities per unit")
    s = ratio[supply_column].to_numpy(dtype=np.float64)
    d = ratio[demand_column].to_numpy(dtype=np.float64)
    coupling, ccd = coupling_coordination(s, d, alpha=alpha, beta=beta)
    frame = pd.DataFrame(
        {
            "balance": s - d,
            "esdr": esdr(s, d),
            "z_supply": zscores(s),
            "z_demand": zscores(d),
            "quadrant": quadrants(s, d),
            "coupling": coupling,
            "ccd": ccd,
        },
        index=ratio.index,
    )
    flat = [name for name, v in (("supply", s), ("demand", d)) if np.isfinite(v).any() and _nanmax(v) == _nanmin(v)]
    if flat:
        log.info("every unit has the same %s density: coupling coordination is undefined (NaN)", " and ".join(flat))
    return frame


def _as_float(values: np.ndarray) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    return np.where(np.isfinite(x), x, np.nan)


def _nanmax(x: np.ndarray) -> float:
    finite = x[np.isfinite(x)]
    return float(finite.max()) if finite.size else float("nan")


def _nanmin(x: np.ndarray) -> float:
    finite = x[np.isfinite(x)]
    return float(finite.min()) if finite.size else float("nan")
