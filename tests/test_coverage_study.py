"""Coverage in a study: `[counties] coverage` and `[counties] min_coverage` reach `check` and `run`
(and `run --coverage/--min-coverage`); counties below min_coverage are refused before anything
is written; a lowered min_coverage gives densities over the covered area, flagged in the tables.

The study: three counties on a 4 × 12 raster of 100 m pixels (1 ha, UTM: nominal areas are
true within UTM's 0.1 %, and polygons are measured in the grid's plane too). C1 and C2 are 4 × 4
pixels inside it; C3 is 4 × 10 pixels of which the raster holds its first 4 columns: covered 40 %,
outside 60 %. Codes: columns 0-5 are 1 (43 t/ha in all), 6-11 are 2 (123 t/ha).
"""

import json
import subprocess

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from carbonscape import StudyError, check_study, run_study
from carbonscape.study.settings import parse, template
from conftest import CARBONSCAPE, pixel_box, write_pools, write_tif, write_vector

STUDY = """
[landuse]
rasters = ["landuse.tif"]
chunk = 256

[counties]
path = "counties.gpkg"
id_field = "county"
{counties}

[pools]
path = "pools.csv"

[demand]
table = "population.csv"
key = "county"
per_capita_t = 4.0

[zoning]
method = "jenks"
k = 2
scheme = "classes"

[outputs]
maps = false
report = {report}
"""

# Hand-computed: C3's 16 covered pixels are all code 2 (123 t/ha × 16 ha); its polygon is 40 ha.
C3_SUPPLY_T = 16 * 123.0
C3_COVERED_KM2 = 0.16
C3_POLYGON_KM2 = 0.40


def make_study(folder, *, counties="", report="false", beyond=6):
    codes = np.ones((4, 12), dtype=np.uint8)
    codes[:, 6:] = 2
    write_tif(folder / "landuse.tif", codes, nodata=255)
    write_vector(folder / "counties.gpkg", [pixel_box(0, 0, 4, 4), pixel_box(4, 0, 8, 4), pixel_box(8, 0, 12 + beyond, 4)], ["C1", "C2", "C3"])
    write_pools(folder / "pools.csv", [(1, 10.0, 2.0, 30.0, 1.0), (2, 50.0, 10.0, 60.0, 3.0)])
    (folder / "population.csv").write_text("county,population\nC1,1000\nC2,2000\nC3,3000\n", encoding="utf-8")
    path = folder / "study.toml"
    path.write_text(STUDY.format(counties=counties, report=report), encoding="utf-8")
    return path


def test_the_settings_are_rows_of_the_table_with_their_defaults_and_checks():
    base = {"counties": {"path": "c.gpkg", "id_field": "county"}}
    values, _ = parse(base)
    assert values["counties"]["coverage"] == "centre" and values["counties"]["min_coverage"] == 0.9
    _, problems = parse({"counties": {**base["counties"], "coverage": "fractional", "min_coverage": 1.5}})
    assert any('coverage \'fractional\' is not one of "centre", "fraction"; did you mean "fraction"?' in p for p in problems)
    assert any("[counties] min_coverage must be between 0 and 1" in p and "1.5" in p for p in problems)
    text = template()
    assert '# coverage = "fraction"' in text and "# min_coverage = 0.9" in text


