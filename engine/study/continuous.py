"""The study's ``[continuous]`` section: its rasters checked before compute, ingested onto the
land-use grid, summed in the supply pass, and turned into population, sequestration and corrected
supply (see :mod:`carbonscape.continuous`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from carbonscape import remote
from carbonscape.accumulate import Accumulation
from carbonscape.continuous import (
    ContinuousError,
    continuous_table,
    corrected_supply,
    factor_table,
    ingest_continuous,
    open_continuous,
    population_by_county,
    raster_problems,
    read_source,
    resampling_needed,
    sequestration_by_county,
    value_specs,
    values_by_county,
)
from carbonscape.study.file import Study

log = logging.getLogger(__name__)

__all__ = ["ContinuousRun", "continuous_lines", "continuous_paths", "continuous_problems", "factor_pools", "prepare_continuous"]

FILES = {"values": "continuous_by_county.csv", "sequestration": "sequestration_by_county.csv"}


@dataclass(frozen=True)
class _Raster:
    name: str  # how the supply pass reads it ("population", "npp", "factor c_soil"...)
    path: Path | str  # a local path or an s3:// / http(s):// URL
    quantity: str
    setting: str
    factor: bool = False


def _resolve(study: Study, value: str | Path) -> Path | str:
    if remote.is_url(value):
        return str(value).strip().rstrip("/")
    path = Path(value).expanduser()
    return path if path.is_absolute() else study.folder / path


def _rasters(study: Study) -> list[_Raster]:
    """Every raster of ``[continuous]``; a factor raster shared by several pools is read once."""
    out: list[_Raster] = []
    if study.setting("continuous", "population") is not None:
        out.append(_Raster("population", _resolve(study, study.setting("continuous", "population")), "count", "[continuous] population"))
    if study.setting("continuous", "npp") is not None:
        out.append(_Raster("npp", _resolve(study, study.setting("continuous", "npp")), "density", "[continuous] npp"))
    seen: dict[Path | str, str] = {}
    for pool, value in (study.setting("continuous", "factors") or {}).items():
        path = _resolve(study, value)
        if path not in seen:
            seen[path] = f"factor {len(seen) + 1}"
            out.append(_Raster(seen[path], path, "density", f"[continuous] factors.{pool}", factor=True))
    return out


def factor_pools(study: Study) -> dict[str, str]:
    """Pool → the name its factor raster is read under in the pass."""
    names = {r.path: r.name for r in _rasters(study) if r.factor}
    return {pool: names[_resolve(study, value)] for pool, value in (study.setting("continuous", "factors") or {}).items()}


def continuous_paths(study: Study) -> list[tuple[str, Path | str]]:
    """The section's input files with their roles (for provenance)."""
    paths = [(r.setting.removeprefix("[continuous] "), r.path) for r in _rasters(study)]
    if study.setting("continuous", "factor_table") is not None:
        paths.append(("factor_table", _resolve(study, study.setting("continuous", "factor_table"))))
    return paths


def continuous_problems(study: Study, inputs: Any) -> list[str]:
    """What `check` finds wrong with ``[continuous]`` before anything is computed: unreadable
    rasters, another CRS without ``resampling``, a raster leaving more than ``max_uncovered`` of
    the counties outside its extent, negative population or factors, a bad factor table, and a
    [demand] without a table or a population raster."""
    problems: list[str] = []
    population = study.setting("continuous", "population")
    if study.demand.table is None and population is None:
        problems.append("[demand] needs `table` (CSV or XLSX with one row per county), or [continuous] population (people per pixel)")
    if study.demand.table is None and study.demand.emissions_column is not None:
        problems.append("[demand] emissions_column needs `table`: the county inventory is a column of it")
    landuse = inputs.rasters[0].grid if getattr(inputs, "rasters", None) else None
    allowed = float(study.setting("continuous", "max_uncovered", 0.001))
    keys = list(inputs.polygons[study.id_field].astype(str)) if inputs.polygons is not None and study.id_field is not None else None
    for raster in _rasters(study):  # the one check of `check`, `run` and `supply` (carbonscape.continuous.raster_problems)
        found, scan = raster_problems(raster.path, setting=raster.setting, quantity=raster.quantity, factor=raster.factor,
                                      polygons=inputs.polygons, keys=keys, landuse=landuse,
                                      resampling=study.setting("continuous", "resampling", "none"),
                                      resampling_setting="[continuous] resampling", max_uncovered=allowed)
        problems.extend(found)
        if scan is not None:
            _SCANS[str(raster.path)] = scan
    table = study.setting("continuous", "factor_table")
    if table is not None and inputs.polygons is not None and study.id_field is not None:
        try:
            factor_table(table, key=study.setting("continuous", "factor_key") or study.id_field,
                         counties=list(inputs.polygons[study.id_field].astype(str)))
        except ContinuousError as exc:
            problems.append(f"[continuous] factor_table: {exc}")
    return problems


