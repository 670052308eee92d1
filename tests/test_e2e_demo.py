"""README's demo, run as README says (`carbonscape demo --out demo-out`, 100 m), checked against
the paper independently of carbonscape's own comparison code.

The paper's numbers come from its tables as bundled (``engine/demo/data/paper_*.csv``); carbonscape's
from the run's output tables. Differences, the paper's ratios (its Tables 2-3 and each county's
true area, computed here with pyproj) and the paper's classes (its Table 4 ranges) are computed in
this file. The bounds are the tightest the run meets as README prints it: every largest difference
shows as 0.00 % (so below 0.005 %), and 49 of 49 counties in the paper's class. README's quoted
lines and table rows are then compared with the run, so README cannot drift from what it does.
"""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from pyproj import Geod

README = Path(__file__).resolve().parents[1] / "README.md"
PAPER = files("carbonscape.demo") / "data"
# README prints the largest differences at two decimals: "0.00%" means below 0.005 %.
PRINTED_ZERO_PCT = 0.005
PAPER_ZONES = {7: "固碳优化区", 6: "固碳优化区", 5: "固碳优化区", 4: "碳汇发展区", 3: "协调发展区", 2: "低碳保持区", 1: "低碳保持区"}


def _paper(name: str) -> pd.DataFrame:
    return pd.read_csv(PAPER / name)


def true_areas_km2(path: Path) -> pd.Series:
    """Each county's area on WGS 84 (pyproj's Geod over every ring), by county name."""
    gdf = gpd.read_file(path).to_crs("EPSG:4326")
    geod = Geod(ellps="WGS84")
    areas = {}
    for name, geom in zip(gdf["county"], gdf.geometry):
        total = 0.0
        for polygon in getattr(geom, "geoms", [geom]):
            lon, lat = polygon.exterior.coords.xy
            total += abs(geod.polygon_area_perimeter(lon, lat)[0])
            for hole in polygon.interiors:
                lon, lat = hole.coords.xy
                total -= abs(geod.polygon_area_perimeter(lon, lat)[0])
        areas[name] = total / 1e6
    return pd.Series(areas)


def table4_class(ratio: pd.Series) -> pd.Series:
    """The paper's Table 4 class of each ratio. Table 4 prints closed ranges at six decimals, each
    starting 10^-6 above the previous one's end, so class c runs from its printed minimum less half
    a unit of the last place up to the next class's start; ratios beyond the ends take the outer
    classes (the paper's own 官渡区 and 双柏县 lie a hair outside)."""
    table4 = _paper("paper_table4_ratio_classes.csv").sort_values("class")
    starts = table4["ratio_min"].to_numpy() - 5e-7
    classes = table4["class"].to_numpy()

    def one(r: float) -> int:
        below = np.flatnonzero(starts <= r)
        return int(classes[below[-1]]) if below.size else int(classes[0])

    return ratio.map(one)


@pytest.fixture(scope="module")
def compared(demo_run) -> pd.DataFrame:
    """Per county: the paper's and carbonscape's supply, demand, ratio and class, side by side."""
    out = demo_run.out
    paper = _paper("paper_tables2_3_by_county.csv").set_index("county")
    supply = pd.read_csv(out / "supply_by_county.csv").set_index("county")["supply_t"]
    demand = pd.read_csv(out / "demand_by_county.csv").set_index("county")["demand_t_per_km2"]
    zones = pd.read_csv(out / "ratio_zones.csv").set_index("county")
    assert sorted(supply.index) == sorted(paper.index) == sorted(demand.index) == sorted(zones.index) and len(paper) == 49
    area = true_areas_km2(out / "inputs" / "counties.gpkg").reindex(paper.index)
    frame = pd.DataFrame({
        "paper_supply_1e6_t": paper["supply_1e6_t"],
        "supply_1e6_t": supply.reindex(paper.index) / 1e6,
        "paper_demand": paper["demand_t_per_km2"],
        "demand": demand.reindex(paper.index),
        # R = demand density / supply density = demand × area / supply (METHOD.md formula 4).
        "paper_ratio": paper["demand_t_per_km2"] * area / (paper["supply_1e6_t"] * 1e6),
        "ratio": zones["ratio"].reindex(paper.index),
        "class": zones["class"].reindex(paper.index),
        "zone": zones["zone"].reindex(paper.index),
    })
    frame["paper_class"] = table4_class(frame["paper_ratio"])
    return frame


def _largest_pct(ours: pd.Series, theirs: pd.Series) -> float:
    return float((100 * (ours / theirs - 1)).abs().max())


def test_supply_and_demand_match_the_papers_tables_2_and_3(compared):
    assert _largest_pct(compared["supply_1e6_t"], compared["paper_supply_1e6_t"]) < PRINTED_ZERO_PCT
    assert _largest_pct(compared["demand"], compared["paper_demand"]) < PRINTED_ZERO_PCT
    assert compared["supply_1e6_t"].sum() == pytest.approx(2351.01, abs=0.005)
    assert compared["demand"].sum() == pytest.approx(67_613.72, abs=0.005)


def test_supply_by_class_matches_the_papers_table_1(demo_run):
    out = demo_run.out
    names = pd.read_csv(out / "inputs" / "pools.csv").set_index("lucode")["LULC_name_zh"]
    ours = pd.read_csv(out / "supply_by_class.csv").set_index("lucode")["supply_t"]
    ours.index = names.reindex(ours.index).to_numpy()
    table1 = _paper("paper_table1_supply_by_class.csv").set_index("land_use")
    assert sorted(ours.index) == sorted(table1.index)
    land = table1["supply_1e6_t"] > 0
    assert _largest_pct(ours.reindex(table1.index)[land] / 1e6, table1["supply_1e6_t"][land]) < PRINTED_ZERO_PCT
    assert ours["水体"] == 0  # water stores nothing in the pools table, as in the paper


