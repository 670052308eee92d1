"""Spatial statistics of a study's units with PySAL: Moran's I, LISA clusters, Getis–Ord Gi*, bivariate Moran.

Thin on purpose: spatial weights come from libpysal and every statistic from esda, the reference
implementations GeoDa's users check against; this module chooses the weights, seeds the
permutations, labels clusters and hot spots at a significance level, and returns tables.

* **Weights** (:func:`spatial_weights`): queen contiguity by default (units sharing an edge or a
  corner), or rook (an edge), or the ``k`` nearest centroids (``"knn:6"``), row-standardised.
* **Global Moran's I** (Moran 1950; esda ``Moran``): ``I``, its expectation ``EI = −1/(n − 1)``,
  the permutation z-score ``z = (I − mean(I_sim)) / sd(I_sim)`` and the pseudo p-value ``p_sim``
  (two-sided, folded as esda does), as GeoDa reports them.
* **Bivariate Moran** of supply against demand density (Wartenberg 1985; esda ``Moran_BV``):
  ``I = z_Sᵀ W z_D / (n − 1)``; its ``EI`` is the mean of the permutations (no closed form).
* **LISA** (Anselin 1995; esda ``Moran_Local``): local ``I_i`` and ``p_sim`` per unit; the cluster
  is ``HH``, ``LH``, ``LL`` or ``HL`` from the quadrant of (value, spatial lag) where
  ``p_sim < alpha``, else ``not significant`` (esda's own labels, abbreviated).
* **Getis–Ord Gi\\*** (Getis & Ord 1992, Ord & Getis 1995; esda ``G_Local(star=True)``): binary
  contiguity with each unit its own neighbour, row-standardised; ``gi_star_z`` is esda's ``Zs``,
  ``hot spot`` where ``Zs > 0`` and ``p_sim < alpha``, ``cold spot`` where ``Zs < 0``.

Permutations are seeded (``seed``), so one study gives one set of p-values. Units whose value is
not finite (an infinite ratio where a county has no supply) are left out of that variable's
statistics, and the weights are cut to the others.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from carbonscape.errors import InputError

log = logging.getLogger(__name__)

# Below this many units no permutation test can say much: with 4 units there are only 24 orderings.
MIN_UNITS = 5
WEIGHT_KINDS = ("queen", "rook", "knn:<k>")
CLUSTERS = {1: "HH", 2: "LH", 3: "LL", 4: "HL"}
NOT_SIGNIFICANT = "not significant"
HOT, COLD = "hot spot", "cold spot"
# The variables of a study's ratio table that are tested, with what each is.
VARIABLES = {
    "supply_t_per_km2": "supply density",
    "demand_t_per_km2": "demand density",
    "ratio": "supply–demand ratio",
}
BIVARIATE = ("supply_t_per_km2", "demand_t_per_km2")
STATISTICS_FILES = {"moran": "moran.csv", "lisa": "lisa.csv", "hotspots": "hotspots.csv"}


@dataclass(frozen=True)
class SpatialSettings:
    """How the spatial statistics are run (the study's ``[statistics]`` table).

    Attributes
    ----------
    weights
        ``"queen"``, ``"rook"`` or ``"knn:<k>"``; always row-standardised.
    permutations
        Random permutations for the pseudo p-values (GeoDa's default 999).
    seed
        Seed of the permutations: the same seed gives the same p-values.
    alpha
        Significance level of LISA clusters and hot spots.
    """

    weights: str = "queen"
    permutations: int = 999
    seed: int = 12345
    alpha: float = 0.05

    def __post_init__(self) -> None:
        problems = settings_problems(self.weights, self.permutations, self.seed, self.alpha)
        if problems:
            raise InputError("; ".join(problems))


def settings_problems(weights: Any, permutations: Any, seed: Any, alpha: Any) -> list[str]:
    """Every problem of a set of ``[statistics]`` settings, each naming the setting and the fix."""
    problems = []
    try:
        parse_weights(weights)
    except InputError as exc:
        problems.append(str(exc))
    if isinstance(permutations, bool) or not isinstance(permutations, (int, np.integer)) or not 99 <= permutations <= 99_999:
        problems.append(f"[statistics] permutations must be an integer from 99 to 99999 (999 is GeoDa's default), not {permutations!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        problems.append(f"[statistics] seed must be an integer from 0 to 2**32 - 1, not {seed!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        problems.append(f"[statistics] alpha must be a significance level between 0 and 1 (e.g. 0.05), not {alpha!r}")
    elif isinstance(permutations, (int, np.integer)) and not isinstance(permutations, bool) and permutations > 0 and 1 / (permutations + 1) >= alpha:
        problems.append(
            f"[statistics] with {permutations} permutations no p-value can fall below alpha = {alpha}; "
            f"use at least {int(np.ceil(1 / alpha))} permutations"
        )
    return problems


def parse_weights(kind: Any) -> tuple[str, int | None]:
    """``("queen", None)``, ``("rook", None)`` or ``("knn", k)`` from a weights setting."""
    if isinstance(kind, str):
        text = kind.strip().lower()
        if text in ("queen", "rook"):
            return text, None
        if text.startswith("knn"):
            number = text[3:].lstrip(":= ")
            if number.isdigit() and int(number) >= 1:
                return "knn", int(number)
    raise InputError(
        f"[statistics] weights {kind!r} is not one of {list(WEIGHT_KINDS)}; use \"queen\" (shared edge or corner, "
        "GeoDa's default), \"rook\" (shared edge) or e.g. \"knn:6\" (six nearest centroids)"
    )


def spatial_weights(units: gpd.GeoDataFrame, *, kind: str = "queen") -> Any:
    """Row-standardised spatial weights of the units, in the frame's row order.

    Parameters
    ----------
    units
        One polygon per unit, indexed by the unit's key.
    kind
        ``"queen"``, ``"rook"`` or ``"knn:<k>"`` (nearest centroids, measured in a local UTM
        projection when the frame is geographic).

    Returns
    -------
    libpysal.weights.W
        Row-standardised (``transform = "R"``); ids are the frame's index.
    """
    from libpysal import weights as lw

    name, k = parse_weights(kind)
    frame = gpd.GeoDataFrame(geometry=units.geometry.to_numpy(), index=pd.Index(units.index, name=None), crs=units.crs)
    with warnings.catch_warnings():
        # libpysal warns of islands and disconnected components; we say it once, with the units' names.
        warnings.simplefilter("ignore", UserWarning)
        if name == "queen":
            w = lw.Queen.from_dataframe(frame, use_index=True)
        elif name == "rook":
            w = lw.Rook.from_dataframe(frame, use_index=True)
        else:
            assert k is not None
            if k >= len(frame):
                raise InputError(f"[statistics] weights = \"knn:{k}\" needs more than {k} units; there are {len(frame)}")
            points = frame
            if frame.crs is not None and frame.crs.is_geographic:
                points = frame.to_crs(frame.estimate_utm_crs())
            points = gpd.GeoDataFrame(geometry=points.geometry.representative_point(), index=frame.index, crs=points.crs)
            w = lw.KNN.from_dataframe(points, k=k, use_index=True)
    w.transform = "R"
    return w


def lattice_weights(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int], *, kind: str = "queen") -> Any:
    """Row-standardised contiguity weights of grid cells, from libpysal's lattice.

    Cell ``(r, c)`` of a lattice of ``shape`` (cell rows, cell columns) has the id ``r · shape[1] +
    c`` (as :meth:`carbonscape.cells.CellGrid.cell_ids`). The whole lattice's sparse contiguity
    (libpysal ``lat2SW``: queen, a shared edge or corner; rook, a shared edge) is cut to the cells
    given, so a cell's neighbours are the given cells around it (cells without land are not units).
    Building it is vectorised: a million cells take seconds, where ``lat2W`` + ``w_subset`` take minutes.

    Parameters
    ----------
    rows, cols
        ``(n,)`` cell positions of the units, in the order of the table they go with.
    shape
        The whole lattice's cell rows and columns.
    kind
        ``"queen"`` or ``"rook"`` (``"knn:<k>"`` is built from the cells' polygons by
        :func:`spatial_weights` instead).

    Returns
    -------
    libpysal.weights.W
        Ids are the cell ids, in the order given; ``transform = "R"``.
    """
    from libpysal.weights import WSP, lat2SW

    name, _ = parse_weights(kind)
    if name not in ("queen", "rook"):
        raise InputError(f"lattice weights are queen or rook, not {kind!r}")
    ids = np.asarray(rows, dtype=np.int64) * int(shape[1]) + np.asarray(cols, dtype=np.int64)
    whole = lat2SW(int(shape[0]), int(shape[1]), criterion=name).tocsr()
    cut = whole[ids][:, ids]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        w = WSP(cut, id_order=ids.tolist()).to_W(silence_warnings=True)
    w.transform = "R"
    return w


@dataclass
class SpatialStatistics:
    """Moran's I, LISA and Gi* tables of one study.

    Attributes
    ----------
    moran
        One row per variable and one for the bivariate pair: ``variable, I, EI, z, p_sim``.
    lisa
        One row per unit and variable: ``<unit>, variable, local_i, p_sim, cluster``.
    hotspots
        One row per unit and variable: ``<unit>, variable, gi_star_z, p_sim, spot``.
    settings
        The settings used.
    islands
        Units without a neighbour under these weights.
    """

    moran: pd.DataFrame
    lisa: pd.DataFrame
    hotspots: pd.DataFrame
    settings: SpatialSettings
    islands: list[str] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)

    def write(self, out: str | os.PathLike[str]) -> dict[str, Path]:
        """``moran.csv``, ``lisa.csv`` and ``hotspots.csv`` in ``out``, each written atomically."""
        from carbonscape.io import atomic_path

        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        for name, table in (("moran", self.moran), ("lisa", self.lisa), ("hotspots", self.hotspots)):
            target = folder / STATISTICS_FILES[name]
            with atomic_path(target) as tmp:
                table.to_csv(tmp, index=False, encoding="utf-8", float_format="%.10g")
            self.files[name] = target
        return dict(self.files)


@contextlib.contextmanager
def _seeded(seed: int | None = None) -> Iterator[None]:
    """esda's global Moran statistics draw from numpy's global generator: seed it for the call and
    put the caller's state back afterwards. esda's notice that its conditional-randomization
    default will change in its next major release is silenced here: pyproject keeps esda < 3, so
    p_sim stays the folded (directed) pseudo p-value GeoDa reports."""
    state = np.random.get_state()
    if seed is not None:
        np.random.seed(seed)
    try:
        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            warnings.filterwarnings("ignore", message="The alternative hypothesis", category=DeprecationWarning)
            yield
    finally:
        np.random.set_state(state)


def _subset(w: Any, keep: np.ndarray, ids: Sequence[Any]) -> Any:
    if keep.all():
        return w
    from libpysal.weights import w_subset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        sub = w_subset(w, [ids[i] for i in np.flatnonzero(keep)])
    sub.transform = "R"
    return sub


@functools.cache
def _cache_esda_kernels() -> None:
    """Keep esda's numba kernels (conditional randomization for LISA and Gi*) in numba's on-disk
    cache. esda compiles them without ``cache=True``, so every process paid their compilation
    again: 20-60 s of each `carbonscape run` on this 2-core machine, whatever the number of units.
    ``compute_chunk`` takes the statistic as a first-class function, which numba cannot reuse from
    disk across processes, so a few seconds remain (measured in benchmarks/README.md)."""
    import esda.crand
    import esda.getisord
    import esda.moran
    from numba.core.registry import CPUDispatcher

    for module in (esda.crand, esda.moran, esda.getisord):
        for name in dir(module):
            kernel = getattr(module, name)
            if isinstance(kernel, CPUDispatcher) and not kernel._cache.__class__.__name__ == "FunctionCache":
                try:
                    kernel.enable_caching()
                except Exception as exc:  # a read-only site-packages without NUMBA_CACHE_DIR: compile as before
                    log.debug("esda kernel %s not cached: %s", name, exc)


def _direct_crand() -> Any:
    """esda's randomization through carbonscape's disk-cached loop (:mod:`carbonscape._crand`), or
    esda's own loop with an esda whose kernels are named otherwise."""
    try:
        from carbonscape._crand import patched
    except ImportError as exc:
        log.debug("esda's own randomization loop: %s", exc)
        return contextlib.nullcontext()
    return patched()


def global_moran(values: np.ndarray, w: Any, *, permutations: int = 999, seed: int = 12345) -> dict[str, float]:
    """Global Moran's I of ``values`` (aligned with ``w``'s ids): ``{I, EI, z, p_sim}``."""
    from esda.moran import Moran

    with _seeded(seed):
        moran = Moran(np.asarray(values, dtype=np.float64), w, transformation="r", permutations=permutations)
    return {"I": float(moran.I), "EI": float(moran.EI), "z": float(moran.z_sim), "p_sim": float(moran.p_sim)}


def bivariate_moran(x: np.ndarray, y: np.ndarray, w: Any, *, permutations: int = 999, seed: int = 12345) -> dict[str, float]:
    """Bivariate Moran's I of ``x`` against the spatial lag of ``y``: ``{I, EI, z, p_sim}`` (EI from
    the permutations)."""
    from esda.moran import Moran_BV

    with _seeded(seed):
        moran = Moran_BV(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64), w, transformation="r", permutations=permutations)
    return {"I": float(moran.I), "EI": float(moran.EI_sim), "z": float(moran.z_sim), "p_sim": float(moran.p_sim)}


def local_moran(values: np.ndarray, w: Any, *, permutations: int = 999, seed: int = 12345, alpha: float = 0.05) -> pd.DataFrame:
    """LISA per unit: ``local_i``, ``p_sim`` and ``cluster`` (HH, LH, LL, HL, not significant)."""
    from esda.moran import Moran_Local

    _cache_esda_kernels()
    with _seeded(), _direct_crand():
        lisa = Moran_Local(np.asarray(values, dtype=np.float64), w, transformation="r", permutations=permutations, seed=seed, n_jobs=1)
    significant = lisa.p_sim < alpha
    cluster = np.where(significant, [CLUSTERS.get(int(q), NOT_SIGNIFICANT) for q in lisa.q], NOT_SIGNIFICANT)
    return pd.DataFrame({"local_i": lisa.Is, "p_sim": lisa.p_sim, "cluster": cluster})


def getis_ord(values: np.ndarray, w: Any, *, permutations: int = 999, seed: int = 12345, alpha: float = 0.05) -> pd.DataFrame:
    """Getis–Ord Gi* per unit: ``gi_star_z``, ``p_sim`` and ``spot`` (hot spot, cold spot, not
    significant). ``w`` is taken as binary contiguity, each unit its own neighbour, row-standardised."""
    from esda.getisord import G_Local

    _cache_esda_kernels()
    binary = _binary_copy(w)
    with _seeded(), _direct_crand():
        gi = G_Local(np.asarray(values, dtype=np.float64), binary, transform="R", permutations=permutations, star=True, seed=seed, n_jobs=1)
    z = np.asarray(gi.Zs, dtype=np.float64)
    significant = np.asarray(gi.p_sim, dtype=np.float64) < alpha
    spot = np.where(significant & (z > 0), HOT, np.where(significant & (z < 0), COLD, NOT_SIGNIFICANT))
    # esda's G_Local keeps p_sim in float32 (0.1120000035 for 112/1000); each is (larger + 1) / (permutations + 1):
    # made again in float64 from that count, as LISA's p_sim are.
    p_sim = np.round(np.asarray(gi.p_sim, dtype=np.float64) * (permutations + 1)) / (permutations + 1)
    return pd.DataFrame({"gi_star_z": z, "p_sim": p_sim, "spot": spot})


def _binary_copy(w: Any) -> Any:
    from libpysal.weights import W

    binary = W({k: list(v) for k, v in w.neighbors.items()}, id_order=list(w.id_order), silence_warnings=True)
    binary.transform = "B"
    return binary


def spatial_statistics(
    units: gpd.GeoDataFrame,
    table: pd.DataFrame,
    *,
    settings: SpatialSettings | None = None,
    variables: Mapping[str, str] | Sequence[str] | None = None,
    bivariate: tuple[str, str] | None = BIVARIATE,
    unit: str = "county",
    w: Any = None,
) -> SpatialStatistics:
    """Moran's I, LISA clusters and Gi* hot spots of each variable, and the bivariate Moran of supply
    against demand.

    Parameters
    ----------
    units
        One polygon per unit, indexed by the unit's key (the same keys as ``table``).
    table
        One row per unit with the variables, e.g. the study's ratio table (``supply_t_per_km2``,
        ``demand_t_per_km2``, ``ratio``).
    settings
        Weights, permutations, seed and alpha (see :class:`SpatialSettings`).
    variables
        Columns of ``table`` to test (default :data:`VARIABLES`).
    bivariate
        The two columns of the bivariate Moran (``None``: none).
    unit
        Name of the unit column in ``lisa`` and ``hotspots`` (``"county"`` or ``"cell"``).
    w
        Ready-made libpysal weights over ``units``' index (e.g. a grid's lattice); built from the
        polygons when None.

    Returns
    -------
    SpatialStatistics

    Raises
    ------
    InputError
        Fewer than :data:`MIN_UNITS` units with values, units missing from ``table``, or units
        none of which has a neighbour.
    """
    settings = settings or SpatialSettings()
    names = list(VARIABLES if variables is None else variables)
    missing = [c for c in [*names, *(bivariate or ())] if c not in table.columns]
    if missing:
        raise InputError(f"spatial statistics: the table has no column(s) {missing}")
    keys = units.index
    absent = keys.difference(table.index)
    if len(absent):
        raise InputError(f"spatial statistics: {len(absent)} unit(s) have no row in the table, e.g. {list(absent[:5])}")
    if len(units) < MIN_UNITS:
        raise InputError(
            f"spatial statistics need at least {MIN_UNITS} units, this study has {len(units)}; "
            "set [statistics] enabled = false, or study more or smaller units (e.g. [units] grid cells)"
        )
    if w is None:
        w = spatial_weights(units, kind=settings.weights)
    ids = list(w.id_order)
    if [str(i) for i in ids] != [str(k) for k in keys]:
        raise InputError("spatial statistics: the weights' ids are not the units' keys in order")
    islands = [str(i) for i in w.islands]
    if len(islands) == len(ids):
        raise InputError(
            f"spatial statistics: no unit has a neighbour under {settings.weights!r} weights; use \"knn:4\" "
            "(nearest units) in [statistics] weights"
        )
    if islands:
        log.warning("%d unit(s) have no neighbour under %s weights, so their local statistics are 0: %s",
                    len(islands), settings.weights, islands[:10])
    rows = table.reindex(keys)
    common = {"permutations": settings.permutations, "seed": settings.seed}
    moran_rows, lisa_parts, hot_parts = [], [], []
    for name in names:
        values = rows[name].to_numpy(dtype=np.float64)
        keep = np.isfinite(values)
        if keep.sum() < MIN_UNITS:
            raise InputError(
                f"spatial statistics of {name}: only {int(keep.sum())} unit(s) have a finite value, at least {MIN_UNITS} are needed"
            )
        if not keep.all():
            log.warning("spatial statistics of %s leave out %d unit(s) without a finite value: %s",
                        name, int((~keep).sum()), [str(k) for k in keys[~keep]][:10])
        if np.nanstd(values[keep]) == 0:
            log.warning("every unit has the same %s: no spatial statistic of it", name)
            moran_rows.append({"variable": name, "I": np.nan, "EI": np.nan, "z": np.nan, "p_sim": np.nan})
            continue
        sub = _subset(w, keep, ids)
        moran_rows.append({"variable": name, **global_moran(values[keep], sub, **common)})
        local = local_moran(values[keep], sub, alpha=settings.alpha, **common)
        local.insert(0, "variable", name)
        local.insert(0, unit, keys[keep].to_numpy())
        lisa_parts.append(local)
        hot = getis_ord(values[keep], sub, alpha=settings.alpha, **common)
        hot.insert(0, "variable", name)
        hot.insert(0, unit, keys[keep].to_numpy())
        hot_parts.append(hot)
    if bivariate is not None:
        x, y = (rows[c].to_numpy(dtype=np.float64) for c in bivariate)
        keep = np.isfinite(x) & np.isfinite(y)
        if keep.sum() >= MIN_UNITS and np.std(x[keep]) > 0 and np.std(y[keep]) > 0:
            moran_rows.append({"variable": f"{bivariate[0]} ~ {bivariate[1]}",
                               **bivariate_moran(x[keep], y[keep], _subset(w, keep, ids), **common)})
    empty_lisa = pd.DataFrame(columns=[unit, "variable", "local_i", "p_sim", "cluster"])
    empty_hot = pd.DataFrame(columns=[unit, "variable", "gi_star_z", "p_sim", "spot"])
    return SpatialStatistics(
        moran=pd.DataFrame(moran_rows, columns=["variable", "I", "EI", "z", "p_sim"]),
        lisa=pd.concat(lisa_parts, ignore_index=True) if lisa_parts else empty_lisa,
        hotspots=pd.concat(hot_parts, ignore_index=True) if hot_parts else empty_hot,
        settings=settings,
        islands=islands,
    )