# What check's scan of each raster found (by path), for its description lines.
_SCANS: dict[str, Any] = {}


def continuous_lines(study: Study, inputs: Any) -> list[str]:
    """What `check` says of each raster of ``[continuous]``: its grid and how it meets the land use's."""
    landuse = inputs.rasters[0].grid if getattr(inputs, "rasters", None) else None
    words = {"none": "on the land use's pixels", "nearest": "resampled by nearest neighbour onto the land use's grid",
             "reproject": "reprojected by nearest neighbour onto the land use's grid"}
    lines = []
    for r in _rasters(study):
        try:
            source = read_source(r.path)
        except ContinuousError:
            continue
        xres, yres = source.grid.resolution
        how = words[resampling_needed(source.grid, landuse)] if landuse is not None else ""
        what = {"population": "people per pixel", "npp": f"NPP ({study.setting('continuous', 'npp_units', 'g C m-2 yr-1')})"}.get(
            r.name, r.setting.removeprefix("[continuous] "))
        scan = _SCANS.get(str(r.path))
        held = int(scan.pixels.sum()) if scan is not None else 0
        empty = f"; {100 * (1 - int(scan.valued.sum()) / held):.2f}% of its {held:,} pixels over the counties without a value" if held else ""
        lines.append(f"continuous {remote.name_of(r.path)}: {what}, {source.grid.shape[0]} × {source.grid.shape[1]} pixels of {xres:.6g} × {yres:.6g} "
                     f"({source.grid.crs.name}), nodata {source.nodata if source.nodata is not None else 'none'}; {how}{empty}")
    return lines


