"""The bundled Central Yunnan 2020 demo: the paper's study, reproducible by anyone.

The 49 county boundaries are real (cnmaps); the land-use raster is SYNTHETIC, generated inside
them so that supply matches the paper's Tables 1 and 2; populations are back-computed from its
Table 3. See ``data/SOURCES.md``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from carbonscape.demo.generate import demo_paths, generate_landuse, generate_scenario, region_settings
from carbonscape.io import atomic_path
from carbonscape.study import StudyResult
from carbonscape.study import settings as study_settings
from carbonscape.zoning import PAPER_RATIO_BREAKS, zone_groups

__all__ = ["compare_with_paper", "demo_paths", "generate_landuse", "paper_class", "run_demo", "write_demo_study"]


def _replace(target: Path, write: Callable[[Path], object]) -> None:
    """Write a file by a new name and rename it over ``target``: the old file (possibly a hard
    link into the previous results folder) is never written in place."""
    with atomic_path(target) as tmp:
        write(tmp)


def write_demo_study(folder: str | os.PathLike[str], *, resolution_m: float = 100.0, seed: int = 2020) -> Path:
    """Copy the demo data into ``folder``, generate its land use, and write its ``study.toml``."""
    inputs = Path(folder)
    inputs.mkdir(parents=True, exist_ok=True)
    paths = demo_paths()
    for key in ("counties", "pools", "population", "sources"):
        target = inputs / paths[key].name
        if not target.exists() or target.read_bytes() != paths[key].read_bytes():
            _replace(target, lambda t, source=paths[key]: shutil.copyfile(source, t))
    landuse = inputs / f"landuse_synthetic_{int(resolution_m)}m.tif"
    stamp = inputs / f"{landuse.name}.json"
    settings = {"resolution_m": resolution_m, "seed": seed, "areas_sha256": hashlib.sha256(paths["areas"].read_bytes()).hexdigest()}
    if not landuse.exists() or not stamp.exists() or json.loads(stamp.read_text()) != settings:
        generate_landuse(landuse, resolution_m=resolution_m, seed=seed)
        _replace(stamp, lambda t: t.write_text(json.dumps(settings)))
    scenario = inputs / f"landuse_2030_ecological_protection_SYNTHETIC_{int(resolution_m)}m.tif"
    scenario_stamp = inputs / f"{scenario.name}.json"
    scenario_settings = {**settings, "base_sha256": hashlib.sha256(landuse.read_bytes()).hexdigest(), "seed": 2030}
    if not scenario.exists() or not scenario_stamp.exists() or json.loads(scenario_stamp.read_text()) != scenario_settings:
        generate_scenario(landuse, scenario, seed=2030)
        _replace(scenario_stamp, lambda t: t.write_text(json.dumps(scenario_settings)))
    region = region_settings()
    study = inputs / "study.toml"
    values = {
        "study": {"name": "Central Yunnan Urban Agglomeration 2020 (demo, synthetic land use)", "year": 2020,
                  "source": "land use SYNTHETIC (fitted to the 2025 study's Tables 1-2); boundaries cnmaps; population from the study's Table 3"},
        "landuse": {"maps": {
            "2020": [landuse.name],
            "2030 ecological protection (SYNTHETIC)": {"rasters": [scenario.name], "year": 2030, "scenario": True},
        }},
        "counties": {"path": "counties.gpkg", "id_field": "county"},
        "pools": {"path": "pools.csv"},
        "demand": {"table": "counties.csv", "key": "county", "population": "population",
                   "total_emissions_t": region["total_emissions_t"], "total_population": region["total_population"]},
        "ratio": {"units": "co2_per_c"},
        "zoning": {"method": "manual", "k": 7, "breaks": list(PAPER_RATIO_BREAKS), "scheme": "four_zones"},
        "valuation": {"price": 50.0, "discount_rate": 7.0, "rate_change": 0.0},
    }
    notes = {
        ("demand", "total_emissions_t"): "Cem: Yunnan 2019 CO2 (assumed, see SOURCES.md)",
        ("demand", "total_population"): "Yyn: Yunnan 2019 year-end population",
        ("zoning", "method"): "the paper's Table 4 classes; try \"jenks\" for the exact optimum",
        ("landuse", "maps"): "2030 is a SYNTHETIC illustration (generate_scenario), not a land-use model's output",
        ("valuation", "price"): "illustrative price per t C (InVEST's default 50 / 7 %)",
    }
    header = ("The Central Yunnan 2020 study (Landscape Architecture Academic Journal 42(1), 2025), bundled demo.\n"
              "Land use is SYNTHETIC (see SOURCES.md); boundaries are real; populations come from the paper's Table 3.")
    _replace(study, lambda t: t.write_text(study_settings.render(values, header=header, notes=notes), encoding="utf-8"))
    return study


def compare_with_paper(result: StudyResult) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Tables 1–3 of the run beside the paper's, and a short text summary."""
    paths = demo_paths()
    table1 = pd.read_csv(paths["table1"])
    pools = pd.read_csv(paths["pools"])
    by_class = result.supply.by_class.merge(pools[["lucode", "LULC_name_zh"]], on="lucode")
    classes = table1.merge(by_class[["LULC_name_zh", "supply_t", "share_pct"]], left_on="land_use", right_on="LULC_name_zh")
    classes = pd.DataFrame({
        "land_use": classes["land_use"], "land_use_en": classes["land_use_en"],
        "paper_1e6_t": classes["supply_1e6_t"], "carbonscape_1e6_t": classes["supply_t"] / 1e6,
        "paper_pct": classes["percent"], "carbonscape_pct": classes["share_pct"],
    })
    classes = classes.sort_values("paper_1e6_t", ascending=False, kind="stable").reset_index(drop=True)
    classes["diff_pct"] = 100 * (classes["carbonscape_1e6_t"] / classes["paper_1e6_t"].where(classes["paper_1e6_t"] > 0) - 1)
    paper = pd.read_csv(paths["tables2_3"])
    supply = result.supply.by_county.assign(county=lambda f: f["county"].astype(str)).set_index("county")["supply_t"]
    demand = result.demand["demand_t_per_km2"]
    counties = pd.DataFrame({
        "city": paper["city"].to_numpy(), "county": paper["county"].to_numpy(),
        "paper_supply_1e6_t": paper["supply_1e6_t"].to_numpy(), "carbonscape_supply_1e6_t": supply.reindex(paper["county"]).to_numpy() / 1e6,
        "paper_demand_t_per_km2": paper["demand_t_per_km2"].to_numpy(), "carbonscape_demand_t_per_km2": demand.reindex(paper["county"]).to_numpy(),
    })
    counties["supply_diff_pct"] = 100 * (counties["carbonscape_supply_1e6_t"] / counties["paper_supply_1e6_t"] - 1)
    counties["demand_diff_pct"] = 100 * (counties["carbonscape_demand_t_per_km2"] / counties["paper_demand_t_per_km2"] - 1)
    # The paper prints no ratio per county, only Tables 2-3 and Table 4's class ranges; its ratio
    # follows from its own tables and the county area, and its class from Table 4.
    zoned = result.ratio_zones.reindex(paper["county"])
    area = result.demand["area_km2"].reindex(paper["county"]).to_numpy()
    counties["paper_ratio"] = counties["paper_demand_t_per_km2"] * area / (counties["paper_supply_1e6_t"] * 1e6)
    counties["paper_class"] = paper_class(counties["paper_ratio"].to_numpy(), pd.read_csv(paths["table4"]))
    counties["carbonscape_ratio"] = zoned["ratio"].to_numpy()
    counties["carbonscape_class"] = zoned["class"].to_numpy()
    counties["zone"] = zoned["zone"].to_numpy()
    same_class = int((counties["paper_class"] == counties["carbonscape_class"]).sum())
    zones = zone_groups(result.ratio_zones)
    lines = [
        "Table 1, supply by land-use class (10⁶ t C):",
        classes[["land_use", "land_use_en", "paper_1e6_t", "carbonscape_1e6_t", "paper_pct", "carbonscape_pct"]].to_string(index=False, float_format=lambda v: f"{v:,.2f}"),
        "",
        f"Table 2, supply by county: largest difference {counties['supply_diff_pct'].abs().max():.2f}% "
        f"(total {counties['carbonscape_supply_1e6_t'].sum():,.2f} vs the paper's {counties['paper_supply_1e6_t'].sum():,.2f} × 10⁶ t)",
        f"Table 3, demand by county: largest difference {counties['demand_diff_pct'].abs().max():.2f}% "
        f"(sum of densities {counties['carbonscape_demand_t_per_km2'].sum():,.2f} vs the paper's {counties['paper_demand_t_per_km2'].sum():,.2f} t/km²)",
        f"Table 1, by class: largest difference {classes['diff_pct'].abs().max():.2f}%",
        f"Table 4, ratio classes: {same_class} of {len(counties)} counties in the class the paper's own tables give them",
        "Zones: " + "; ".join(f"{group.zone} {len(group.counties)}" for group in zones),
    ]
    return classes, counties, "\n".join(lines)


