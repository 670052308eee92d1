"""A study's outputs from its :class:`StudyResult`: the demand and ratio tables, ``counties.gpkg``
and ``run.json`` (the supply tables are written by :func:`carbonscape.supply` beside them), and
the maps and report drawn from them."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
from carbonscape import remote
from carbonscape.demand import demand_totals_table
from carbonscape.io import atomic_path, make_folders, remove_made_folders
from carbonscape.ratio import CO2_TO_C, DEMAND_UNITS, UNITS
from carbonscape.study.result import StudyResult

__all__ = ["draw_outputs", "folder_problem", "redraw_maps", "relocate_result", "results_folder", "units", "write_outputs", "write_run_json"]

log = logging.getLogger(__name__)

DEMAND_COLUMNS = ["population", "area_km2", "density_per_km2", "demand_t_per_km2", "share_pct", "pixel_area_km2", "emissions_t"]
RATIO_COLUMNS = ["supply_t", "supply_t_per_km2", "demand_t_per_km2", "ratio", "ratio_infinite", "class", "zone", "zone_en", "demand_unit"]
# The supply–demand matching indices (carbonscape.matching.COLUMNS) follow the ratio's columns.
MATCHING_COLUMNS = ["balance", "esdr", "z_supply", "z_demand", "quadrant", "coupling", "ccd"]
# How much of each county the land-use raster covers (carbonscape.coverage); low_coverage flags
# the counties a lowered min_coverage let through, their supply density over the covered area.
COVERAGE_COLUMNS = ["covered_share", "nodata_share", "outside_share", "low_coverage"]


def _write_csv(frame: pd.DataFrame, path: Path, *, index: bool = False) -> Path:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=index, encoding="utf-8", float_format="%.10g")
    return path


def units(ratio_units: str) -> dict[str, Any]:
    """What each output column holds, for run.json: the same name can hold t CO2 or t C."""
    return {
        "ratio_units": ratio_units,
        "ratio": UNITS[ratio_units],
        "supply_t": "t C",
        "supply_t_per_km2": "t C/km²",
        "demand_by_county.csv": {"demand_t_per_km2": DEMAND_UNITS["co2_per_c"], "emissions_t": "t CO2"},
        "ratio_zones.csv": {"demand_t_per_km2": DEMAND_UNITS[ratio_units],
                            "balance": f"t C/km² − {DEMAND_UNITS[ratio_units]} (supply density − demand density)",
                            "esdr": "dimensionless, −2..2", "ccd": "dimensionless, 0..1"},
        "totals": {"sum_of_county_densities_t_per_km2": "t CO2/km²", "regional_density_t_per_km2": "t CO2/km²", "total_demand_t": "t CO2"},
        "counties.gpkg": {
            "supply_t": "t C", "supply_t_c_per_km2": "t C/km²", "emissions_t_co2": "t CO2", "demand_t_co2_per_km2": "t CO2/km²",
            "demand_t_c_per_km2": "t C/km² (demand × 12/44)", "ratio": UNITS[ratio_units],
        },
    }


def write_outputs(result: StudyResult, out: Path, *, id_field: str, per_capita_t: float | None) -> dict[str, Path]:
    """Write the demand and ratio tables, ``counties.gpkg`` and ``run.json`` into ``out``.

    Returns the files written, by name (also added to ``result.files``).
    """
    files: dict[str, Path] = {}
    demand = result.demand
    demand_out = demand[[c for c in DEMAND_COLUMNS if c in demand.columns]].reset_index().rename(columns={demand.index.name or "index": "county"})
    demand_out["demand_unit"] = DEMAND_UNITS["co2_per_c"]  # demand itself is always t CO2/km²
    files["demand_by_county"] = _write_csv(demand_out, out / "demand_by_county.csv")
    files["demand_totals"] = _write_csv(demand_totals_table(demand, per_capita_t=per_capita_t), out / "demand_totals.csv")
    ratio_out = result.ratio_zones[[c for c in (*RATIO_COLUMNS, *MATCHING_COLUMNS, *COVERAGE_COLUMNS) if c in result.ratio_zones.columns]].reset_index()
    files["ratio_zones"] = _write_csv(ratio_out, out / "ratio_zones.csv")
    if result.statistics is not None:
        files.update(result.statistics.write(out))
    if result.uncertainty is not None:
        files["uncertainty"] = result.uncertainty.write(out)
    if getattr(result, "cells", None) is not None:  # [units] grid: the cell analysis, into cells/
        files.update(result.cells.write(out))
    if result.polygons is not None:
        files["counties"] = _write_counties(result, out=out, id_field=id_field)
    result.files.update(files)
    files["run"] = write_run_json(result, out)
    return files


def write_run_json(result: StudyResult, out: Path) -> Path:
    """``run.json``: parameters, totals, units, inputs, versions, timings."""
    path = out / "run.json"
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(result.run_info, indent=2, ensure_ascii=False), encoding="utf-8")
    result.files["run"] = path
    return path


def _write_counties(result: StudyResult, *, out: Path, id_field: str) -> Path:
    """``counties.gpkg``: the polygons with every county figure, each column named with its unit."""
    polygons = result.polygons
    assert polygons is not None
    keys = polygons[id_field].astype(str)
    index = pd.Index(keys, name="county")
    by_county = result.supply.by_county.assign(county=result.supply.by_county["county"].astype(str)).set_index("county")
    demand, ratio_zones = result.demand, result.ratio_zones
    columns = {
        "area_km2": demand["area_km2"].reindex(index),
        "pixel_area_km2": by_county["area_km2"].reindex(index),
        "pixels": by_county["pixels"].reindex(index),
        "supply_t": by_county["supply_t"].reindex(index),  # t C
        "supply_share_pct": by_county["share_pct"].reindex(index),
        "supply_t_c_per_km2": ratio_zones["supply_t_per_km2"].reindex(index),
        "population": demand["population"].reindex(index),
        "population_per_km2": demand["density_per_km2"].reindex(index),
        "emissions_t_co2": demand["emissions_t"].reindex(index),
        "demand_t_co2_per_km2": demand["demand_t_per_km2"].reindex(index),
        "demand_t_c_per_km2": demand["demand_t_per_km2"].reindex(index) * CO2_TO_C,
        "demand_share_pct": demand["share_pct"].reindex(index),
        **{c: ratio_zones[c].reindex(index) for c in ("ratio", "ratio_infinite", "class", "zone", "zone_en", "zone_key") if c in ratio_zones},
        "ratio_demand_unit": ratio_zones["demand_unit"].reindex(index),
        **{c: by_county[c].reindex(index) for c in COVERAGE_COLUMNS if c in by_county},
    }
    attributes = polygons.copy()
    # The id field itself named "county" is the same values, not a clash worth a message.
    clashing = [c for c in ["county", *columns] if c in attributes.columns and c != polygons.geometry.name and c != id_field]
    if clashing:
        log.info("counties.gpkg: the computed %s replace the polygon file's columns of the same name", clashing)
    attributes = attributes.drop(columns=clashing)
    attributes["county"] = keys.to_numpy()
    for name, values in columns.items():
        attributes[name] = values.to_numpy()
    path = out / "counties.gpkg"
    with atomic_path(path) as tmp:
        attributes.to_file(tmp, layer="counties", driver="GPKG", engine="pyogrio")
    return path


def draw_outputs(result: StudyResult, *, maps: bool = True, report: bool = True, title: str | None = None) -> None:
    """Draw the maps and write report.html of a finished run, recording their timings in run.json."""
    if not (maps or report):
        return
    from carbonscape.maps import frozen_heap
    from carbonscape.report import keeping_images

    with frozen_heap(), keeping_images() if report else contextlib.nullcontext():
        _draw_outputs(result, maps=maps, report=report, title=title)
    write_run_json(result, result.out)


def _draw_outputs(result: StudyResult, *, maps: bool, report: bool, title: str | None) -> None:
    timings = result.run_info["timings_s"]
    if maps:
        from carbonscape.maps import draw_maps

        clock = time.perf_counter()
        for path in draw_maps(result):
            result.files[f"map:{path.stem}"] = path
        for path in _draw_statistics(result):
            result.files[f"map:{path.stem}"] = path
        for path in _draw_cells(result):
            result.files[f"cells:map:{path.stem}"] = path
        timings["maps"] = round(time.perf_counter() - clock, 3)
    if report:
        from carbonscape.report import write_report

        clock = time.perf_counter()
        result.files["report"] = write_report(result, title=title)
        timings["report"] = round(time.perf_counter() - clock, 3)


def redraw_maps(result: StudyResult | str | os.PathLike[str], *, formats: tuple[str, ...] | list[str] = ("png",)) -> list[Path]:
    """Every map a run draws, drawn again from its results folder as read back
    (:func:`carbonscape.read_outputs`): Figs. 1–5 and the carbon-per-pixel map
    (:func:`carbonscape.draw_maps`), the maps of matching, spatial statistics and zone stability
    when the folder holds their tables, the cell maps of a ``[units] grid`` study, and each land-use
    change's Sankey diagram and county map (PNG, as the run draws them).

    Maps of these kinds left from an earlier draw in other formats are removed, as
    :func:`~carbonscape.draw_maps` does for Figs. 1–5, so the folder and its report show this draw.

    Raises
    ------
    InputError
        An unknown format, or a folder without county polygons.
    """
    from carbonscape.maps import FORMATS, draw_maps, frozen_heap

    if isinstance(result, (str, os.PathLike)):
        from carbonscape.study.read import read_outputs

        result = read_outputs(result)
    from carbonscape.report import keeping_images

    written: list[Path] = []
    # The report.html already there is written again after this (`carbonscape maps`): the maps
    # hand it their page images as they are drawn.
    report = (Path(result.out) / "report.html").is_file()
    with frozen_heap(), keeping_images() if report else contextlib.nullcontext():
        written += draw_maps(result, formats=formats)
        statistics = _draw_statistics(result, formats=formats)
        cells = _draw_cells(result, formats=formats)
        written += statistics + cells + _draw_changes(result)
    from carbonscape.statmaps import CELL_MAP_FILES, STAT_MAP_FILES

    for folder, stems, kept in ((Path(result.out) / "maps", STAT_MAP_FILES, statistics),
                                (Path(result.out) / "cells" / "maps", CELL_MAP_FILES, cells)):
        keep = {Path(p).name for p in kept}
        for path in (folder / f"{stem}.{fmt}" for stem in stems for fmt in FORMATS):
            if path.name not in keep and path.exists():
                path.unlink()
    return written


def _draw_changes(result: StudyResult) -> list[Path]:
    """Each land-use change's figures again (``changes/<from>_to_<to>/``), from its tables: the
    Sankey of its transitions and, with the counties, its county map."""
    from carbonscape.change import CHANGE_FILES, ChangeResult

    root = Path(result.out) / "changes"
    if not root.is_dir():
        return []
    from carbonscape.change_figures import draw_change_map, draw_transitions

    drawn: list[Path] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        sankey, county_map = folder / "transitions_sankey.png", folder / "carbon_change_by_county.png"
        if not all((folder / CHANGE_FILES[name]).is_file() for name in ("change_summary", "change_by_county", "transitions")):
            continue
        change = ChangeResult(
            by_county=pd.read_csv(folder / CHANGE_FILES["change_by_county"], dtype={"county": str}),
            transitions_by_county=pd.read_csv(folder / CHANGE_FILES["transitions_by_county"], dtype={"county": str}),
            transitions=pd.read_csv(folder / CHANGE_FILES["transitions"]),
            transfer_matrix=pd.read_csv(folder / CHANGE_FILES["transfer_matrix"], index_col=0),
            dynamic_degree=pd.read_csv(folder / CHANGE_FILES["dynamic_degree"]),
            summary=json.loads((folder / CHANGE_FILES["change_summary"]).read_text(encoding="utf-8")))
        drawn.append(draw_transitions(change, sankey))
        id_field = result.run_info.get("study", {}).get("id_field")
        if result.polygons is not None and id_field in result.polygons.columns:
            drawn.append(draw_change_map(change, result.polygons, id_field, county_map, inputs=_change_credit(result, change)))
    return drawn


def _change_credit(result: StudyResult, change: Any) -> Any:
    """What a change map credits, as the run gave it (:func:`carbonscape.study.landuse_maps.draw_changes`):
    the study's name, its ``[study] source`` or the two maps' land-use files, the boundaries and the
    pools tables, from the run's record of its inputs."""
    from carbonscape import __version__
    from carbonscape.maps import MapInputs, sources_of

    info = result.run_info or {}
    labels = [str(v) for v in (change.summary.get("maps") or {}).values()]
    recorded_maps = (info.get("landuse_maps") or {}).get("maps")  # by label, in the study's order
    order = [str(label) for label in recorded_maps] if isinstance(recorded_maps, dict) else []
    labels = [label for label in order if label in labels] + [label for label in labels if label not in order]
    recorded = info.get("inputs") or []

    def paths(role: str) -> list[str]:
        return [str(item.get("path", "")) for item in recorded if item.get("role") == role]

    inputs = [{"role": "landuse", "path": p} for label in labels for p in (paths(f"landuse {label}") or paths("landuse"))]
    inputs += [{"role": "counties", "path": p} for p in paths("counties")]
    pools = dict.fromkeys(p for label in labels for p in (paths(f"pools {label}") or paths("pools")))
    inputs += [{"role": "pools", "path": p} for p in pools]
    study = info.get("study") or {}
    return MapInputs(counties=result.polygons, study=str(study.get("name") or ""),
                     sources=sources_of({"study": {"source": study.get("source")}, "inputs": inputs}), version=__version__)


