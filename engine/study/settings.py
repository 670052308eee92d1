"""Every setting of a study file, declared once: the parser, `check`, the `init` template and the
settings reference (`carbonscape settings`) are all made from :data:`SETTINGS`.

Adding a setting is one :class:`Setting` row (plus, when it constrains another setting, one
:class:`Rule`) and the code that uses it, which reads it with ``study.setting(section, key)``.
A section is named by its TOML table, dotted for a sub-table (``"landuse.maps"``).

The file is strict: an unknown section or key is an error naming the line and the nearest
valid name, so a misspelt ``[output]`` or ``pixel_map`` never silently does nothing (rioxarray's
``_options.py`` checks its options against one table in the same way).
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from carbonscape.breaks import METHODS as ZONING_METHODS
from carbonscape.coverage import COVERAGE_MODES, DEFAULT_MIN_COVERAGE
from carbonscape.continuous import NPP_UNITS, RESAMPLING
from carbonscape.ratio import UNIT_ALIASES, UNITS
from carbonscape.zoning import PAPER_RATIO_BREAKS, SCHEME_ALIASES, SCHEME_NAMES

__all__ = ["KINDS", "RULES", "SECTIONS", "SETTINGS", "Rule", "Setting", "parse", "reference", "template"]


class _Required:
    def __repr__(self) -> str:
        return "required"


REQUIRED: Any = _Required()

# What each kind accepts, in the words a message uses ("must be <this>").
KINDS = {
    "text": "a text",
    "path": "a path or an s3:// or http(s):// URL (text)",
    "paths": "a path or URL, or a non-empty list of them",
    "int": "an integer",
    "number": "a number",
    "bool": "true or false",
    "choice": "one of the listed values",
    "numbers": "a list of numbers",
    "choice_or_table": "a name or a table",
    "table": "a table",
}


@dataclass(frozen=True)
class Setting:
    """One key of one section of the study file.

    Parameters
    ----------
    section, key
        Where it sits: ``[section] key = ...`` (``section`` dotted for a sub-table).
    kind
        One of :data:`KINDS`; ``path``/``paths`` resolve against the study file's folder.
    default
        The value when the key is absent; :data:`REQUIRED` when it must be given; None when
        absence means "not used".
    choices
        Allowed values for ``choice``/``choice_or_table`` (taken from the module that owns them,
        never restated here).
    aliases
        Old values still accepted, mapped to their current names.
    minimum
        Smallest allowed ``int``/``number``; ``positive`` refuses zero.
    help
        One line for the template and the reference.
    example
        The TOML text the template shows (default: the default).
    template
        ``"set"`` (an active line), ``"comment"`` (a commented-out line) or ``"hide"``.
    names
        Other key names accepted for this setting (``raster`` for ``rasters``).
    """

    section: str
    key: str
    kind: str
    default: Any = None
    help: str = ""
    choices: Sequence[str] | None = None
    aliases: Mapping[str, str] = field(default_factory=dict)
    minimum: float | None = None
    positive: bool = False
    example: str | None = None
    template: str = "set"
    names: tuple[str, ...] = ()

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def name(self) -> str:
        return f"[{self.section}] {self.key}"


@dataclass(frozen=True)
class Rule:
    """A check across settings of one section: ``check(values, given) -> problems``, with the
    section's valid values (absent or bad keys are missing from ``values``) and the keys the file
    gives (valid or not)."""

    section: str
    check: Callable[[Mapping[str, Any], frozenset[str]], list[str]]


SECTIONS: dict[str, str] = {
    "study": "Name and year of the study, shown in the report and run.json.",
    "landuse": "The land-use raster: one GeoTIFF of integer codes, or several tiles of one grid.",
    "counties": "The polygons of the units (counties) that supply, demand and the ratio are computed for.",
    "units": "Grid cells as units beside the counties: the whole analysis again on square cells (written into cells/).",
    "pools": "InVEST carbon pools table: lucode, c_above, c_below, c_soil, c_dead (t/ha), optional LULC_name.",
    "demand": "Demand = per-capita emission × population density. Give exactly one of per_capita_t, "
    "total_emissions_t (with total_population) or emissions_column.",
    "ratio": "How demand and supply are put side by side.",
    "zoning": "Ratio classes and the functional zones they are grouped into.",
    "outputs": "What is written besides the tables.",
    "valuation": "InVEST's valuation of the carbon change between maps ([landuse.maps]): price, discount rate, price change.",
    "cluster": "Where the work runs when no --scheduler is given: an address, a scheduler file, or an HPC job queue "
    "(slurm, pbs...) with the size of each worker job (over the dask configuration's jobqueue.<queue>.*).",
    "matching": "Supply–demand matching indices beside the ratio (balance, ESDR, z-score quadrants, coupling coordination).",
    "statistics": "Spatial statistics of supply density, demand density and ratio (PySAL: Moran's I, LISA, Getis–Ord Gi*).",
    "uncertainty": "Monte Carlo of the carbon densities, when the pools table gives spreads (c_above_sd ... or c_above_min/_max ...).",
    "continuous": "Float rasters summed per county in the supply pass: a population grid for demand, NPP for yearly sequestration, "
    "factors correcting the carbon densities. A raster on another grid is resampled by nearest neighbour onto the land use's.",
}

_NPP_UNITS = tuple(NPP_UNITS)

_ZONING_METHOD_HELP = "jenks (exact Fisher-Jenks), quantile, equal or manual"

SETTINGS: tuple[Setting, ...] = (
    Setting("study", "name", "text", None, "name of the study (default: the file's name)", example='"My region 2020"'),
    Setting("study", "year", "int", None, "year of the land use and population", example="2020"),
    Setting("study", "source", "text", None, "data sources the maps and report credit (default: the input files' names)",
            example='"land use: ESA WorldCover 2020; boundaries: national county map; population: 2020 census"', template="comment"),
    Setting("landuse", "rasters", "paths", None, "GeoTIFF(s) of integer land-use codes; several tiles are mosaicked",
            example='["landuse.tif"]', names=("raster",)),
    Setting("landuse", "maps", "table", None,
            "or several maps (years, scenarios) instead of `rasters`: label = path(s) or "
            "{ rasters = [...], year = ..., scenario = true, pools = \"...\" }; see [landuse.maps] in README",
            example='{ "2000" = "lu2000.tif", "2020" = "lu2020.tif" }', template="comment"),
    Setting("landuse", "chunk", "int", 4096, "chunk edge in pixels", minimum=256, template="comment"),
    Setting("counties", "path", "path", REQUIRED, "GeoPackage, Shapefile, GeoJSON...", example='"counties.gpkg"'),
    Setting("counties", "id_field", "text", REQUIRED, "field holding the unique name or code of each county", example='"county"'),
    Setting("counties", "layer", "text", None, "layer to read when the file has several", example='"counties"', template="comment"),
    Setting("counties", "encoding", "text", None, "code page of the attribute text when the file does not say (a shapefile "
            "without .cpg); default: detected (UTF-8 or GBK)", example='"GBK"', template="comment"),
    Setting("counties", "coverage", "choice", "centre",
            "centre: a pixel belongs to the county holding its centre (ArcGIS, InVEST); fraction: boundary pixels are shared "
            "by their exact covered fraction (exactextract), for pixels coarse against the counties",
            choices=COVERAGE_MODES, example='"fraction"', template="comment"),
    Setting("counties", "min_coverage", "number", DEFAULT_MIN_COVERAGE,
            "refuse a county whose land-use pixels cover less than this share of its area (outside the raster, nodata); "
            "lower it to accept such counties, their supply density over the covered area, flagged low_coverage",
            minimum=0, template="comment"),
    Setting("units", "grid", "number", None, "square cells of SIZE CRS units (metres, or degrees on a geographic grid), a multiple of "
            "the pixel size, from the land use's top-left corner; each cell's demand is its counties' demand density, area-weighted",
            positive=True, example="1000", template="comment"),
    Setting("pools", "path", "path", REQUIRED, "the pools table (CSV or XLSX)", example='"pools.csv"'),
    Setting("demand", "table", "path", None, "CSV or XLSX with one row per county (required unless [continuous] population)",
            example='"population.csv"'),
    Setting("demand", "key", "text", None, "column matching [counties] id_field (default: the same name)", example='"county"'),
    Setting("demand", "sheet", "text", None, "Excel sheet (default: the first)", example='"Sheet1"', template="comment"),
    Setting("demand", "population", "text", "population", "column of population (people)"),
    Setting("demand", "total_emissions_t", "number", None, "the region's total CO2 emissions (t), with total_population",
            positive=True, example="2.0e8"),
    Setting("demand", "total_population", "number", None, "the region's population: per capita = total_emissions_t / total_population",
            positive=True, example="4.858e7"),
    Setting("demand", "per_capita_t", "number", None, "or a per-capita emission directly (t CO2 per person)", positive=True,
            example="4.1", template="comment"),
    Setting("demand", "emissions_column", "text", None, "or each county's own emissions (t CO2), e.g. a CEADs county inventory",
            example='"co2_t"', template="comment"),
    Setting("demand", "year_suffix", "text", "_{year}", "with [landuse.maps]: each map's demand takes the column "
            "<population or emissions_column><suffix> of its year when the table has it (population_2030), else the study's column",
            example='"_{year}"', template="comment"),
    Setting("ratio", "units", "choice", "co2_per_c", "; ".join(f"{name}: {meaning}" for name, meaning in UNITS.items()),
            choices=tuple(UNITS), aliases=UNIT_ALIASES),
    Setting("zoning", "method", "choice", "jenks", _ZONING_METHOD_HELP, choices=ZONING_METHODS),
    Setting("zoning", "k", "int", 7, "number of ratio classes", minimum=2),
    Setting("zoning", "weights", "choice", "none", "area: weight counties by their area, as classifying a ratio map does",
            choices=("area", "none"), example='"area"', template="comment"),
    Setting("zoning", "breaks", "numbers", None, "manual: the k + 1 class edges, lowest to highest",
            example="[" + ", ".join(str(b) for b in PAPER_RATIO_BREAKS) + "]", template="comment"),
    Setting("zoning", "scheme", "choice_or_table", "four_zones",
            "four_zones: 7 classes into 4 functional zones; classes: one zone per class; or a table of zones",
            choices=SCHEME_NAMES, aliases=SCHEME_ALIASES),
    Setting("outputs", "dir", "path", None, "output folder (default: results beside this file)", example='"results"', template="comment"),
    Setting("outputs", "stores", "path", None,
            "where the Zarr stores go (default: stores/ in the output folder); an s3:// prefix lets a cloud cluster "
            "work with no shared disk", example='"s3://my-bucket/my-study"', template="comment"),
    Setting("outputs", "maps", "bool", True, "draw the maps"),
    Setting("outputs", "report", "bool", True, "write report.html"),
    Setting("outputs", "pixel_maps", "bool", False, "also carbon per pixel (t/ha) as Zarr and Cloud-Optimized GeoTIFF"),
    Setting("valuation", "price", "number", None, "price of carbon per t C (currency); values each change between maps",
            minimum=0, example="50", template="comment"),
    Setting("valuation", "discount_rate", "number", None, "annual market discount rate, % (with price)", example="7",
            template="comment"),
    Setting("valuation", "rate_change", "number", 0.0, "annual change in the price of carbon, %", template="comment"),
    Setting("cluster", "scheduler", "text", None, "tcp://HOST:PORT, a scheduler file, or a job queue: slurm, pbs, sge, lsf...",
            example='"slurm"', template="comment"),
    Setting("cluster", "jobs", "int", None, "worker jobs to submit to the queue (default 1)", minimum=1, example="4", template="comment"),
    Setting("cluster", "queue", "text", None, "the queue (SLURM partition) of the worker jobs", example='"normal"', template="comment"),
    Setting("cluster", "account", "text", None, "the account the jobs are charged to", example='"my-project"', template="comment"),
    Setting("cluster", "cores", "int", None, "cores of each worker job", minimum=1, example="8", template="comment"),
    Setting("cluster", "memory", "text", None, "memory of each worker job", example='"32GiB"', template="comment"),
    Setting("cluster", "walltime", "text", None, "time limit of each worker job", example='"01:00:00"', template="comment"),
    Setting("cluster", "timeout", "number", None, "seconds to wait for the first worker (default 300)", positive=True,
            example="900", template="comment"),
    Setting("matching", "supply_weight", "number", 0.5, "α of the coupling coordination degree's T = α·U1 + β·U2 (α + β = 1)",
            minimum=0, template="comment"),
    Setting("matching", "demand_weight", "number", 0.5, "β, the weight of demand in T", minimum=0, template="comment"),
    Setting("statistics", "enabled", "bool", None, "Moran's I, LISA and Gi* (default: when there are at least 5 counties)",
            example="true", template="comment"),
    Setting("statistics", "weights", "text", "queen", 'spatial weights, row-standardised: "queen", "rook" or "knn:<k>"',
            example='"queen"', template="comment"),
    Setting("statistics", "permutations", "int", 999, "permutations for the pseudo p-values", minimum=99, template="comment"),
    Setting("statistics", "seed", "int", 12345, "seed of the permutations (the same seed, the same p-values)", minimum=0, template="comment"),
    Setting("statistics", "alpha", "number", 0.05, "significance level of LISA clusters and hot spots", positive=True, template="comment"),
    Setting("uncertainty", "enabled", "bool", None, "Monte Carlo of the densities (default: when the pools table gives spreads)",
            example="true", template="comment"),
    Setting("uncertainty", "draws", "int", 1000, "Monte Carlo draws, one density per class and pool each", minimum=20, template="comment"),
    Setting("uncertainty", "seed", "int", 12345, "seed of the draws (the same seed, the same file)", minimum=0, template="comment"),
    Setting("continuous", "population", "path", None, "people per pixel (WorldPop/LandScan GeoTIFF): each county's population is "
            "its sum, in place of the [demand] table's population column (the table is then optional)", example='"ppp_2020.tif"',
            template="comment"),
    Setting("continuous", "npp", "path", None, "net primary productivity GeoTIFF: yearly sequestration per county "
            "(sequestration_by_county.csv), a flux beside the emissions", example='"npp_2020.tif"', template="comment"),
    Setting("continuous", "npp_units", "choice", "g C m-2 yr-1", "units of the NPP raster's values", choices=_NPP_UNITS,
            template="comment"),
    Setting("continuous", "factors", "table", None, "correction factor rasters of the carbon densities, by pool "
            "(c_above, c_below, c_soil, c_dead); a pool without one is not corrected",
            example='{ c_above = "k_biomass.tif", c_below = "k_biomass.tif", c_soil = "k_soil.tif" }', template="comment"),
    Setting("continuous", "factor_table", "path", None, "or per county: CSV/XLSX with the county key and `factor` (every pool) "
            "or c_above ... c_dead columns", example='"factors.csv"', template="comment"),
    Setting("continuous", "factor_key", "text", None, "key column of factor_table (default: [counties] id_field)",
            example='"county"', template="comment"),
    Setting("continuous", "resampling", "choice", "none", "nearest: also resample rasters in another CRS than the land use's; "
            "none: refuse them (same CRS, other pixels: always nearest)", choices=RESAMPLING, example='"nearest"', template="comment"),
    Setting("continuous", "max_uncovered", "number", 0.001, "largest share of the counties' area a raster may leave outside "
            "its extent (check refuses more); run warns when more of their pixels are its nodata", minimum=0, template="comment"),
)


def _counties_coverage(values: Mapping[str, Any], keys: frozenset[str]) -> list[str]:
    from carbonscape.coverage import check_min_coverage
    from carbonscape.errors import InputError

    if "min_coverage" not in values:
        return []
    try:
        check_min_coverage(values["min_coverage"], where="[counties] min_coverage")
    except InputError as exc:
        return [str(exc)]
    return []


def _demand_sources(values: Mapping[str, Any], keys: frozenset[str]) -> list[str]:
    problems = []
    given = [k for k in ("per_capita_t", "total_emissions_t", "emissions_column") if k in keys]
    if len(given) != 1:
        problems.append(
            "[demand] needs exactly one of `per_capita_t`, `total_emissions_t` (with `total_population`) "
            f"or `emissions_column`; found {', '.join(given) or 'none'}"
        )
    if "total_emissions_t" in keys and "total_population" not in keys:
        problems.append("[demand] `total_emissions_t` needs `total_population` too (per capita = total_emissions_t / total_population)")
    return problems


def _zoning_consistent(values: Mapping[str, Any], keys: frozenset[str]) -> list[str]:
    from carbonscape.breaks import manual_breaks
    from carbonscape.errors import InputError
    from carbonscape.zoning import get_scheme

    problems: list[str] = []
    method, k, breaks = values.get("method"), values.get("k"), values.get("breaks")
    if method == "manual" and breaks is not None:
        try:
            manual_breaks(list(breaks))
        except InputError:
            problems.append(
                f"[zoning] breaks {_show(list(breaks))} must be finite and strictly increasing; list the k + 1 class edges "
                "from the lowest to the highest"
            )
    if method == "manual" and k is not None and (breaks is None and "breaks" not in keys or breaks is not None and len(breaks) != k + 1):
        given = "none" if breaks is None else len(breaks)
        problems.append(f"[zoning] manual zoning needs `breaks`: k + 1 = {k + 1} class edges, got {given}")
    if k is not None and "scheme" in values:
        try:
            get_scheme(values["scheme"], k=k)
        except InputError as exc:
            problems.append(f"[zoning] {exc}")
    return problems


def _valuation(values: Mapping[str, Any], keys: frozenset[str]) -> list[str]:
    if keys and ("price" not in keys or "discount_rate" not in keys):
        return ["[valuation] needs both `price` (per t C) and `discount_rate` (%, per year)"]
    return []


def _landuse_maps(values: Mapping[str, Any], keys: frozenset[str]) -> list[str]:
    from carbonscape.study.landuse_maps import maps_problems

    return maps_problems(values, keys)


def _matching_weights(values: Mapping[str, Any], keys: frozenset[str]) -> list[str]:
    from carbonscape.errors import InputError
    from carbonscape.matching import check_weights

    if "supply_weight" not in values or "demand_weight" not in values:
        return []
    try:
        check_weights(values["supply_weight"], values["demand_weight"])
    except InputError as exc:
        return [f"[matching] supply_weight and demand_weight: {exc}"]
    return []


def _statistics_settings(values: Mapping[str, Any], keys: frozenset[str]) -> list[str]:
    from carbonscape.spatial import SpatialSettings, settings_problems

    defaults = SpatialSettings()
    return settings_problems(values.get("weights", defaults.weights), values.get("permutations", defaults.permutations),
                             values.get("seed", defaults.seed), values.get("alpha", defaults.alpha))


def _uncertainty_settings(values: Mapping[str, Any], keys: frozenset[str]) -> list[str]:
    from carbonscape.errors import InputError
    from carbonscape.uncertainty import DEFAULT_DRAWS, DEFAULT_SEED, check_draws

    try:
        check_draws(values.get("draws", DEFAULT_DRAWS), values.get("seed", DEFAULT_SEED))
    except InputError as exc:
        return [str(exc)]
    return []


def _continuous_settings(values: Mapping[str, Any], keys: frozenset[str]) -> list[str]:
    factors = values.get("factors")
    if not isinstance(factors, Mapping):
        return []
    from carbonscape.carbon import POOL_COLUMNS

    problems = [f"[continuous] factors: `{pool}` is not a pool; use {', '.join(POOL_COLUMNS)}" for pool in factors if pool not in POOL_COLUMNS]
    problems += [f"[continuous] factors: `{pool}` must be a path (text), not {_show(path)}" for pool, path in factors.items()
                 if not isinstance(path, str) or not path.strip()]
    return problems


RULES: tuple[Rule, ...] = (Rule("demand", _demand_sources), Rule("zoning", _zoning_consistent), Rule("landuse", _landuse_maps), Rule("valuation", _valuation),
                           Rule("matching", _matching_weights),
                           Rule("statistics", _statistics_settings), Rule("uncertainty", _uncertainty_settings),
                           Rule("counties", _counties_coverage), Rule("continuous", _continuous_settings))


# ---------------------------------------------------------------------------------------------
# Parsing


def _show(value: Any) -> str:
    """A value as a user wrote it (``0.5``, ``'abc'``, ``[1, 2]``), never numpy's repr."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "a table"
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        value = value.item()
    return repr(value)