def paper_class(ratio: np.ndarray, table4: pd.DataFrame) -> np.ndarray:
    """Table 4's class of each ratio. Its ranges are contiguous at six decimals (each class starts
    10^-6 above the last one's end), so a class runs from its printed lower bound, less half a unit
    of the last place, to the next one's; ratios beyond the table's ends take the outer classes."""
    ranges = table4.sort_values("class")
    starts = ranges["ratio_min"].to_numpy(dtype=float) - 5e-7
    index = np.clip(np.searchsorted(starts, ratio, side="right") - 1, 0, len(starts) - 1)
    return ranges["class"].to_numpy()[index]


def run_demo(
    out: str | os.PathLike[str] = "carbonscape-demo",
    *,
    resolution_m: float = 100.0,
    scheduler: str | None = None,
    progress: bool = False,
    maps: bool = True,
    report: bool = True,
    overwrite: bool = False,
) -> tuple[StudyResult, str]:
    """Run the Central Yunnan demo into ``out`` and compare it with the paper, all or nothing.

    Returns the study result and a text comparison; ``paper_comparison_*.csv`` are written too.
    An ``out`` holding files carbonscape did not write, or a study's results, is refused unless
    ``overwrite``; an earlier demo's results there are replaced whole.
    """
    from carbonscape.errors import StudyError
    from carbonscape.study.inputs import checked_inputs
    from carbonscape.study.outputs import relocate_result, results_folder
    from carbonscape.study.pipeline import compute_study

    final = Path(out).absolute()
    # The demo's inputs live in its results folder: built, run and compared in a staging folder
    # that replaces ``out`` whole only when all of it is written (its inputs and stores reused).
    with results_folder(final, owner={"kind": "demo"}, overwrite=overwrite, reuse=("stores", "inputs")) as work:
        study_file = write_demo_study(work / "inputs", resolution_m=resolution_m)
        problems, study, inputs = checked_inputs(study_file, out=work, scan=False, folder=False)
        if problems or study is None:
            raise StudyError(problems, path=str(study_file))
        result = compute_study(study, inputs, work=work, final=final, scheduler=scheduler, progress=progress, maps=False, report=False)
        classes, counties, text = compare_with_paper(result)
        classes.to_csv(work / "paper_comparison_by_class.csv", index=False, float_format="%.10g")
        counties.to_csv(work / "paper_comparison_by_county.csv", index=False, float_format="%.10g")
        if maps or report:
            from carbonscape.study import draw_outputs

            draw_outputs(result, maps=maps, report=report, title="Central Yunnan 2020 — carbonscape demo")
        if maps and result.landuse_maps is not None:
            from carbonscape.study.landuse_maps import draw_changes

            draw_changes(result.landuse_maps, work, polygons=result.polygons, id_field=study.id_field, study=study)
    relocate_result(result, work, final)
    return result, text