# -- all-or-nothing results folders -----------------------------------------------------------
# A results folder is built whole in a staging folder beside it and swapped in only when every
# output is written; the previous folder stays exactly as it was until then. A marker file says
# which study (or the demo) wrote a folder, so that a rerun of the same study replaces its own
# results and nothing else's.
MARKER = ".carbonscape.json"
# Subfolders carried from the previous results into the staging folder (as hard links, so no data
# is copied and nothing in the previous folder can change): stores that are still up to date are
# reused, as a run in place used to.
REUSED = ("stores",)


def _owner(folder: Path) -> dict[str, Any] | None:
    """Who wrote a results folder: the marker, else an older carbonscape's run.json, else None."""
    for name, read in ((MARKER, lambda d: d), ("run.json", lambda d: {"kind": "study", "study": d["study"]["file"]})):
        path = folder / name
        if path.is_file():
            try:
                return read(json.loads(path.read_text(encoding="utf-8")))
            except (ValueError, KeyError, TypeError):
                continue
    return None


def folder_problem(out: Path, *, owner: dict[str, Any], overwrite: bool = False, inputs: list[Path] = ()) -> str | None:
    """Why ``out`` may not receive these results, or None.

    Parameters
    ----------
    out
        The results folder asked for.
    owner
        ``{"kind": "study", "study": "<resolved study file>"}`` or ``{"kind": "demo"}``.
    overwrite
        Replace a folder of other files or of another study's results.
    inputs
        The study's input files: a folder holding any of them is never replaced.
    """
    out = Path(out).absolute()
    if out.exists() and not out.is_dir():
        return f"--out {out} is a file, not a folder; give a folder for the results"
    held = [Path(p) for p in inputs if not remote.is_url(p) and Path(p).absolute().is_relative_to(out)]
    if held:
        return (f"{out} holds the study's own inputs ({', '.join(p.name for p in held[:5])}); carbonscape replaces a results "
                f"folder whole, so give the results a folder of their own, e.g. {out / 'results'}")
    if not out.is_dir() or not any(out.iterdir()):
        return None
    found = _owner(out)
    if found is not None and found.get("kind") == owner.get("kind") and found.get("study") == owner.get("study"):
        return None  # a rerun replaces its own results whole
    entries = list(out.iterdir())
    if found is None and [p.name for p in entries] == ["stores"] and all(
            (store / "zarr.json").is_file() for store in (out / "stores").iterdir()):
        return None  # only stores carbonscape ingested (each is checked against its sources before reuse)
    if overwrite:
        return None
    if found is None:
        names = sorted(p.name for p in out.iterdir())
        listed = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
        return (f"{out} holds files carbonscape did not write ({listed}); give a new or empty folder for the results, "
                "or pass --overwrite to replace the whole folder")
    what = ("the demo's results" if found.get("kind") == "demo" else "the outputs of step-by-step commands" if found.get("kind") == "stages"
            else f"the results of another study ({found.get('study')})")
    return f"{out} holds {what}; give another folder for these results, or pass --overwrite to replace them"


