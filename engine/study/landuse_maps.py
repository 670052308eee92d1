"""Many land-use maps in one study: ``[landuse.maps]``.

```toml
[landuse.maps]
"2000" = "lu2000.tif"
"2020" = ["lu2020_a.tif", "lu2020_b.tif"]
"2030 ecological protection" = { rasters = ["plus_2030_eco.tif"], year = 2030, scenario = true, pools = "pools_2030.csv" }
```

Each map has a label, one GeoTIFF or several tiles, a year (the label's leading year when not
given), whether it is a scenario, and optionally its own pools table (densities that change with
time or scenario; default ``[pools] path``). The study's own tables, maps and report are those of
the *base* map: the map of ``[study] year``, else the latest historical map. Besides, every map's
supply tables go to ``maps/<label>/`` and the change between consecutive historical maps and from
the base map to each scenario to ``changes/<from>_to_<to>/``, all from one pass over every map
(:func:`carbonscape.change.maps_pass`).
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carbonscape import remote

__all__ = ["LandUseMap", "MapBalance", "base_map", "draw_changes", "map_balances", "write_map_balance", "year_column", "change_pairs", "check_maps", "maps_problems", "parse_maps", "run_maps", "slug", "study_maps"]

_KEYS = ("rasters", "year", "scenario", "pools")


@dataclass(frozen=True)
class LandUseMap:
    """One map of a study: label, rasters (tiles of one grid), year, scenario or not, pools table."""

    label: str
    rasters: tuple[Path, ...]
    year: int | None
    scenario: bool = False
    pools: Path | None = None


def _resolve(folder: Path, value: str) -> Path | str:
    from carbonscape.study.settings import _resolve as resolve  # the study's one rule (URLs kept as given)

    return resolve(folder, value)


def parse_maps(raw: Mapping[str, Any] | None, *, folder: Path) -> tuple[list[LandUseMap], list[str]]:
    """The maps of a ``[landuse.maps]`` table, in file order, and every problem with them."""
    if raw is None:
        return [], []
    maps: list[LandUseMap] = []
    problems: list[str] = []
    if not raw:
        return [], ["[landuse.maps] is empty; give at least one map, e.g. \"2020\" = \"landuse2020.tif\""]
    for label, entry in raw.items():
        where = f"[landuse.maps] {label!r}"
        table = {"rasters": entry} if isinstance(entry, (str, list)) else entry
        if not isinstance(table, Mapping):
            problems.append(f"{where} must be a path, a list of paths or a table {{ rasters = [...], year = ..., scenario = ... }}")
            continue
        unknown = sorted(set(table) - set(_KEYS))
        if unknown:
            problems.append(f"{where}: unknown key(s) {unknown}; a map takes {', '.join(_KEYS)}")
        rasters = table.get("rasters")
        items = [rasters] if isinstance(rasters, str) else rasters
        if not isinstance(items, list) or not items or not all(isinstance(v, str) and v.strip() for v in items):
            problems.append(f"{where} needs `rasters`: a path or a non-empty list of paths")
            continue
        year = table.get("year")
        if year is None:
            leading = re.match(r"\s*(\d{4})\b", str(label))
            year = int(leading.group(1)) if leading else None
        elif isinstance(year, bool) or not isinstance(year, int):
            problems.append(f"{where}: year must be an integer, not {year!r}")
            year = None
        scenario = table.get("scenario", False)
        if not isinstance(scenario, bool):
            problems.append(f"{where}: scenario must be true or false, not {scenario!r}")
            scenario = False
        pools = table.get("pools")
        if pools is not None and not (isinstance(pools, str) and pools.strip()):
            problems.append(f"{where}: pools must be a path, not {pools!r}")
            pools = None
        maps.append(LandUseMap(
            label=str(label), rasters=tuple(_resolve(folder, v) for v in items), year=year, scenario=scenario,
            pools=_resolve(folder, pools) if pools else None,
        ))
    for m in maps:
        if m.year is None:
            problems.append(f"[landuse.maps] {m.label!r} has no year: give `year = ...` or start its label with the year")
    years = [m.year for m in maps if not m.scenario and m.year is not None]
    duplicated = sorted({y for y in years if years.count(y) > 1})
    if duplicated:
        problems.append(f"[landuse.maps] more than one historical map of year(s) {duplicated}; mark the others `scenario = true`")
    history = [m for m in maps if not m.scenario]
    if not history and maps:
        problems.append("[landuse.maps] every map is a scenario; give at least one historical map as the base")
    elif maps and all(m.year is not None for m in maps):
        base = base_map(maps, None)
        for m in maps:
            if m.scenario and m.year is not None and base.year is not None and m.year <= base.year:
                problems.append(
                    f"[landuse.maps] the scenario {m.label!r} (year {m.year}) is not after its base map {base.label!r} "
                    f"(year {base.year}); a scenario's year must come after the base year"
                )
    return maps, problems


def base_map(maps: list[LandUseMap], year: int | None) -> LandUseMap:
    """The study's base map: the historical map of ``year`` when there is one, else the latest
    historical map."""
    history = [m for m in maps if not m.scenario] or maps
    if year is not None:
        for m in history:
            if m.year == year:
                return m
    return max(history, key=lambda m: (m.year is not None, m.year or 0))


def change_pairs(maps: list[LandUseMap], base: LandUseMap) -> list[tuple[str, str]]:
    """Consecutive historical maps by year, then the base map to each scenario."""
    history = sorted((m for m in maps if not m.scenario), key=lambda m: m.year or 0)
    pairs = [(a.label, b.label) for a, b in zip(history, history[1:])]
    pairs += [(base.label, m.label) for m in maps if m.scenario]
    return pairs


def _shown(path: Any, out: Path) -> str:
    """A path as a results table records it: relative to the results folder when inside it (the
    folder is built in a staging copy and moved), else as given."""
    try:
        return Path(path).resolve().relative_to(Path(out).resolve()).as_posix()
    except ValueError:
        return str(path)


def slug(label: str) -> str:
    """A folder name for a map's label (``2030 ecological protection`` → ``2030_ecological_protection``)."""
    return re.sub(r"[^\w.-]+", "_", label, flags=re.UNICODE).strip("_") or "map"


