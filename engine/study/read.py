"""The one reader of a results folder: :func:`read_outputs` gives back the :class:`StudyResult`
that the writers (:func:`carbonscape.supply`, :func:`~carbonscape.study.outputs.write_outputs`)
wrote, so `carbonscape maps DIR`, `report DIR` and the stage commands (`demand`, `zoning`) carry
on from a folder with the same object that :func:`run_study` hands over in memory.

A folder from the step-by-step path may hold only the first stages' files (supply's tables, then
demand's): what is missing comes back empty, and each consumer says which stage to run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
from carbonscape.carbon import SupplyResult
from carbonscape.errors import InputError
from carbonscape.study.result import StudyResult

__all__ = ["read_cells", "read_outputs"]

SUPPLY_TABLES = ("supply_by_county", "supply_by_class", "supply_by_county_class", "supply_by_pool")


def _csv(path: Path, *, index: str | None = None) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype={"county": str}, encoding="utf-8")
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} cannot be read ({exc}); it is damaged: write it again with the stage that makes it") from exc
    if index is not None and index in frame.columns:
        frame = frame.set_index(index)
    return frame


def _json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path} cannot be read ({exc}); it is damaged: write it again with the stage that makes it") from exc
    return value if isinstance(value, dict) else {}


def _polygons(path: Path, out: Path) -> gpd.GeoDataFrame:
    import pyogrio.errors

    try:
        gdf = gpd.read_file(path, layer="counties", engine="pyogrio")
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, OSError, ValueError) as exc:
        # pyogrio's own text (GDAL driver hints) is kept on the chained exception, for --debug.
        what = "has no `counties` layer" if isinstance(exc, pyogrio.errors.DataLayerError) else "is not a readable GeoPackage"
        raise InputError(f"{path} {what}: it is damaged or was left by an interrupted run; run `carbonscape run` (or `zoning`) into "
                         f"{out} again to rewrite it") from exc
    if "county" not in gdf.columns:
        raise InputError(f"{path}: no `county` column; it was not written by carbonscape: run `carbonscape run` into {out} again")
    gdf["county"] = gdf["county"].astype(str)
    return gdf


def read_outputs(out: str | os.PathLike[str]) -> StudyResult:
    """Read a results folder back into a :class:`StudyResult`.

    Parameters
    ----------
    out
        A folder written by ``carbonscape run``/``demo``, or by the stage commands (``supply``,
        then ``demand``, then ``zoning``).

    Returns
    -------
    StudyResult
        Tables indexed by the text key ``county`` (``demand``, ``ratio_zones``); ``polygons``
        from ``counties.gpkg`` (None before the zoning stage); ``run_info``, ``totals`` and
        ``zoning`` from ``run.json`` (empty before it); ``files`` lists what the folder holds.

    Raises
    ------
    InputError
        ``out`` is not a folder, holds none of carbonscape's outputs, or holds a damaged one.
    """
    folder = Path(out)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder; give the folder `carbonscape run` or `supply` wrote")
    files = {name: folder / f"{name}.csv" for name in (*SUPPLY_TABLES, "demand_by_county", "demand_totals", "ratio_zones")}
    files.update({"supply_summary": folder / "supply_summary.json", "run": folder / "run.json", "counties": folder / "counties.gpkg",
                  "report": folder / "report.html"})
    files = {name: path for name, path in files.items() if path.exists()}
    if not files and (folder / "supply_by_cell.csv").exists():
        # `supply --grid` wrote supply per cell and nothing else: no counties, no demand to go on from.
        raise InputError(f"{folder} holds supply per grid cell only (supply_by_cell.csv, from `carbonscape supply --grid`): no counties "
                         "and no demand, which the stage commands (demand, zoning, statistics, cells, maps, report) go on from. For the "
                         "cells' demand, ratio and zones, write a study file with [units] grid = SIZE beside [counties] and [demand] "
                         "(`carbonscape init`) and run `carbonscape run study.toml`; `carbonscape cells` then goes on from "
                         "the results folder it writes")
    if not files:
        raise InputError(f"{folder} holds no carbonscape outputs (no supply_by_county.csv, run.json, counties.gpkg); run "
                         "`carbonscape run` or `carbonscape supply` into it first")
    for path in sorted((folder / "maps").glob("*")) if (folder / "maps").is_dir() else []:
        if not path.name.startswith("."):
            files[f"map:{path.stem}"] = path
    empty = pd.DataFrame()
    supply = SupplyResult(
        by_county=_csv(files["supply_by_county"]) if "supply_by_county" in files else empty,
        by_class=_csv(files["supply_by_class"]) if "supply_by_class" in files else empty,
        by_county_class=_csv(files["supply_by_county_class"]) if "supply_by_county_class" in files else empty,
        by_pool=_csv(files["supply_by_pool"]) if "supply_by_pool" in files else empty,
        summary=_json(files["supply_summary"]) if "supply_summary" in files else {},
        files={name: files[name] for name in (*SUPPLY_TABLES, "supply_summary") if name in files},
    )
    run_info = _json(files["run"]) if "run" in files else {}
    demand = _csv(files["demand_by_county"], index="county") if "demand_by_county" in files else pd.DataFrame(index=pd.Index([], name="county"))
    ratio_zones = _csv(files["ratio_zones"], index="county") if "ratio_zones" in files else pd.DataFrame(index=pd.Index([], name="county"))
    polygons = _polygons(files["counties"], folder) if "counties" in files else None
    statistics, uncertainty = _second_half(folder, run_info, files)
    cells = read_cells(folder, run_info, files)
    return StudyResult(out=folder, supply=supply, demand=demand, ratio_zones=ratio_zones, zoning=dict(run_info.get("zoning") or {}),
                       totals=dict(run_info.get("totals") or {}), run_info=run_info, files=files, polygons=polygons,
                       statistics=statistics, uncertainty=uncertainty, cells=cells)


def _cell_grid(folder: Path, info: dict[str, Any]) -> Any:
    """The cells' grid: the land-use grid run.json records under ``cells.landuse_grid``, else (a
    folder from before it did) rebuilt from the cell GeoTIFF (its cells then all taken as whole)."""
    import rasterio

    from carbonscape.cells import CellGrid
    from carbonscape.grid import Grid

    cell = int(info.get("pixels_per_cell_edge") or 0)
    recorded = info.get("landuse_grid")
    if cell > 0 and isinstance(recorded, dict) and {"crs_wkt", "transform", "shape"} <= set(recorded):
        return CellGrid(grid=Grid(str(recorded["crs_wkt"]), tuple(float(v) for v in recorded["transform"]),  # type: ignore[arg-type]
                                  (int(recorded["shape"][0]), int(recorded["shape"][1]))), cell=cell)
    path = folder / "cell_supply_t_per_km2.tif"
    if cell <= 0 or not path.exists():
        raise InputError(f"{folder}: run.json says nothing of the cells' grid and {path.name} is missing; run `carbonscape run` into "
                         f"{folder.parent} again")
    with rasterio.open(path) as src:
        a, b, c, d, e, f = tuple(src.transform)[:6]
        grid = Grid.from_affine(crs=src.crs, transform=rasterio.Affine(a / cell, b, c, d, e / cell, f),
                                shape=(src.height * cell, src.width * cell))
    return CellGrid(grid=grid, cell=cell)


def read_cells(folder: Path, run_info: dict[str, Any], files: dict[str, Path] | None = None) -> Any:
    """The cell analysis of ``folder/cells`` (a study with ``[units] grid``) as the
    :class:`~carbonscape.study.cells.CellStudy` that `run` wrote, or None when the folder has none.

    Its per-class areas (``supply.area_ha``) are not in the files (the cells stage rebuilds them
    from the per-class supply and a pools table); everything else is read back.
    """
    import numpy as np

    from carbonscape.cells import CellSupplyResult
    from carbonscape.study.cells import CELLS_FOLDER, CellStudy
    from carbonscape.uncertainty import UncertaintyResult

    where = Path(folder) / CELLS_FOLDER
    info = dict(run_info.get("cells") or {})
    if not (where / "ratio_zones_by_cell.csv").exists() or not (where / "supply_by_cell.csv").exists() or not info:
        return None
    found = {name: where / file for name, file in (("table", "supply_by_cell.csv"), ("ratio_zones", "ratio_zones_by_cell.csv"),
                                                   ("polygons", "cells.gpkg"), ("continuous", "continuous_by_cell.csv"))
             if (where / file).exists()}
    by_cell = _csv(found["table"])
    table = _csv(found["ratio_zones"], index="cell")
    numbers = {str(k): int(v) for k, v in (info.get("zone_numbers") or {}).items()}
    table["zone_number"] = table["zone_key"].astype(str).map(numbers).fillna(0).astype(np.int16) if "zone_key" in table else 0
    supply = CellSupplyResult(by_cell=by_cell, cells=_cell_grid(where, info), area_ha=pd.DataFrame(index=pd.Index(by_cell["cell"], name="cell")),
                              summary={k: info[k] for k in ("size", "grid_shape", "cells") if k in info},
                              files={k: v for k, v in found.items() if k in ("table", "polygons")})
    statistics = _statistics(where, dict(info.get("statistics") or {}), unit="cell")
    uncertainty = None
    if (where / "uncertainty_by_cell.csv").exists():
        uncertainty = UncertaintyResult(by_unit=_csv(where / "uncertainty_by_cell.csv", index="cell"), info=dict(info.get("uncertainty") or {}),
                                        files={"uncertainty": where / "uncertainty_by_cell.csv"})
    cells = CellStudy(supply=supply, table=table, zoning=dict(info.get("zoning") or {}), statistics=statistics, uncertainty=uncertainty,
                      info=info)
    cells.files = {f"cells:{k}": v for k, v in found.items()}
    for name in ("moran", "lisa", "hotspots"):
        if statistics is not None:
            cells.files[f"cells:{name}"] = statistics.files[name]
    if uncertainty is not None:
        cells.files["cells:uncertainty"] = where / "uncertainty_by_cell.csv"
    for path in sorted((where / "maps").glob("*")) if (where / "maps").is_dir() else []:
        if not path.name.startswith("."):
            cells.files[f"cells:map:{path.stem}"] = path
    if files is not None:
        files.update(cells.files)
    return cells


def _statistics(folder: Path, recorded: dict[str, Any], *, unit: str) -> Any:
    """moran.csv, lisa.csv and hotspots.csv of ``folder`` as :class:`~carbonscape.spatial.SpatialStatistics`, or None."""
    from carbonscape.spatial import STATISTICS_FILES, SpatialSettings, SpatialStatistics

    found = {name: folder / file for name, file in STATISTICS_FILES.items() if (folder / file).exists()}
    if len(found) != len(STATISTICS_FILES):
        return None
    islands = recorded.pop("islands", [])
    known = {k: recorded[k] for k in ("weights", "permutations", "seed", "alpha") if k in recorded}
    tables = {name: _csv(path) for name, path in found.items()}
    return SpatialStatistics(moran=tables["moran"], lisa=tables["lisa"], hotspots=tables["hotspots"], settings=SpatialSettings(**known),
                             islands=[str(i) for i in islands] if isinstance(islands, list) else [], files=dict(found))


def _second_half(folder: Path, run_info: dict[str, Any], files: dict[str, Path]) -> tuple[Any, Any]:
    """The spatial statistics and the density uncertainty of the counties, when the folder holds them
    (from `run` or the statistics stage), with their settings from run.json."""
    from carbonscape.spatial import STATISTICS_FILES, SpatialSettings, SpatialStatistics
    from carbonscape.uncertainty import UNCERTAINTY_FILE, UncertaintyResult

    statistics = uncertainty = None
    found = {name: folder / file for name, file in STATISTICS_FILES.items() if (folder / file).exists()}
    if len(found) == len(STATISTICS_FILES):
        files.update(found)
        recorded = dict(run_info.get("statistics") or {})
        islands = [str(i) for i in recorded.pop("islands", [])]
        known = {k: recorded[k] for k in ("weights", "permutations", "seed", "alpha") if k in recorded}
        tables = {name: _csv(path) for name, path in found.items()}
        for name in ("lisa", "hotspots"):
            tables[name]["county"] = tables[name]["county"].astype(str)
        statistics = SpatialStatistics(moran=tables["moran"], lisa=tables["lisa"], hotspots=tables["hotspots"],
                                       settings=SpatialSettings(**known), islands=islands, files=dict(found))
    if (folder / UNCERTAINTY_FILE).exists():
        files["uncertainty"] = folder / UNCERTAINTY_FILE
        by_unit = _csv(folder / UNCERTAINTY_FILE, index="county")
        uncertainty = UncertaintyResult(by_unit=by_unit, info=dict(run_info.get("uncertainty") or {}),
                                        files={"uncertainty": folder / UNCERTAINTY_FILE})
    return statistics, uncertainty