def stage_folder_problem(out: str | os.PathLike[str], *, command: str, overwrite: bool = False) -> str | None:
    """Why a command writing into ``out`` in place (``supply --out``, ``generate``) may not, or None.

    The folder may be new, empty, or one carbonscape wrote (its marker file, see
    :func:`mark_stage_folder`); a folder of other files is refused unless ``overwrite``, since
    the command would replace files of the same names among them.
    """
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        return f"{folder} is a file, not a folder; give a folder for `carbonscape {command}`'s outputs"
    if overwrite or not folder.is_dir() or _owner(folder) is not None:
        return None
    names = sorted(p.name for p in folder.iterdir())
    if not names:
        return None
    listed = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
    return (f"{folder} holds files carbonscape did not write ({listed}); `carbonscape {command}` would write among them and replace "
            f"any of the same name. Give a new or empty folder (e.g. {folder / 'carbonscape'}), or pass --overwrite to write into "
            "this one anyway")


def mark_stage_folder(out: str | os.PathLike[str], *, command: str) -> None:
    """Mark ``out`` as written by carbonscape (a later stage or rerun may write into it)."""
    folder = Path(out)
    if folder.is_dir() and _owner(folder) is None:
        (folder / MARKER).write_text(json.dumps({"writer": "carbonscape", "kind": "stages", "command": command}), encoding="utf-8")