def maps_problems(values: Mapping[str, Any], keys: frozenset[str]) -> list[str]:
    """The settings rule of ``[landuse]``: exactly one of ``rasters`` and ``maps``, and the maps'
    own problems (paths are checked with the other inputs)."""
    if "rasters" in keys and "maps" in keys:
        return ["[landuse] takes `rasters` (one map) or a [landuse.maps] table (several), not both"]
    if "rasters" not in keys and "maps" not in keys and "raster" not in keys:
        return ["[landuse] needs `rasters` (GeoTIFF(s) of integer land-use codes) or a [landuse.maps] table of several maps"]
    return parse_maps(values.get("maps"), folder=Path("."))[1] if "maps" in values else []


def check_maps(maps: list[LandUseMap], *, pools: Any, scan: bool) -> list[str]:
    """Every map's files, one grid for all (naming the map that differs), each map's pools table
    and, with ``scan``, codes missing from it. Reads headers (and, with ``scan``, the codes
    window by window); computes nothing."""
    import numpy as np
    import rasterio
    from carbonscape.carbon import read_pools, unknown_codes_message
    from carbonscape.errors import InputError
    from carbonscape.study.inputs import scan_codes

    problems: list[str] = []
    reference: tuple[str, Any, Any, Any] | None = None
    for m in maps:
        ok = True
        for raster in m.rasters:
            if not remote.is_url(raster) and not raster.is_file():
                problems.append(f"land-use map {m.label!r}: {raster}: no such file")
                ok = False
                continue
            try:
                with remote.gdal_env_for(raster), rasterio.open(raster) as src:
                    if np.dtype(src.dtypes[0]).kind not in "iu":
                        problems.append(f"land-use map {m.label!r}: {raster}: codes must be integers, not {src.dtypes[0]}")
                        ok = False
                    header = (src.crs, src.transform, (src.height, src.width))
            except rasterio.errors.RasterioIOError as exc:
                problems.append(f"land-use map {m.label!r}: {raster}: unreadable ({exc})")
                ok = False
                continue
            if len(m.rasters) == 1:
                if reference is None:
                    reference = (m.label, *header)
                elif header != reference[1:]:
                    label, crs, transform, shape = reference
                    problems.append(
                        f"land-use map {m.label!r} ({raster}) is not on the grid of map {label!r}: CRS {src.crs} vs {crs}, "
                        f"origin/pixel {tuple(header[1])[:6]} vs {tuple(transform)[:6]}, shape {header[2]} vs {shape}; "
                        f"warp it onto that grid, e.g. `gdalwarp -te ... -tr ... -t_srs ...`"
                    )
                    ok = False
        table = pools
        if m.pools is not None:
            try:
                table = read_pools(m.pools)
            except InputError as exc:
                problems.append(f"land-use map {m.label!r}: pools: {exc}")
                table = None
        if ok and scan and table is not None:
            found: dict[int, int] = {}
            for raster in m.rasters:
                for code, count in scan_codes(raster).items():
                    found[code] = found.get(code, 0) + count
            missing = {code: n for code, n in found.items() if code not in table.codes}
            if missing:
                problems.append(f"land-use map {m.label!r}: " + unknown_codes_message(", ".join(remote.name_of(p) for p in m.rasters), table, missing))
    return problems


