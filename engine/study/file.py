"""The study file as a value: :class:`Study`, read from TOML through :mod:`.settings`."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from carbonscape.demand import per_capita_emission
from carbonscape.errors import InputError, StudyError
from carbonscape.io import atomic_path
from carbonscape.study import settings as _settings

__all__ = ["DemandSpec", "Study", "ZoningSpec", "load_study", "read_study", "write_study_template"]


@dataclass(frozen=True)
class DemandSpec:
    """Where demand comes from: a county table plus a per-capita figure or county emissions."""

    table: Path | str | None  # a str is an s3:// or http(s):// URL
    key: str | None
    population: str = "population"
    per_capita_t: float | None = None
    total_emissions_t: float | None = None
    total_population: float | None = None
    emissions_column: str | None = None
    sheet: str | None = None

    def per_capita(self) -> float | None:
        if self.per_capita_t is not None:
            return float(self.per_capita_t)
        if self.total_emissions_t is not None and self.total_population is not None:
            return per_capita_emission(total_emissions_t=self.total_emissions_t, total_population=self.total_population)
        return None


@dataclass(frozen=True)
class ZoningSpec:
    method: str | None = "jenks"
    k: int | None = 7
    breaks: tuple[float, ...] | None = None
    weights: str | None = None  # "area": weight each county by its area, as classifying a ratio map does
    scheme: str | dict[str, Any] = "four_zones"


@dataclass(frozen=True)
class Study:
    """A parsed study file.

    Built from :data:`carbonscape.study.settings.SETTINGS`. A study that :func:`load_study`
    returns is complete; one that :func:`read_study` returns with problems has None for each
    setting that is missing or bad, so that checking can go on with the others. Settings without
    a field of their own are read with :meth:`setting`.
    """

    path: Path
    name: str
    landuse: tuple[Path | str, ...] | None  # a str is an s3:// or http(s):// URL
    counties: Path | str | None
    id_field: str | None
    pools: Path | str | None
    demand: DemandSpec
    zoning: ZoningSpec
    ratio_units: str = "co2_per_c"
    chunk: int = 4096
    layer: str | None = None
    encoding: str | None = None
    out: Path | None = None
    pixel_maps: bool = False
    maps: bool = True
    report: bool = True
    year: int | None = None
    values: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, compare=False, repr=False)
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def folder(self) -> Path:
        return self.path.parent

    def setting(self, section: str, key: str, default: Any = None) -> Any:
        """The value of ``[section] key`` as checked by the settings table (its default when absent)."""
        return self.values.get(section, {}).get(key, default)

    def stores_dir(self, out: str | os.PathLike[str] | None = None) -> Path | str:
        """Where the study's Zarr stores go: ``[outputs] stores`` (a folder or an ``s3://``
        prefix), else ``stores/`` in the output folder ``out`` (default :meth:`output_dir`)."""
        where = self.setting("outputs", "stores")
        return where if where is not None else self.output_dir(out) / "stores"

    def output_dir(self, out: str | os.PathLike[str] | None = None) -> Path:
        from carbonscape.io import local_folder

        if out is not None:
            return local_folder(out)
        return self.out if self.out is not None else self.folder / "results"

    @classmethod
    def from_values(cls, path: Path, values: Mapping[str, Mapping[str, Any]], raw: dict[str, Any] | None = None) -> Study:
        """A study from :func:`settings.parse`'s values (missing ones become None)."""
        v = {section: dict(table) for section, table in values.items()}
        study, landuse, counties, demand = v["study"], v["landuse"], v["counties"], v["demand"]
        zoning, outputs = v["zoning"], v["outputs"]
        return cls(
            path=path,
            name=str(study.get("name", path.stem)),
            year=study.get("year"),
            landuse=landuse.get("rasters") or _base_rasters(landuse.get("maps"), path.parent, study.get("year")),
            chunk=int(landuse.get("chunk", 4096)),
            counties=counties.get("path"),
            id_field=counties.get("id_field"),
            layer=counties.get("layer"),
            encoding=counties.get("encoding"),
            pools=v["pools"].get("path"),
            demand=DemandSpec(
                table=demand.get("table"),
                key=demand.get("key", counties.get("id_field")),
                population=demand.get("population", "population"),
                per_capita_t=demand.get("per_capita_t"),
                total_emissions_t=demand.get("total_emissions_t"),
                total_population=demand.get("total_population"),
                emissions_column=demand.get("emissions_column"),
                sheet=demand.get("sheet"),
            ),
            zoning=ZoningSpec(
                method=zoning.get("method"),
                k=zoning.get("k"),
                breaks=tuple(float(b) for b in zoning["breaks"]) if "breaks" in zoning else None,
                weights=None if zoning.get("weights", "none") == "none" else zoning["weights"],
                scheme=zoning.get("scheme", "four_zones"),
            ),
            ratio_units=v["ratio"].get("units", "co2_per_c"),
            out=outputs.get("dir"),
            pixel_maps=bool(outputs.get("pixel_maps", False)),
            maps=bool(outputs.get("maps", True)),
            report=bool(outputs.get("report", True)),
            values=v,
            raw=raw or {},
        )


def _base_rasters(maps: Any, folder: Path, year: Any) -> tuple[Path, ...] | None:
    """With [landuse.maps], the study's own tables come from its base map (see landuse_maps)."""
    from carbonscape.study.landuse_maps import base_map, parse_maps

    parsed, problems = parse_maps(maps, folder=folder) if isinstance(maps, Mapping) else ([], [])
    return base_map(parsed, year if isinstance(year, int) else None).rasters if parsed else None


def read_study(path: str | os.PathLike[str]) -> tuple[Study | None, list[str]]:
    """The study as far as its file can be read, and every problem of its settings.

    The study is None only when the file is missing or not TOML; otherwise each missing or bad
    setting is None in it, so that :func:`carbonscape.study.check_study` can still check every
    input file that is named.
    """
    toml_path = Path(path)
    if not toml_path.is_file():
        return None, [f"no such study file; create one with `carbonscape init {toml_path}`"]
    try:
        text = toml_path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        return None, [f"not UTF-8 text ({exc}); save the study file as UTF-8"]
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return None, [f"not valid TOML: {exc}"]
    values, problems = _settings.parse(raw, text=text, folder=toml_path.resolve().parent, file=toml_path.name)
    return Study.from_values(toml_path.resolve(), values, raw), problems


def load_study(path: str | os.PathLike[str]) -> Study:
    """Parse a study TOML file; every missing, bad or unknown setting is reported in one
    :class:`~carbonscape.errors.StudyError`.

    Parameters
    ----------
    path
        The study file. Relative paths in it resolve against its folder.

    Returns
    -------
    Study
        Complete: every required setting is there and valid.

    Raises
    ------
    StudyError
        Listing every problem, each naming the section, the key and (for unknown names) the line
        and the nearest valid name.
    """
    study, problems = read_study(path)
    if problems or study is None:
        raise StudyError(problems, path=str(path))
    return study


def write_study_template(path: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Write a commented ``study.toml`` template (:func:`settings.template`); refuse to overwrite
    unless ``force``."""
    target = Path(path)
    if target.exists() and not force:
        raise InputError(f"{target} exists; pass --force to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        tmp.write_text(_settings.template(), encoding="utf-8")
    return target