def _link_tree(source: Path, target: Path) -> None:
    """``target`` as a copy of ``source`` made of hard links (a real copy where links fail)."""
    import shutil

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=link, symlinks=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_staging(out: Path) -> None:
    """Staging folders left by runs that were killed (their process is gone)."""
    import shutil

    for stale in out.parent.glob(f".{out.name}.staging-*"):
        try:
            pid = int(stale.name.rsplit("-", 2)[-2])
        except ValueError:
            continue
        if not _pid_alive(pid):
            shutil.rmtree(stale, ignore_errors=True)


@contextlib.contextmanager
def results_folder(out: str | os.PathLike[str], *, owner: dict[str, Any], overwrite: bool = False,
                   inputs: list[Path] = (), reuse: tuple[str, ...] = REUSED) -> Iterator[Path]:
    """Yield a staging folder beside ``out``; when the block succeeds it becomes ``out`` whole.

    On an error or an interrupt the staging folder is removed and ``out`` is left exactly as it
    was; a run killed outright leaves only a hidden staging folder, removed by the next run.

    Raises
    ------
    InputError
        When ``out`` holds files carbonscape did not write, or another study's results, and
        ``overwrite`` is not set (see :func:`folder_problem`).
    """
    import shutil
    import uuid

    from carbonscape.errors import InputError

    final = Path(out).absolute()
    problem = folder_problem(final, owner=owner, overwrite=overwrite, inputs=list(inputs))
    if problem:
        raise InputError(problem)
    made = make_folders(final.parent)
    _remove_stale_staging(final)
    staging = final.parent / f".{final.name}.staging-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        if final.is_dir():
            for name in reuse:
                if (final / name).is_dir():
                    _link_tree(final / name, staging / name)
        (staging / MARKER).write_text(json.dumps({"writer": "carbonscape", **owner}, ensure_ascii=False), encoding="utf-8")
        yield staging
        if final.is_dir():
            old = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
            final.rename(old)
            staging.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        remove_made_folders(made)  # the parents made for ``out``, left empty
        raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def relocate(value: Any, old: Path, new: Path) -> Any:
    """``value`` with every path (or text) under ``old`` moved under ``new``."""
    if isinstance(value, dict):
        return {k: relocate(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [relocate(v, old, new) for v in value]
    if isinstance(value, Path) and value.is_relative_to(old):
        return new / value.relative_to(old)
    if isinstance(value, str) and value.startswith(str(old)):
        return str(new) + value[len(str(old)):]
    return value


def relocate_result(result: StudyResult, old: Path, new: Path) -> StudyResult:
    """The result's paths after its staging folder became the results folder."""
    result.out = new
    result.files = relocate(result.files, old, new)
    result.supply.files = relocate(result.supply.files, old, new)
    for part in (result.statistics, result.uncertainty):
        if part is not None:
            part.files = relocate(part.files, old, new)
    cells = getattr(result, "cells", None)
    if cells is not None:
        for part in (cells, cells.supply, cells.statistics, cells.uncertainty):
            if part is not None:
                part.files = relocate(part.files, old, new)
    return result


def _draw_statistics(result: StudyResult, *, formats: tuple[str, ...] | list[str] = ("png",)) -> list[Any]:
    """The maps of matching, spatial statistics and zone stability, from the result in memory."""
    id_field = result.run_info.get("study", {}).get("id_field")
    if result.polygons is None or id_field not in result.polygons.columns:
        return []
    from carbonscape import statmaps
    from carbonscape.maps import result_credit

    credit = result_credit(result)
    units = result.polygons.set_index(result.polygons[id_field].astype(str))
    folder = result.out / "maps"
    written: list[Any] = []
    if "quadrant" in result.ratio_zones.columns and len(result.ratio_zones):
        demand_unit = str(result.ratio_zones["demand_unit"].iloc[0]) if "demand_unit" in result.ratio_zones.columns else "t/km²"
        label = "t C/km²" if demand_unit == "t C/km²" else f"t C/km² − {demand_unit}"
        written += statmaps.draw_matching(units, result.ratio_zones, folder, unit_label=label, credit=credit, formats=formats)
    if result.statistics is not None:
        alpha = result.statistics.settings.alpha
        written += statmaps.draw_lisa_clusters(units, result.statistics.lisa, folder, alpha=alpha, credit=credit, formats=formats)
        written += statmaps.draw_hotspots(units, result.statistics.hotspots, folder, alpha=alpha, credit=credit, formats=formats)
    # The zone keys: the run's in memory; read back, from counties.gpkg (ratio_zones.csv has the names only).
    zone_key = result.ratio_zones["zone_key"] if "zone_key" in result.ratio_zones.columns else \
        units["zone_key"] if "zone_key" in units.columns else None
    if result.uncertainty is not None and zone_key is not None:
        written += statmaps.draw_zone_stability(units, result.uncertainty.by_unit, zone_key, folder,
                                                credit=credit, formats=formats)
    return written


def _draw_cells(result: StudyResult, *, cells: Any = None, out: Path | None = None,
                formats: tuple[str, ...] | list[str] = ("png",)) -> list[Any]:
    """The maps of the grid cells (``[units] grid``; ``cells``, default the result's) into
    ``out/cells/maps`` (default: the result's folder), with the maps' credit line."""
    cells = cells if cells is not None else getattr(result, "cells", None)
    if cells is None:
        return []
    from carbonscape.maps import result_credit
    from carbonscape.statmaps import draw_cell_maps
    from carbonscape.study.cells import CELLS_FOLDER

    return draw_cell_maps(cells.cells, cells.table, Path(out or result.out) / CELLS_FOLDER / "maps", statistics=cells.statistics,
                          uncertainty=cells.uncertainty, credit=result_credit(result, crs=cells.cells.grid.crs), formats=formats)
