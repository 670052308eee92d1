"""`carbonscape check`: every setting and input problem at once, before any compute."""

import os

import numpy as np
import pandas as pd
import pytest
import rasterio
from carbonscape import StudyError, check_study, ingest, load_study, run_study
from carbonscape.study import inputs as study_inputs
from carbonscape.study import scan_codes
from conftest import pixel_box, write_pools, write_tif, write_vector

STUDY = """
[landuse]
rasters = ["landuse.tif"]
chunk = 256

[counties]
path = "counties.gpkg"
id_field = "county"

[pools]
path = "pools.csv"

[demand]
table = "population.csv"
key = "county"
{demand}

[zoning]
{zoning}

[outputs]
maps = false
report = false
"""


def make_study(
    folder,
    *,
    codes=None,
    population="county,population\nC1,1000\nC2,2000\nC3,3000\n",
    zoning='method = "jenks"\nk = 2\nscheme = "classes"',
    demand="per_capita_t = 4.0",
):
    """Three 4×4-pixel counties side by side on a 4×12 raster of codes 1 and 2 (255 = nodata)."""
    if codes is None:
        codes = np.ones((4, 12), dtype=np.uint8)
        codes[:, 6:] = 2
        codes[0, 0] = 255
    write_tif(folder / "landuse.tif", codes, nodata=255)
    write_vector(folder / "counties.gpkg", [pixel_box(4 * i, 0, 4 * i + 4, 4) for i in range(3)], ["C1", "C2", "C3"])
    write_pools(folder / "pools.csv", [(1, 10.0, 2.0, 30.0, 1.0), (2, 50.0, 10.0, 60.0, 3.0)])
    (folder / "population.csv").write_text(population, encoding="utf-8")
    path = folder / "study.toml"
    path.write_text(STUDY.format(demand=demand, zoning=zoning), encoding="utf-8")
    return path


def test_a_good_study_passes_and_runs(tmp_path):
    path = make_study(tmp_path)
    assert check_study(path) == []
    # Checking computes nothing and writes nothing.
    assert not (tmp_path / "results").exists()
    result = run_study(path, scheduler="synchronous")
    assert len(result.ratio_zones) == 3


def test_bad_population_values_name_the_file_and_the_counties(tmp_path):
    path = make_study(tmp_path, population="county,population\nC1,1000\nC2,abc\nC3,-5\n")
    problems = check_study(path)
    assert len(problems) == 1, problems
    assert str(tmp_path / "population.csv") in problems[0]
    assert "'population' must be a non-negative number" in problems[0]
    assert "'C2' (row 3): 'abc', 'C3' (row 4): '-5'" in problems[0]
    # run refuses it up front, before ingesting anything.
    with pytest.raises(StudyError, match="'C2' \\(row 3\\): 'abc'"):
        run_study(path, scheduler="synchronous")
    assert not (tmp_path / "results" / "stores").exists()


def test_empty_emissions_are_checked_when_an_emissions_column_is_used(tmp_path):
    path = make_study(
        tmp_path, population="county,population,co2\nC1,1000,5\nC2,2000,\nC3,3000,7\n", demand='emissions_column = "co2"'
    )
    problems = check_study(path)
    assert len(problems) == 1, problems
    assert "'co2' must be a non-negative number" in problems[0] and "'C2' (row 3): empty" in problems[0]


def test_settings_and_file_problems_are_reported_together(tmp_path):
    """A bad method, a missing pools file, a missing column, a repeated key and a county with no
    polygon: five problems, one report."""
    path = make_study(tmp_path, population="county,pop\nC1,1\nC2,2\nC3,3\nC1,4\nAtlantis,5\n", zoning='method = "magic"')
    os.remove(tmp_path / "pools.csv")
    problems = check_study(path)
    joined = "\n".join(problems)
    assert len(problems) == 5, joined
    assert "method 'magic'" in joined
    assert "pools.csv: no such file" in joined
    assert "no column(s) ['population']" in joined
    assert "'C1' on rows [2, 5]" in joined
    assert "have no polygon in counties.gpkg: ['Atlantis']" in joined
    # load_study alone reports the settings; run reports everything, as check does.
    with pytest.raises(StudyError, match="magic"):
        load_study(path)
    with pytest.raises(StudyError) as info:
        run_study(path)
    assert info.value.problems == problems


def test_a_missing_setting_does_not_stop_the_other_checks(tmp_path):
    path = make_study(tmp_path, population="county,population\nC1,1\nC2,x\nC3,3\n")
    path.write_text(path.read_text().replace('path = "pools.csv"\n', ""), encoding="utf-8")
    problems = check_study(path)
    assert len(problems) == 2, problems
    assert problems[0].startswith("[pools] needs `path`") and "'C2' (row 3): 'x'" in problems[1]