def study_maps(study: Any) -> list[LandUseMap]:
    """The maps of a study's ``[landuse.maps]``, paths resolved against the study's folder."""
    return parse_maps(study.setting("landuse", "maps"), folder=study.folder)[0]


def year_column(table: Any, column: str | None, year: int | None, suffix: str) -> str | None:
    """The column of ``year`` in the county table: ``column + suffix`` with ``{year}`` filled
    (``population_2030``) when the table has it, else ``column`` itself (None stays None)."""
    if column is None or year is None:
        return column
    dated = f"{column}{suffix.format(year=year)}"
    return dated if dated in table.columns else column


@dataclass
class MapBalance:
    """One map's demand, ratio and zones (per-map counterparts of the study's base tables)."""

    demand: Any
    ratio_zones: Any
    zoning: dict[str, Any]
    population_column: str
    emissions_column: str | None


def map_balances(study: Any, result: Any, *, table: Any, polygons: Any, maps: list[LandUseMap]) -> dict[str, MapBalance]:
    """Demand, ratio and zones of every map, from its own supply and its year's county figures.

    Demand of a map of year Y takes the county table's ``<population><suffix>`` column
    (``[demand] year_suffix``, default ``_{year}``: ``population_2030``) when the table has it,
    else the study's population column; the same for ``emissions_column``. The per-capita
    emission is the study's. Each map's ratios are classified on their own, with the study's
    ``[zoning]`` method, k and scheme (its own natural breaks, recorded per map).
    """
    import pandas as pd
    from carbonscape.rasterize import geodesic_areas_km2

    table = table.copy()
    table.index = table.index.astype(str)
    keys = polygons[study.id_field].astype(str)
    area_km2 = pd.Series(geodesic_areas_km2(polygons), index=pd.Index(keys, name="county"))
    suffix = study.setting("demand", "year_suffix", "_{year}")
    out: dict[str, MapBalance] = {}
    base = base_map(maps, study.year)
    for m in maps:
        with _messages_of_map(m.label, quiet=m.label == base.label):
            out[m.label] = _balance(study, m, result.supply[m.label], table=table, area_km2=area_km2, suffix=suffix)
    return out


class _MapMessages(logging.Filter):
    def __init__(self, label: str, quiet: bool) -> None:
        super().__init__()
        self.label, self.quiet = label, quiet

    def filter(self, record: logging.LogRecord) -> bool:
        if self.quiet:  # the base map's messages are the study's own, given once by the study
            return False
        record.msg = f"land-use map {self.label!r}: {record.getMessage()}"
        record.args = ()
        return True


@contextlib.contextmanager
def _messages_of_map(label: str, *, quiet: bool) -> Any:
    """Warnings of the demand, ratio and zoning of one map name the map (and are not repeated for
    the base map, whose own come with the study's tables)."""
    loggers = [logging.getLogger(name) for name in ("carbonscape.demand", "carbonscape.ratio", "carbonscape.zoning", "carbonscape.breaks")]
    found = _MapMessages(label, quiet)
    for logger in loggers:
        logger.addFilter(found)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(found)