_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=""")


def _split_dotted(text: str) -> list[str]:
    return [part.strip().strip("\"'") for part in re.findall(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""", text)]


def line_numbers(text: str) -> dict[tuple[str, ...], int]:
    """The line (1-based) of each table header and key of a TOML text: ``("outputs",)`` for
    ``[outputs]``, ``("outputs", "maps")`` for its ``maps = ...``. Enough of TOML for pointing
    at a line; tomllib, which read the values, has no positions."""
    where: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    in_multiline: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if in_multiline:
            if in_multiline in line:
                in_multiline = None
            continue
        header = _HEADER.match(line)
        if header and not _KEY.match(line):
            table = tuple(_split_dotted(header.group(1)))
            where.setdefault(table, number)
            continue
        key = _KEY.match(line)
        if key:
            path = (*table, *_split_dotted(key.group(1)))
            where.setdefault(path, number)
            for quote in ('"""', "'''"):
                if line.count(quote) == 1:
                    in_multiline = quote
    return where


def _nearest(name: str, candidates: Sequence[str]) -> str | None:
    found = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.5)
    if not found:  # "output" vs "outputs" scores high; a prefix should win too
        found = [c for c in candidates if c.startswith(name) or name.startswith(c)][:1]
    return found[0] if found else None


def settings_of(section: str) -> list[Setting]:
    return [s for s in SETTINGS if s.section == section]