@pytest.mark.parametrize(
    ("zoning", "message"),
    [
        ('method = "jenks"\nk = 2\nscheme = "papr"', "[zoning] scheme 'papr' is not one of \"four_zones\", \"classes\", \"none\" or a table; did you mean \"four_zones\"?"),
        ('method = "jenks"\nk = 3\nscheme = "paper"', "the zone scheme 'four_zones' is made for 7 classes, not k = 3"),
        ('method = "jenks"\nk = 4\nscheme = "classes"', "k = 4 jenks classes need at least 4 counties with distinct ratios, and counties.gpkg has 3; use k <= 3"),
        ('method = "manual"\nk = 3\nbreaks = [0, 2, 1, 3]\nscheme = "classes"', "breaks [0, 2, 1, 3] must be finite and strictly increasing"),
        ('method = "manual"\nk = 3\nbreaks = [0, 1, 3]\nscheme = "classes"', "k + 1 = 4 class edges, got 3"),
    ],
    ids=["unknown-scheme", "scheme-for-another-k", "k-above-counties", "breaks-not-increasing", "breaks-count"],
)
def test_zoning_problems(tmp_path, zoning, message):
    problems = check_study(make_study(tmp_path, zoning=zoning))
    assert len(problems) == 1, problems
    assert message in problems[0]


def test_manual_zoning_may_have_more_classes_than_counties(tmp_path):
    zoning = 'method = "manual"\nk = 7\nbreaks = [0.005517, 0.013832, 0.025549, 0.040932, 0.076898, 0.136217, 0.356339, 0.637277]'
    assert check_study(make_study(tmp_path, zoning=zoning)) == []


def test_land_use_codes_missing_from_the_pools_table(tmp_path):
    codes = np.ones((4, 12), dtype=np.uint8)
    codes[0, :3] = 7  # 3 pixels
    codes[3, :5] = 9  # 5 pixels
    codes[1, 1] = 255  # nodata: not a code
    path = make_study(tmp_path, codes=codes)
    problems = check_study(path)
    assert len(problems) == 1, problems
    assert "7 (3 pixels), 9 (5 pixels)" in problems[0]
    assert "add rows for codes [7, 9] to pools.csv" in problems[0] and "255" not in problems[0]
    assert not (tmp_path / "results").exists()


def test_an_up_to_date_store_s_code_counts_are_used_instead_of_a_scan(tmp_path, monkeypatch):
    codes = np.ones((4, 12), dtype=np.uint8)
    codes[2, 2:6] = 8  # 4 pixels
    codes[0, 0] = 255
    path = make_study(tmp_path, codes=codes)
    ingest(tmp_path / "landuse.tif", tmp_path / "results" / "stores" / "landuse.zarr", chunk=256, scheduler="synchronous")
    scans = []
    monkeypatch.setattr(study_inputs, "scan_codes", lambda p: scans.append(p) or scan_codes(p))
    problems = check_study(path)
    assert scans == [] and len(problems) == 1 and "8 (4 pixels)" in problems[0] and "255" not in problems[0]
    # A changed raster makes the store stale: the TIFF is scanned again.
    write_tif(tmp_path / "landuse.tif", np.ones((4, 12), dtype=np.uint8), nodata=255)
    assert check_study(path) == [] and scans == [tmp_path / "landuse.tif"]


@pytest.mark.parametrize("dtype", ["uint8", "int16", "uint16", "int32"])
@pytest.mark.parametrize("tiled", [False, True])
def test_scan_codes_counts_every_code_window_by_window(tmp_path, monkeypatch, dtype, tiled):
    rng = np.random.default_rng(1)
    info = np.iinfo(dtype)
    choices = np.array([max(info.min, -300), 0, 1, 7, min(info.max, 70_000), info.max], dtype=dtype)
    array = rng.choice(choices, size=(45, 38))
    write_tif(tmp_path / "c.tif", array, nodata=int(choices[2]), tiled=tiled)
    # Windows of a few blocks: the scan has to add up many of them, edge windows included.
    monkeypatch.setattr(study_inputs, "SCAN_PIXELS", 300)
    values, counts = np.unique(array, return_counts=True)
    expected = {int(v): int(c) for v, c in zip(values, counts) if v != choices[2]}
    assert scan_codes(tmp_path / "c.tif") == expected


def test_counties_with_repeated_ids_are_reported_with_the_table_problems(tmp_path):
    path = make_study(tmp_path, population="county,population\nC1,1\nC2,-1\nC3,3\n")
    write_vector(tmp_path / "counties.gpkg", [pixel_box(4 * i, 0, 4 * i + 4, 4) for i in range(3)], ["C1", "C1", "C3"])
    problems = check_study(path)
    joined = "\n".join(problems)
    assert len(problems) == 2, joined
    counties, demand = problems
    assert counties.startswith("counties: ") and "'county' is not unique" in counties and "C1" in counties
    assert "'C2' (row 3): -1." in demand


def test_a_study_object_is_checked_like_its_file(tmp_path):
    study = load_study(make_study(tmp_path))
    assert check_study(study) == []
    bad = pd.DataFrame({"county": ["C1", "C2"], "population": [1, 2]})
    bad.to_csv(tmp_path / "population.csv", index=False)
    assert check_study(study) == ["demand: 1 polygon(s) of counties.gpkg have no row in population.csv: ['C3']; add their rows"]