def _balance(study: Any, m: LandUseMap, supply_result: Any, *, table: Any, area_km2: Any, suffix: str) -> MapBalance:
    import pandas as pd
    from carbonscape.demand import demand_by_county
    from carbonscape.errors import InputError, StudyError
    from carbonscape.ratio import supply_demand_ratio
    from carbonscape.zoning import zone_ratios

    by_county = supply_result.by_county.assign(county=supply_result.by_county["county"].astype(str)).set_index("county")
    population = year_column(table, study.demand.population, m.year, suffix)
    emissions = year_column(table, study.demand.emissions_column, m.year, suffix)
    try:
        demand = demand_by_county(
            table, area_km2=area_km2, pixel_area_km2=by_county["area_km2"], per_capita_t=study.demand.per_capita(),
            emissions_column=emissions, population_column=population,  # type: ignore[arg-type]
        )
        ratio = supply_demand_ratio(by_county["supply_t"], demand, units=study.ratio_units)
        weights = ratio["area_km2"] if study.zoning.weights == "area" else None
        zones_frame, zoning = zone_ratios(
            ratio["ratio"], method=study.zoning.method, k=study.zoning.k,
            breaks=list(study.zoning.breaks) if study.zoning.breaks else None, weights=weights, scheme=study.zoning.scheme,
        )
    except InputError as exc:
        raise StudyError(f"land-use map {m.label!r} (year {m.year}, population column {population!r}): {exc}", path=str(study.path)) from exc
    ratio_zones = pd.concat([ratio, zones_frame], axis=1)
    ratio_zones.index.name = "county"
    return MapBalance(demand=demand, ratio_zones=ratio_zones, zoning=zoning, population_column=population,  # type: ignore[arg-type]
                      emissions_column=emissions)


def write_map_balance(balance: MapBalance, folder: Path) -> None:
    """``demand_by_county.csv`` and ``ratio_zones.csv`` of one map, with the base map's columns."""
    from carbonscape.io import atomic_path
    from carbonscape.ratio import DEMAND_UNITS
    from carbonscape.study.outputs import DEMAND_COLUMNS, RATIO_COLUMNS

    demand = balance.demand
    demand_out = demand[[c for c in DEMAND_COLUMNS if c in demand.columns]].reset_index()
    demand_out["demand_unit"] = DEMAND_UNITS["co2_per_c"]
    ratio_out = balance.ratio_zones[[c for c in RATIO_COLUMNS if c in balance.ratio_zones.columns]].reset_index()
    folder.mkdir(parents=True, exist_ok=True)
    for frame, name in ((demand_out, "demand_by_county.csv"), (ratio_out, "ratio_zones.csv")):
        with atomic_path(folder / name) as tmp:
            frame.to_csv(tmp, index=False, encoding="utf-8", float_format="%.10g")


def draw_changes(result: Any, out: Path, *, polygons: Any = None, id_field: str | None = None, study: Any = None,
                 maps: list[LandUseMap] | None = None) -> list[Path]:
    """Each change's Sankey of the region's transitions (``transitions_sankey.png``) and, with the
    polygons, its map of carbon change per county (``carbon_change_by_county.png``), in
    ``changes/<from>_to_<to>/``; drawn from the result in memory. With the study (and its maps),
    the county map's study line and footer credit the study and the two maps' files."""
    from carbonscape.change_figures import draw_change_map, draw_transitions

    if study is not None and maps is None:
        maps = study_maps(study)
    drawn = []
    for (a, b), found in result.changes.items():
        folder = out / "changes" / f"{slug(a)}_to_{slug(b)}"
        folder.mkdir(parents=True, exist_ok=True)
        drawn.append(draw_transitions(found, folder / "transitions_sankey.png"))
        found.files["transitions_sankey"] = folder / "transitions_sankey.png"
        if polygons is not None and id_field is not None:
            draw_change_map(found, polygons, id_field, folder / "carbon_change_by_county.png",
                            inputs=_change_map_inputs(study, [m for m in maps or [] if m.label in (a, b)], polygons))
            found.files["carbon_change_by_county"] = folder / "carbon_change_by_county.png"
            drawn.append(folder / "carbon_change_by_county.png")
    return drawn