def _section_names() -> list[str]:
    names = list(SECTIONS)
    for setting in SETTINGS:
        if setting.section not in names:
            names.append(setting.section)
    return names


def _table_at(raw: Mapping[str, Any], section: str) -> Any:
    value: Any = raw
    for part in section.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _resolve(folder: Path, value: str) -> Path | str:
    """A path relative to the study file's folder; an ``s3://`` or ``http(s)://`` URL as given."""
    from carbonscape import remote

    if remote.is_url(value):
        return value.strip().rstrip("/")
    path = Path(value).expanduser()
    return path if path.is_absolute() else folder / path


def _convert(setting: Setting, value: Any, *, folder: Path) -> tuple[Any, str | None]:
    """The setting's value as the study uses it, or the problem with it."""
    where = f"[{setting.section}] `{setting.key}`"
    kind = setting.kind

    def bad(expected: str) -> tuple[Any, str]:
        return None, f"{where} must be {expected}, not {_show(value)}"

    if kind in ("text", "path"):
        if not isinstance(value, str) or not value.strip():
            return bad(KINDS[kind])
        return (_resolve(folder, value) if kind == "path" else value), None
    if kind == "paths":
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items or not all(isinstance(v, str) and v.strip() for v in items):
            return bad(KINDS[kind])
        return tuple(_resolve(folder, v) for v in items), None
    if kind == "bool":
        return (value, None) if isinstance(value, bool) else bad(KINDS[kind])
    if kind in ("int", "number"):
        ok = isinstance(value, int) if kind == "int" else isinstance(value, (int, float)) and math.isfinite(value)
        if isinstance(value, bool) or not ok:
            return bad(KINDS[kind] + (" > 0" if setting.positive else f" >= {setting.minimum:g}" if setting.minimum is not None else ""))
        if setting.positive and not value > 0:
            return bad(f"a positive {'integer' if kind == 'int' else 'number'}")
        if setting.minimum is not None and value < setting.minimum:
            return bad(f"{KINDS[kind]} >= {setting.minimum:g}")
        return value, None
    if kind == "numbers":
        if not isinstance(value, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            return bad(KINDS[kind])
        return tuple(value), None
    if kind in ("choice", "choice_or_table"):
        if kind == "choice_or_table" and isinstance(value, dict):
            return value, None
        assert setting.choices is not None
        if isinstance(value, str) and value in setting.aliases:
            return setting.aliases[value], None
        if isinstance(value, str) and value in setting.choices:
            return value, None
        listed = ", ".join(f'"{c}"' for c in setting.choices)
        extra = " or a table" if kind == "choice_or_table" else ""
        nearest = _nearest(value, [*setting.choices, *setting.aliases]) if isinstance(value, str) else None
        nearest = setting.aliases.get(nearest, nearest) if nearest else None
        hint = f'; did you mean "{nearest}"?' if nearest else ""
        return None, f"[{setting.section}] {setting.key} {_show(value)} is not one of {listed}{extra}{hint}"
    if kind == "table":
        return (value, None) if isinstance(value, dict) else bad(KINDS[kind])
    raise AssertionError(f"unknown kind {kind!r} of {setting.name}")


def parse(raw: Mapping[str, Any], *, text: str = "", folder: Path = Path("."), file: str = "study.toml",
          ) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Check a study file's TOML against :data:`SETTINGS` and :data:`RULES`.

    Parameters
    ----------
    raw
        The parsed TOML.
    text
        Its text, to name the line of an unknown section or key.
    folder
        Where relative paths resolve.
    file
        The file's name, for messages.

    Returns
    -------
    (dict, list of str)
        ``values[section][key]``: every valid setting, defaults filled in for absent optional
        ones (absent or bad keys are left out, so what is there can still be used); and every
        problem, in file order where a line is known.
    """
    lines = line_numbers(text)
    problems: list[str] = []
    sections = _section_names()
    suggested: set[tuple[str, str]] = set()  # a misspelt required key is one problem, not two

    def at(path: tuple[str, ...]) -> str:
        return f"{file}, line {lines[path]}: " if path in lines else f"{file}: "

    # Unknown sections and keys, with the nearest valid name.
    def walk(table: Mapping[str, Any], prefix: tuple[str, ...]) -> None:
        name = ".".join(prefix)
        known = {s.key for s in settings_of(name)} | {n for s in settings_of(name) for n in s.names}
        children = {sec.split(".")[len(prefix)] for sec in sections if sec.startswith(name + ".") and sec.count(".") == len(prefix)}
        table_keys = {s.key for s in settings_of(name) if s.kind in ("table", "choice_or_table")}
        for key, value in table.items():
            path = (*prefix, key)
            if key in children:
                if isinstance(value, Mapping):
                    walk(value, path)
                else:
                    problems.append(f"{at(path)}[{'.'.join(path)}] must be a table")
                continue
            if key in known:
                if isinstance(value, Mapping) and key not in table_keys:
                    pass  # reported as a bad value below
                continue
            nearest = _nearest(key, sorted(known | children))
            hint = f"; did you mean `{nearest}`?" if nearest else ""
            if nearest:
                suggested.add((name, nearest))
            listed = ", ".join(sorted(known | children))
            problems.append(f"{at(path)}unknown key `{key}` in [{name}]{hint} ([{name}] takes: {listed})")

    for key, value in raw.items():
        if key not in sections:
            top = [s for s in sections if "." not in s]
            nearest = _nearest(key, top)
            hint = f"; did you mean [{nearest}]?" if nearest else ""
            problems.append(f"{at((key,))}unknown section [{key}]{hint} (sections: {', '.join(f'[{s}]' for s in top)})")
        elif not isinstance(value, Mapping):
            problems.append(f"{at((key,))}[{key}] must be a table, not {_show(value)}")
        else:
            walk(value, (key,))

    values: dict[str, dict[str, Any]] = {}
    for section in sections:
        table = _table_at(raw, section)
        present = isinstance(table, Mapping)
        rows = settings_of(section)
        values[section] = {}
        if not present:
            if any(s.required for s in rows) and "." not in section:
                problems.append(f"missing section [{section}]")
            table = {}
        for setting in rows:
            given = [n for n in (setting.key, *setting.names) if n in table]
            if not given:
                if setting.required:
                    if present and (section, setting.key) not in suggested:
                        problems.append(f"[{section}] needs `{setting.key}`: {setting.help}")
                elif setting.default is not None:
                    values[section][setting.key] = setting.default
                continue
            value, problem = _convert(setting, table[given[0]], folder=folder)
            if problem:
                path = (*section.split("."), given[0])
                problems.append(at(path) + problem if path in lines else problem)
            else:
                values[section][setting.key] = value
    for rule in RULES:
        table = _table_at(raw, rule.section)
        keys = frozenset(table) if isinstance(table, Mapping) else frozenset()
        problems.extend(rule.check(values.get(rule.section, {}), keys))
    return values, problems


# ---------------------------------------------------------------------------------------------
# The template and the reference


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, Mapping):  # an inline table, e.g. a map of [landuse.maps]
        return "{ " + ", ".join(f"{_toml(str(k))} = {_toml(v)}" for k, v in value.items()) + " }"
    return repr(value)


def template() -> str:
    """The commented ``study.toml`` that ``carbonscape init`` writes, one line per setting."""
    lines = [
        "# carbonscape study file. Paths are relative to this file's folder.",
        "# Check it with `carbonscape check study.toml`, run it with `carbonscape run study.toml`.",
        "# Every setting: `carbonscape settings`.",
    ]
    for section in _section_names():
        rows = [s for s in settings_of(section) if s.template != "hide"]
        if not rows:
            continue
        lines += ["", f"[{section}]"]
        if SECTIONS.get(section):
            lines.append(f"# {SECTIONS[section]}")
        for setting in rows:
            shown = setting.example if setting.example is not None else _toml(setting.default)
            line = f"{'# ' if setting.template == 'comment' else ''}{setting.key} = {shown}"
            lines.append(f"{line:<32}# {setting.help}" if len(line) < 32 else f"{line}   # {setting.help}")
    return "\n".join(lines) + "\n"


def reference() -> str:
    """Every section and setting as Markdown: kind, allowed values, default and meaning."""
    out = ["# carbonscape study file settings", "", "Generated from `carbonscape.study.settings.SETTINGS`.", ""]
    for section in _section_names():
        rows = settings_of(section)
        if not rows:
            continue
        out += [f"## [{section}]", ""]
        if SECTIONS.get(section):
            out += [SECTIONS[section], ""]
        out += ["| key | kind | allowed | default | meaning |", "|---|---|---|---|---|"]
        for s in rows:
            allowed = ", ".join(f"`{c}`" for c in s.choices) if s.choices else ""
            if s.aliases:
                allowed += " (also " + ", ".join(f"`{old}` for `{new}`" for old, new in s.aliases.items()) + ")"
            if s.minimum is not None:
                allowed = f">= {s.minimum:g}"
            if s.positive:
                allowed = "> 0"
            default = "required" if s.required else "" if s.default is None else f"`{_toml(s.default)}`"
            out.append(f"| `{s.key}` | {s.kind} | {allowed} | {default} | {s.help.replace('|', '/')} |")
        out.append("")
    return "\n".join(out)


def render(values: Mapping[str, Mapping[str, Any]], *, header: str = "", notes: Mapping[tuple[str, str], str] | None = None) -> str:
    """A study file's TOML text from ``{section: {key: value}}``, each key checked against
    :data:`SETTINGS` (so a program that writes a study, like the demo, cannot write a key the
    parser would refuse). ``notes`` adds a comment after a key's line."""
    notes = notes or {}
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    for section, table in values.items():
        known = {s.key for s in settings_of(section)}
        unknown = sorted(set(table) - known)
        if not known or unknown:
            raise ValueError(f"not settings of [{section}]: {unknown or sorted(table)}")
        lines += ["", f"[{section}]"]
        for key, value in table.items():
            line = f"{key} = {_toml(str(value) if isinstance(value, Path) else value)}"
            note = notes.get((section, key))
            lines.append(f"{line:<32}# {note}" if note else line)
    return "\n".join(lines).lstrip("\n") + "\n"