def test_every_county_is_in_the_class_the_papers_own_tables_give_it(compared):
    assert _largest_pct(compared["ratio"], compared["paper_ratio"]) < PRINTED_ZERO_PCT
    assert (compared["class"] == compared["paper_class"]).sum() == 49, compared[compared["class"] != compared["paper_class"]]
    assert (compared["zone"] == compared["class"].map(PAPER_ZONES)).all()
    assert compared["zone"].value_counts().to_dict() == {"低碳保持区": 19, "协调发展区": 12, "碳汇发展区": 10, "固碳优化区": 8}


def test_the_two_counties_outside_table_4_are_warned_about(compared, demo_run):
    table4 = _paper("paper_table4_ratio_classes.csv")
    outside = compared.index[(compared["ratio"] < table4["ratio_min"].min()) | (compared["ratio"] > table4["ratio_max"].max())]
    assert sorted(outside) == sorted(["官渡区", "双柏县"])
    # The study's own warning (the scenario map's, naming its map, may come first).
    warning = next(line for line in demo_run.stderr.splitlines() if "outside the manual class edges" in line and "land-use map" not in line)
    assert "官渡区" in warning and "双柏县" in warning


def _readme_block() -> list[str]:
    text = README.read_text(encoding="utf-8")
    start = text.index("## What the demo does and prints")
    block = text[text.index("```\n", start) + 4:]
    return block[:block.index("```")].splitlines()


def test_readmes_quoted_demo_output_is_what_the_demo_prints(demo_run):
    """Every line README quotes from the demo's output (but the output folder's paths and the
    elisions) is printed, as is, by the run."""
    printed = demo_run.stdout.splitlines()
    quoted = [line for line in _readme_block() if "demo-out" not in line and "..." not in line and line.strip()]
    assert len(quoted) >= 8
    for line in quoted:
        assert line in printed, f"README quotes {line!r}; the demo prints:\n{demo_run.stdout}"
    for phrase in ("largest difference 0.00%", "49 of 49"):
        assert any(phrase in line for line in quoted)


def _readme_rows(header: str) -> list[list[str]]:
    text = README.read_text(encoding="utf-8")
    start = text.index(header)
    rows = []
    for line in text[start:].splitlines()[1:]:
        if rows and not line.startswith("|"):
            break
        if line.startswith("|") and not line.startswith("| ---") and not line.startswith("| class") and not line.startswith("| county"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_readmes_table_1_is_the_paper_and_the_run(demo_run):
    out = demo_run.out
    pools = pd.read_csv(out / "inputs" / "pools.csv").set_index("lucode")
    ours = pd.read_csv(out / "supply_by_class.csv").set_index("lucode")
    ours.index = pools["LULC_name_zh"].reindex(ours.index).to_numpy()
    table1 = _paper("paper_table1_supply_by_class.csv").set_index("land_use")
    rows = _readme_rows("Table 1, supply by land-use class (10⁶ t C), paper vs carbonscape:")
    assert len(rows) == 10
    for name, paper_t, ours_t, paper_pct, ours_pct in rows:
        zh = name.split()[0]
        assert paper_t == f"{table1.loc[zh, 'supply_1e6_t']:,.2f}" and paper_pct == f"{table1.loc[zh, 'percent']:.2f}", name
        assert ours_t == f"{ours.loc[zh, 'supply_t'] / 1e6:,.2f}", name
        assert ours_pct == f"{100 * ours.loc[zh, 'supply_t'] / ours['supply_t'].sum():.2f}", name


def test_readmes_tables_2_to_4_rows_are_the_paper_and_the_run(compared):
    rows = _readme_rows("Tables 2–4 (first rows;")
    assert len(rows) >= 6
    for county, paper_s, ours_s, paper_d, ours_d, paper_r, ours_r, paper_c, ours_c, zone in rows:
        row = compared.loc[county]
        assert (paper_s, ours_s) == (f"{row['paper_supply_1e6_t']:,.2f}", f"{row['supply_1e6_t']:,.2f}"), county
        assert (paper_d, ours_d) == (f"{row['paper_demand']:,.2f}", f"{row['demand']:,.2f}"), county
        assert (paper_r, ours_r) == (f"{row['paper_ratio']:.4f}", f"{row['ratio']:.4f}"), county
        assert (int(paper_c), int(ours_c), zone) == (row["paper_class"], row["class"], row["zone"]), county


def test_readmes_size_and_outputs_are_what_the_demo_writes(demo_run):
    text = README.read_text(encoding="utf-8")
    assert "49 real\ncounties, about 11 million pixels at 100 m" in text
    summary = pd.read_json(demo_run.out / "supply_summary.json", typ="series")
    assert 10.5e6 < summary["pixels_in_counties"] < 11.5e6
    for name in re.findall(r"`demo-out/([\w./]+)`", text):
        assert (demo_run.out / name).exists(), name
    for stem in ("fig1_supply_by_class", "fig2_supply", "fig3_demand", "fig4_ratio", "fig5_zones"):
        assert (demo_run.out / "maps" / f"{stem}.png").exists()