def _change_map_inputs(study: Any, pair: list[LandUseMap], polygons: Any) -> Any:
    """What a change map's sheet credits (:func:`carbonscape.maps.credit_line`): the study's name,
    its ``[study] source`` or the files of the two maps, boundaries and pools tables."""
    if study is None:
        return None
    from carbonscape import __version__
    from carbonscape.maps import MapInputs, sources_of

    inputs = [{"role": "landuse", "path": str(raster)} for m in pair for raster in m.rasters]
    inputs.append({"role": "counties", "path": str(study.counties)})
    inputs += [{"role": "pools", "path": str(path)} for path in dict.fromkeys(str(m.pools or study.pools) for m in pair)]
    info = {"study": {"source": study.setting("study", "source")}, "inputs": inputs}
    return MapInputs(counties=polygons, study=str(study.name or ""), sources=sources_of(info), version=__version__)


def run_maps(study: Any, *, stores: Path, county_store: Path, base_store: Path, out: Path, run: Any, progress: bool,
             polygons: Any = None, draw: bool = False, table: Any = None) -> Any:
    """Ingest every map (the base map's store is reused), then one pass over all of them
    (:func:`carbonscape.change.maps_pass`); write each map's supply tables to ``maps/<label>/``,
    each change's tables to ``changes/<from>_to_<to>/`` and ``maps_summary.csv``."""
    import pandas as pd
    from carbonscape.change import maps_pass
    from carbonscape.io import ingest

    maps = study_maps(study)
    base = base_map(maps, study.year)
    paths: dict[str, Path] = {}
    for m in maps:
        if m.label == base.label:
            paths[m.label] = base_store
        else:
            paths[m.label] = ingest(list(m.rasters), remote.join(stores, f"landuse_{slug(m.label)}.zarr"), chunk=study.chunk, progress=progress, run=run)
    pools = {m.label: m.pools or study.pools for m in maps}
    pairs = change_pairs(maps, base)
    from carbonscape.change import Valuation

    price = study.setting("valuation", "price")
    valuation = None if price is None else Valuation(
        price=price, discount_rate=study.setting("valuation", "discount_rate"), rate_change=study.setting("valuation", "rate_change", 0.0)
    )
    result = maps_pass(paths, county_store, pools, pairs=pairs, years={m.label: m.year for m in maps}, valuation=valuation,
                       progress=progress, run=run)
    balances = map_balances(study, result, table=table, polygons=polygons, maps=maps) if table is not None and polygons is not None else {}
    result.balances = balances
    for m in maps:
        result.supply[m.label].write(out / "maps" / slug(m.label))
        if m.label in balances:
            write_map_balance(balances[m.label], out / "maps" / slug(m.label))
    for a, b in pairs:
        folder = out / "changes" / f"{slug(a)}_to_{slug(b)}"
        result.changes[(a, b)].write(folder)
    if draw:
        draw_changes(result, out, polygons=polygons, id_field=study.id_field, study=study, maps=maps)
    rows = [{"map": m.label, "year": m.year, "scenario": m.scenario, "base": m.label == base.label,
             "supply_t": result.supply[m.label].total_t, "pools": _shown(pools[m.label], out)} for m in maps]
    for row in rows:
        row["folder"] = f"maps/{slug(row['map'])}"
        balance = balances.get(row["map"])
        if balance is not None:
            row["population_column"] = balance.population_column
            row["emissions_column"] = balance.emissions_column
            row["population"] = float(balance.demand["population"].sum())
            row["emissions_t"] = float(balance.demand["emissions_t"].sum())
            row["counties_per_zone"] = "; ".join(f"{k}: {v}" for k, v in balance.ratio_zones["zone"].value_counts(sort=False).items())
    summary = pd.DataFrame(rows)
    summary.to_csv(out / "maps_summary.csv", index=False, encoding="utf-8", float_format="%.10g")
    changes = pd.DataFrame([
        {"from": a, "to": b, **{k: result.changes[(a, b)].summary[k] for k in ("supply_from_t", "supply_to_t", "change_t", "changed_pixels",
                                                                                "nodata_from_only_pixels", "nodata_to_only_pixels",
                                                                                "comprehensive_dynamic_degree_pct_per_year")},
         **({"npv": result.changes[(a, b)].summary["valuation"]["npv"]} if "valuation" in result.changes[(a, b)].summary else {}),
         "folder": f"changes/{slug(a)}_to_{slug(b)}"}
        for a, b in pairs
    ])
    changes.to_csv(out / "changes_summary.csv", index=False, encoding="utf-8", float_format="%.10g")
    return result