def test_check_refuses_a_county_beyond_the_raster_naming_it_and_its_shares(tmp_path):
    path = make_study(tmp_path)
    (problem,) = check_study(path)
    assert "C3: covered at most 40.0 % (outside the raster 60.0 %)" in problem
    assert "C1" not in problem and "C2" not in problem
    assert "[counties] min_coverage" in problem and "--min-coverage" in problem
    done = subprocess.run([str(CARBONSCAPE), "check", str(path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "C3: covered at most 40.0 %" in done.stderr
    lowered = subprocess.run([str(CARBONSCAPE), "check", str(path), "--min-coverage", "0.3"], capture_output=True, text=True, timeout=300)
    assert lowered.returncode == 0 and "min_coverage 0.3" in lowered.stdout, lowered.stderr
    # Within the default threshold: a county 5 % beyond the raster (a boundary digitised loosely) passes.
    assert check_study(make_study(tmp_path, beyond=0.2)) == []


def test_run_refuses_before_writing_anything(tmp_path):
    path = make_study(tmp_path)
    out = tmp_path / "results"
    done = subprocess.run([str(CARBONSCAPE), "run", str(path), "--out", str(out), "--scheduler", "synchronous"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 2 and "C3: covered at most 40.0 %" in done.stderr
    assert not out.exists()


def test_a_county_with_no_land_use_data_is_refused_even_with_min_coverage_0(tmp_path):
    """min_coverage = 0 accepts partial counties, not a county that is all nodata: it has no supply
    density (its ratio would be infinite, in the top class, "no carbon supply"). check and run
    name it and the cause."""
    path = make_study(tmp_path, counties="min_coverage = 0", beyond=0)
    codes = np.ones((4, 12), dtype=np.uint8)
    codes[:, 6:] = 2
    codes[:, 4:8] = 255  # all of C2
    write_tif(tmp_path / "landuse.tif", codes, nodata=255)
    (problem,) = check_study(path)
    assert "hold no land-use data at all" in problem and "C2: covered 0.0 % (nodata 100.0 %" in problem
    assert "Fill their nodata pixels" in problem and "C1" not in problem and "C3" not in problem
    out = tmp_path / "results"
    with pytest.raises(Exception, match=r"hold no land-use data at all.*C2: covered 0\.0 % \(nodata 100\.0 %"):
        run_study(path, out=out, scheduler="synchronous")
    assert not out.exists()


def test_a_county_covered_less_than_min_coverage_through_nodata_is_refused_by_check_and_run(tmp_path):
    """check reads the pixels (as it scans the codes) and names the county and its shares; run
    refuses too, before any output."""
    path = make_study(tmp_path, beyond=0)
    codes = np.ones((4, 12), dtype=np.uint8)
    codes[:, 6:] = 2
    codes[:, 9:] = 255  # three of C3's four columns are nodata
    write_tif(tmp_path / "landuse.tif", codes, nodata=255)
    (problem,) = check_study(path)
    assert "landuse.tif" in problem and "C3: covered 25.0 % (nodata 75.0 %, outside the raster 0.0 %)" in problem
    assert "C1" not in problem and "Fill the nodata pixels" in problem and "min_coverage" in problem
    out = tmp_path / "results"
    with pytest.raises(Exception, match=r"C3: covered 25\.0 % \(nodata 75\.0 %, outside the raster 0\.0 %\)"):
        run_study(path, out=out, scheduler="synchronous")
    assert not out.exists()


@pytest.mark.parametrize("how", ["file", "flag"])
def test_a_lowered_min_coverage_gives_densities_over_the_covered_area_flagged(tmp_path, how):
    counties = "min_coverage = 0.3" if how == "file" else ""
    path = make_study(tmp_path, counties=counties)
    out = tmp_path / "results"
    if how == "file":
        assert check_study(path) == []
        run_study(path, out=out, scheduler="synchronous")
    else:
        done = subprocess.run([str(CARBONSCAPE), "run", str(path), "--out", str(out), "--scheduler", "synchronous", "--min-coverage", "0.3"],
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        assert "C3" in done.stderr and "low_coverage" in done.stderr  # the warning names it
    supply = pd.read_csv(out / "supply_by_county.csv").set_index("county")
    assert supply.loc["C3", "supply_t"] == pytest.approx(C3_SUPPLY_T, rel=1e-9)
    assert supply.loc["C3", "covered_share"] == pytest.approx(0.4, rel=1e-6)
    assert supply.loc["C3", "outside_share"] == pytest.approx(0.6, rel=1e-6)
    assert supply["low_coverage"].to_dict() == {"C1": False, "C2": False, "C3": True}
    ratio = pd.read_csv(out / "ratio_zones.csv").set_index("county")
    # C3's supply over its covered 0.16 km², not its 0.40 km² polygon; demand over the whole county.
    assert ratio.loc["C3", "supply_t_per_km2"] == pytest.approx(C3_SUPPLY_T / C3_COVERED_KM2, rel=1e-6)
    assert ratio.loc["C3", "demand_t_per_km2"] == pytest.approx(3000 * 4.0 / C3_POLYGON_KM2, rel=1e-3)
    assert ratio.loc["C3", "ratio"] == pytest.approx(ratio.loc["C3", "demand_t_per_km2"] / ratio.loc["C3", "supply_t_per_km2"], rel=1e-9)
    # The fully covered counties keep their densities over their polygons.
    assert ratio.loc["C1", "supply_t_per_km2"] == pytest.approx(16 * 43.0 / 0.16, rel=1e-3)
    assert ratio["low_coverage"].to_dict() == {"C1": False, "C2": False, "C3": True}
    assert ratio.loc["C3", "covered_share"] == pytest.approx(0.4, rel=1e-6)
    gpkg = gpd.read_file(out / "counties.gpkg").set_index("county")
    assert bool(gpkg.loc["C3", "low_coverage"]) and gpkg.loc["C3", "outside_share"] == pytest.approx(0.6, rel=1e-6)
    assert gpkg.loc["C1", "covered_share"] == pytest.approx(1.0, rel=1e-9) and gpkg.loc["C1", "nodata_share"] == 0.0
    info = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert info["supply_summary"]["coverage"]["min_coverage"] == 0.3
    assert info["supply_summary"]["coverage"]["low_coverage"] == ["C3"]
    # The region's density is over the areas its counties' densities are over: C1 and C2's
    # polygons (0.16 km² each) and C3's covered 0.16 km², not C3's whole 0.40 km² polygon.
    total_t = 16 * 43.0 + (8 * 43.0 + 8 * 123.0) + C3_SUPPLY_T
    assert info["totals"]["supply_t_per_km2_regional"] == pytest.approx(total_t / (0.16 + 0.16 + C3_COVERED_KM2), rel=1e-3)


def test_the_staged_zoning_keeps_low_coverage_densities_over_the_covered_area(tmp_path):
    """`supply --min-coverage`, `demand`, `zoning` one by one: C3's density and the region's as `run` gives them."""
    path = make_study(tmp_path)
    folder = tmp_path
    out = tmp_path / "staged"
    for args in (["ingest", "landuse.tif", "--out", "lu.zarr"],
                 ["zones", "counties.gpkg", "--like", "lu.zarr", "--id-field", "county", "--out", "z.zarr"],
                 ["supply", "--landuse", "lu.zarr", "--zones", "z.zarr", "--pools", "pools.csv", "--out", str(out), "--min-coverage", "0.3"],
                 ["demand", str(out), "--counties", "counties.gpkg", "--id-field", "county", "--table", "population.csv", "--per-capita-t", "4.0"],
                 ["zoning", str(out), "--k", "2", "--scheme", "classes"]):
        done = subprocess.run([str(CARBONSCAPE), *args, "--scheduler", "synchronous"] if args[0] in ("ingest", "zones", "supply") else [str(CARBONSCAPE), *args],
                              capture_output=True, text=True, timeout=600, cwd=folder)
        assert done.returncode == 0, (args, done.stderr)
    ratio = pd.read_csv(out / "ratio_zones.csv").set_index("county")
    assert ratio.loc["C3", "supply_t_per_km2"] == pytest.approx(C3_SUPPLY_T / C3_COVERED_KM2, rel=1e-6)
    assert bool(ratio.loc["C3", "low_coverage"]) and not bool(ratio.loc["C1", "low_coverage"])
    info = json.loads((out / "run.json").read_text(encoding="utf-8"))
    total_t = 16 * 43.0 + (8 * 43.0 + 8 * 123.0) + C3_SUPPLY_T
    assert info["totals"]["supply_t_per_km2_regional"] == pytest.approx(total_t / (0.16 + 0.16 + C3_COVERED_KM2), rel=1e-3)


def test_the_report_shows_the_coverage_columns(tmp_path):
    path = make_study(tmp_path, counties="min_coverage = 0.3", report="true")
    out = tmp_path / "results"
    run_study(path, out=out, scheduler="synchronous")
    page = (out / "report.html").read_text(encoding="utf-8")
    table = page[page.index('id="supply-by-county"'):]
    table = table[:table.index("</table>")]
    assert "covered (share of area)" in table and "outside the raster (share)" in table and "low coverage" in table
    assert "0.4" in table and "True" in table
    # The summary says how areas and coverage were measured, and marks the low-coverage county.
    summary = page[page.index('id="summary"'):page.index("</section>", page.index('id="summary"'))]
    note = summary[summary.index('id="grid-note"'):]
    note = note[:note.index("</p>")]
    assert "Land-use grid: WGS 84 / UTM zone 48N, pixels 100 × 100 m." in note
    assert "Pixel areas: " in note and "Counties: each pixel in the county holding its centre; min_coverage 0.3." in note
    low = summary[summary.index('id="low-coverage-note"'):]
    assert "† 1 county is covered by the land-use raster less than 0.9 of its area" in low[:low.index("</p>")] and "C3" in low
    assert "C3†" in summary and "C1†" not in summary
    assert "regional supply density († counties over their covered area)" in summary


@pytest.mark.parametrize("how", ["file", "flag"])
def test_fraction_coverage_from_the_study_reaches_zones_and_supply(tmp_path, how):
    """A county boundary through the middle of pixels: C1 | C2 split at column 4.5, C3 as before
    but within the raster. Fraction mode gives each half pixel to its county; centre mode gives
    the whole column to C2 (pixel centres at x = 4.5 lie on the boundary: GDAL puts them right)."""
    path = make_study(tmp_path, counties='coverage = "fraction"' if how == "file" else "", beyond=0)
    write_vector(tmp_path / "counties.gpkg", [pixel_box(0, 0, 4.5, 4), pixel_box(4.5, 0, 8, 4), pixel_box(8, 0, 12, 4)], ["C1", "C2", "C3"])
    out = tmp_path / "results"
    if how == "file":
        run_study(path, out=out, scheduler="synchronous")
    else:
        done = subprocess.run([str(CARBONSCAPE), "run", str(path), "--out", str(out), "--scheduler", "synchronous", "--coverage", "fraction"],
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
    # The county ids are burned and their rings clipped inside the supply pass: no county store.
    assert not (out / "stores" / "zones.zarr").exists()
    supply = pd.read_csv(out / "supply_by_county.csv").set_index("county")
    # C1: 4.5 columns × 4 rows of code 1 = 18 ha × 43 t/ha; C2: 1.5 columns of code 1, 2 of code 2.
    assert supply.loc["C1", "supply_t"] == pytest.approx(18 * 43.0, rel=1e-9)
    assert supply.loc["C2", "supply_t"] == pytest.approx(6 * 43.0 + 8 * 123.0, rel=1e-9)
    assert supply["covered_share"].to_numpy() == pytest.approx(1.0, rel=1e-9)
    pairs = pd.read_csv(out / "supply_by_county_class.csv").set_index(["county", "lucode"])["area_km2"]
    assert pairs.loc[("C1", 1)] == pytest.approx(0.18, rel=1e-9) and pairs.loc[("C2", 1)] == pytest.approx(0.06, rel=1e-9)
    info = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert info["supply_summary"]["coverage"]["mode"] == "fraction"


def test_bad_flags_are_refused_naming_the_setting(tmp_path):
    path = make_study(tmp_path, beyond=0)
    with pytest.raises(StudyError, match=r"\[counties\] min_coverage must be between 0 and 1"):
        run_study(path, settings={"counties": {"min_coverage": 2.0}}, scheduler="synchronous")
    done = subprocess.run([str(CARBONSCAPE), "run", str(path), "--coverage", "exact"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "'exact' is not one of 'centre', 'fraction'" in done.stderr


def test_a_multi_map_study_in_fraction_mode_shares_boundary_pixels_in_every_map_s_table(tmp_path):
    """[landuse.maps] with coverage = "fraction": each map's per-map table shares the half pixels
    as the study's own supply does, and carries the coverage columns."""
    path = make_study(tmp_path, counties='coverage = "fraction"', beyond=0)
    write_vector(tmp_path / "counties.gpkg", [pixel_box(0, 0, 4.5, 4), pixel_box(4.5, 0, 8, 4), pixel_box(8, 0, 12, 4)], ["C1", "C2", "C3"])
    codes = np.ones((4, 12), dtype=np.uint8)
    codes[:, 4:] = 2  # 2010: column 4 (the split one) is forest too
    write_tif(tmp_path / "lu2010.tif", codes, nodata=255)
    text = path.read_text(encoding="utf-8").replace('rasters = ["landuse.tif"]', '')
    text = text.replace("[landuse]", '[study]\nyear = 2020\n\n[landuse]').replace(
        "chunk = 256", 'chunk = 256\n\n[landuse.maps]\n"2010" = "lu2010.tif"\n"2020" = "landuse.tif"')
    path.write_text(text, encoding="utf-8")
    out = tmp_path / "results"
    run_study(path, out=out, scheduler="synchronous")
    base = pd.read_csv(out / "supply_by_county.csv").set_index("county")
    for label, c1 in (("2020", 18 * 43.0), ("2010", 16 * 43.0 + 2 * 123.0)):
        per_map = pd.read_csv(out / "maps" / label / "supply_by_county.csv").set_index("county")
        assert per_map.loc["C1", "supply_t"] == pytest.approx(c1, rel=1e-9)
        assert per_map["covered_share"].to_numpy() == pytest.approx(1.0, rel=1e-9)
    pd.testing.assert_frame_equal(pd.read_csv(out / "maps" / "2020" / "supply_by_county.csv"), base.reset_index()[list(per_map.reset_index().columns)])