@dataclass
class ContinuousRun:
    """The continuous rasters of one study run: their stores, what they add to the supply pass,
    and (after :meth:`finish`) what they gave."""

    study: Study
    stores: dict[str, Path] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    values: dict[str, pd.DataFrame] = field(default_factory=dict)
    sequestration: pd.DataFrame | None = None

    @property
    def active(self) -> bool:
        """Whether the study has any continuous raster or a factor table."""
        return bool(_rasters(self.study)) or self.study.setting("continuous", "factor_table") is not None

    @property
    def specs(self) -> list[Accumulation]:
        return [spec for r in _rasters(self.study) for spec in value_specs(r.name, factor=r.factor)]

    def rasters(self) -> dict[str, Any]:
        return {name: open_continuous(path).data for name, path in self.stores.items()}

    @property
    def population(self) -> pd.Series | None:
        return population_by_county(self.values["population"].reset_index()) if "population" in self.values else None

    def finish(self, supply_result: Any, *, zone_table: Any, pools: Any) -> Any:
        """Tables of the pass's sums; the supply corrected when factors are given (else as it was)."""
        counts = supply_result.tables["counts"]
        for r in _rasters(self.study):
            table = values_by_county(supply_result.tables[f"values {r.name}"], zone_table=zone_table, counts=counts).set_index("county")
            self.values[r.name] = table
            in_units = int(table["pixels"].sum() + table["pixels_without_value"].sum())
            share = float(table["pixels_without_value"].sum() / in_units) if in_units else 0.0
            self.provenance[r.name]["pixels_without_value_share"] = share
            if share > float(self.study.setting("continuous", "max_uncovered", 0.001)):
                worst = (table["pixels_without_value"] / (table["pixels"] + table["pixels_without_value"]).clip(lower=1)).nlargest(3)
                log.warning("%s (%s) has no value on %.2f%% of the counties' pixels (its nodata inside its extent; most in %s): they add "
                            "nothing to its sums%s", remote.name_of(r.path), r.setting, 100 * share,
                            ", ".join(f"{k} {100 * v:.0f}%" for k, v in worst.items()),
                            " and keep their uncorrected densities" if r.factor else "")
        if "npp" in self.values:
            self.sequestration = sequestration_by_county(self.values["npp"].reset_index(),
                                                         units=self.study.setting("continuous", "npp_units", "g C m-2 yr-1"))
        pools_by_factor = factor_pools(self.study)
        table_path = self.study.setting("continuous", "factor_table")
        if not pools_by_factor and table_path is None:
            return supply_result
        county_factors = None
        if table_path is not None:
            county_factors = factor_table(table_path, key=self.study.setting("continuous", "factor_key") or self.study.id_field,
                                          counties=[str(v) for v in zone_table.values])
        fixed = corrected_supply(
            supply_result, pools, areas_m2=supply_result.tables["areas"], zone_table=zone_table,
            pool_areas_m2={pool: supply_result.tables[f"factor_areas {name}"] for pool, name in pools_by_factor.items()},
            county_factors=county_factors,
        )
        fixed.tables = supply_result.tables
        fixed.summary["density_correction"] = {"rasters": {pool: self.provenance[name]["path"] for pool, name in pools_by_factor.items()},
                                               "table": None if table_path is None else str(table_path)}
        return fixed

    @property
    def corrects(self) -> bool:
        """Whether factor rasters or a factor table correct the densities (the pixel maps are then
        written by :meth:`write_pixel_maps`, not by the supply pass)."""
        return bool(factor_pools(self.study)) or self.study.setting("continuous", "factor_table") is not None

    def write_pixel_maps(self, out: Path, *, landuse: Path, zones: Path, pools: Any, run: Any, progress: bool = False) -> dict[str, Path]:
        """Carbon per pixel of the corrected densities (:func:`carbonscape.continuous.write_corrected_pixel_maps`):
        each pool's factor raster and the county's factor of the table, as in the supply tables."""
        from carbonscape.continuous import write_corrected_pixel_maps
        from carbonscape.rasterize import open_zones

        table_path = self.study.setting("continuous", "factor_table")
        county_factors = None
        if table_path is not None:
            county_factors = factor_table(table_path, key=self.study.setting("continuous", "factor_key") or self.study.id_field,
                                          counties=[str(v) for v in open_zones(zones)[1].values])
        return write_corrected_pixel_maps(landuse, pools, out=out, run=run, progress=progress, zones=zones, county_factors=county_factors,
                                          factor_stores={pool: self.stores[name] for pool, name in factor_pools(self.study).items()})

    def write(self, out: Path, *, demand: pd.DataFrame | None = None, ratio_units: str = "co2_per_c") -> dict[str, Path]:
        """``continuous_by_county.csv`` (each raster's pixels with and without a value, sum, valued area and
        area-weighted mean per county; for population the sum is people and the mean people per km²) and,
        with NPP, ``sequestration_by_county.csv`` (sequestration beside the emissions, a flux with a flux)."""
        from carbonscape.io import atomic_path

        files: dict[str, Path] = {}
        if self.values:
            files["values"] = _csv(continuous_table(self.values), out / FILES["values"], atomic_path)
        if self.sequestration is not None:
            frame = self.sequestration.copy()
            if demand is not None:
                emissions = demand["emissions_t"].reindex(frame.index).astype(np.float64)
                frame["emissions_t_co2"] = emissions
                frame["balance_t_co2"] = frame["sequestration_t_co2"] - emissions
                with np.errstate(divide="ignore", invalid="ignore"):
                    frame["emissions_over_sequestration"] = emissions / frame["sequestration_t_co2"]
            files["sequestration"] = _csv(frame.reset_index(), out / FILES["sequestration"], atomic_path)
        return files


def _csv(frame: pd.DataFrame, path: Path, atomic_path: Any) -> Path:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, encoding="utf-8", float_format="%.10g")
    return path


def prepare_continuous(study: Study, *, stores: Path, landuse: Path, run: Any, progress: bool = False) -> ContinuousRun:
    """Ingest every raster of ``[continuous]`` onto the land-use grid (stores ``stores/<name>.zarr``)."""
    job = ContinuousRun(study=study)
    for r in _rasters(study):
        target = remote.join(stores, f"{r.name.replace(' ', '_')}.zarr")
        ingest_continuous(r.path, target, like=landuse, quantity=r.quantity, resampling=study.setting("continuous", "resampling"),
                          setting="[continuous] resampling", progress=progress, run=run)
        job.stores[r.name] = target
        job.provenance[r.name] = {"path": str(r.path), "setting": r.setting, **open_continuous(target).attrs["continuous"]}
    return job