# -- what run would refuse, found by check before any compute --------------------------------------


def test_a_raster_that_covers_none_of_the_counties_is_refused_before_any_compute(tmp_path):
    from carbonscape.cli.main import cli
    from click.testing import CliRunner

    path = make_study(tmp_path)
    far = [pixel_box(4 * i + 1000, 0, 4 * i + 1004, 4) for i in range(3)]  # 100 km east of the raster
    write_vector(tmp_path / "counties.gpkg", far, ["C1", "C2", "C3"])
    problems = check_study(path)
    assert len(problems) == 1 and "landuse.tif covers none of the 3 counties of counties.gpkg" in problems[0], problems
    for command in (["check", str(path)], ["run", str(path), "--scheduler", "synchronous"]):
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 2 and "covers none of the 3 counties" in result.output, result.output
    assert not (tmp_path / "results").exists()


def test_counties_the_raster_does_not_reach_are_named(tmp_path):
    path = make_study(tmp_path)
    write_vector(tmp_path / "counties.gpkg", [pixel_box(0, 0, 4, 4), pixel_box(4, 0, 8, 4), pixel_box(40, 0, 44, 4)], ["C1", "C2", "C3"])
    (problem,) = check_study(path)
    assert "does not reach 1 of the counties of counties.gpkg (C3): they would get no pixels" in problem


def test_k_above_the_distinct_ratios_of_counties_without_population(tmp_path):
    """Case 07's kind: counties with no population all have ratio 0, one value for the breaks."""
    from carbonscape.cli.main import cli
    from click.testing import CliRunner

    codes = np.ones((4, 32), dtype=np.uint8)
    codes[:, 16:] = 2
    path = make_study(tmp_path, codes=codes, zoning='method = "jenks"\nk = 7\nscheme = "classes"',
                      population="county,population\n" + "".join(f"C{i},{p}\n" for i, p in enumerate([0, 0, 0, 1000, 5000, 20000, 80000, 300000], 1)))
    write_vector(tmp_path / "counties.gpkg", [pixel_box(4 * i, 0, 4 * i + 4, 4) for i in range(8)], [f"C{i}" for i in range(1, 9)])
    (problem,) = check_study(path)
    assert problem == ("[zoning] k = 7 jenks classes need 7 distinct ratios, but 3 counties have no population (C1, C2, C3: "
                       "'population' is 0), so they share ratio 0 and at most 6 distinct ratios remain; use k <= 6")
    result = CliRunner().invoke(cli, ["run", str(path), "--scheduler", "synchronous"])
    assert result.exit_code == 2 and "use k <= 6" in result.output and not (tmp_path / "results").exists()
    path.write_text(path.read_text().replace("k = 7", "k = 6"), encoding="utf-8")
    assert check_study(path) == []


def test_ties_only_the_computed_ratios_show_are_refused_with_the_study_key_and_nothing_written(tmp_path):
    """Three counties alike in land use and population have one ratio: k = 2 cannot be met, which
    only the supply pass can tell; run exits 2 naming [zoning] k and writes no results."""
    from carbonscape.cli.main import cli
    from click.testing import CliRunner

    path = make_study(tmp_path, codes=np.ones((4, 12), dtype=np.uint8), population="county,population\nC1,10\nC2,10\nC3,10\n")
    assert check_study(path) == []
    result = CliRunner().invoke(cli, ["run", str(path), "--scheduler", "synchronous"])
    assert result.exit_code == 2, result.output
    assert "[zoning] k = 2 (jenks): 2 classes asked for 1 distinct value(s); use at most 1 classes" in result.output
    assert "np.float64" not in result.output and not (tmp_path / "results").exists()
    assert not list(tmp_path.glob(".results.*"))


def test_check_says_what_it_checked(tmp_path):
    from carbonscape.cli.main import cli
    from click.testing import CliRunner

    path = make_study(tmp_path)
    result = CliRunner().invoke(cli, ["check", str(path)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "all inputs look right" in out
    assert "counties   3 in counties.gpkg (id field 'county'), CRS WGS 84 / UTM zone 48N" in out
    assert "projected (EPSG:32648): pixels 100 × 100 m = 1 ha each" in out and "4 × 12 pixels, uint8, nodata 255" in out
    # Codes 1 and 2 with their pixel counts (24 and 23: one pixel is nodata), and pixels per county.
    assert "2 land-use codes, all in pools.csv: 1 class 1 (23 px), 2 class 2 (24 px)" in out
    assert "per county about 16 (fewest: C1) to 16, median 16" in out


def test_check_reports_a_results_folder_run_would_refuse(tmp_path):
    path = make_study(tmp_path)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "thesis.docx").write_text("mine")
    (problem,) = check_study(path)
    assert problem.startswith("results: ") and "holds files carbonscape did not write (thesis.docx)" in problem
