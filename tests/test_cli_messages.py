"""What a new user met trying the commands: folders of their own files left alone, results on stdout
with -q, a report that follows its maps, and messages that name the value and the fix."""

from __future__ import annotations

import ast
import json
import logging
import re
from pathlib import Path
from types import SimpleNamespace

import carbonscape
import pandas as pd
import pytest
from carbonscape.cli.main import cli
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]


def _invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    base = tmp_path_factory.mktemp("messages")
    region = carbonscape.make_region(base / "region", shape=(160, 150), n_counties=8, seed=4, nodata_fraction=0.01)
    landuse = carbonscape.ingest(region.landuse, base / "lu.zarr", chunk=64, scheduler="synchronous", progress=False)
    zones = carbonscape.rasterize_zones(region.counties, like=landuse, id_field="county", out=base / "z.zarr", scheduler="synchronous",
                                        progress=False)
    return SimpleNamespace(base=base, region=region, landuse=landuse, zones=zones)


def _supply(stores, out, *extra):
    return _invoke(*extra, "supply", "--landuse", stores.landuse, "--zones", stores.zones, "--pools", stores.region.pools, "--out", out,
                   "--scheduler", "synchronous", "--no-progress")


def test_supply_leaves_a_folder_of_the_users_own_files_alone(stores, tmp_path):
    mine = tmp_path / "work"
    mine.mkdir()
    (mine / "supply_by_county.csv").write_text("my own table\n", encoding="utf-8")
    (mine / "notes.txt").write_text("notes\n", encoding="utf-8")
    done = _supply(stores, mine)
    assert done.exit_code == 2, done.output
    assert "notes.txt" in done.output and "supply_by_county.csv" in done.output and "--overwrite" in done.output
    assert "new or empty folder" in done.output
    assert (mine / "supply_by_county.csv").read_text(encoding="utf-8") == "my own table\n"  # untouched
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt", "supply_by_county.csv"]
    # --overwrite writes into it; the user's other file stays.
    done = _invoke("supply", "--landuse", stores.landuse, "--zones", stores.zones, "--pools", stores.region.pools, "--out", mine,
                   "--overwrite", "--scheduler", "synchronous", "--no-progress")
    assert done.exit_code == 0, done.output
    assert (mine / "notes.txt").exists() and "county" in (mine / "supply_by_county.csv").read_text(encoding="utf-8")


def test_supply_reruns_into_its_own_folder_and_quiet_keeps_the_results(stores, tmp_path):
    out = tmp_path / "results"
    first = _supply(stores, out, "-q")
    assert first.exit_code == 0, first.output
    # -q hides progress and logs; the results are output and stay on stdout.
    assert re.search(r"^total supply [\d,]+ t C in 8 counties", first.stdout, re.M), first.stdout
    assert f"supply_by_county: {out / 'supply_by_county.csv'}" in first.stdout
    again = _supply(stores, out, "-q")  # the folder is carbonscape's own now
    assert again.exit_code == 0 and again.stdout.splitlines()[1:] == first.stdout.splitlines()[1:], again.output


def test_generate_leaves_a_folder_of_the_users_own_files_alone_and_checks_its_size(tmp_path):
    (tmp_path / "landuse.tif").write_bytes(b"my own raster")
    done = _invoke("generate", tmp_path, "--size", "40x50", "--counties", "3")
    assert done.exit_code == 2 and "landuse.tif" in done.output and "--overwrite" in done.output, done.output
    assert (tmp_path / "landuse.tif").read_bytes() == b"my own raster"
    fresh = tmp_path / "region"
    assert _invoke("generate", fresh, "--size", "40x50", "--counties", "3").exit_code == 0
    assert _invoke("generate", fresh, "--size", "40x50", "--counties", "3", "--seed", "2").exit_code == 0  # its own folder again
    for size in ("0x100", "100x0", "-5x10"):
        done = _invoke("generate", tmp_path / f"g{size}", "--size", size)
        assert done.exit_code == 2 and f"--size '{size}'" in done.output and "e.g. 2000x3000" in done.output, done.output
        assert "rasterio" not in done.output.lower() and not (tmp_path / f"g{size}").exists()


def test_maps_in_another_format_rewrite_the_report(tmp_path):
    from test_maps_report import fake_run

    run = fake_run(tmp_path / "run", n_side=3)
    assert _invoke("maps", run).exit_code == 0
    assert _invoke("report", run).exit_code == 0
    assert "data:image/png;base64," in (run / "report.html").read_text(encoding="utf-8")
    done = _invoke("maps", run, "--format", "svg")
    assert done.exit_code == 0, done.output
    assert str(run / "report.html") in done.stdout
    page = (run / "report.html").read_text(encoding="utf-8")
    assert "data:image/svg+xml;base64," in page and "data:image/png;base64," not in page


def test_no_message_cites_a_file_the_user_does_not_have():
    """Strings of the package that are not docstrings (messages, table texts) never cite
    METHOD.md, which is not shipped: they give the formula in words (and, in a user's own study,
    never name the paper: tests/test_words.py)."""
    found = []
    for path in sorted((ROOT / "engine").rglob("*.py")) + sorted((ROOT / "cli").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body
                      and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings and "METHOD.md" in node.value:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, found
    from carbonscape.ratio import UNITS

    assert "ratio = demand density ÷ supply density" in UNITS["co2_per_c"] and "paper" not in UNITS["co2_per_c"]


def test_the_nodata_warning_says_when_its_list_is_cut(stores, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="carbonscape"):
        result = carbonscape.supply(stores.landuse, stores.zones, stores.region.pools, scheduler="synchronous", progress=False)
    by_county = result.summary["nodata_pixels_by_county"]
    assert len(by_county) > 5
    line = next(r.getMessage() for r in caplog.records if "count nowhere" in r.getMessage())
    assert f"… {len(by_county) - 5} more" in line, line


def test_a_study_files_problem_names_the_file_once(tmp_path):
    import geopandas as gpd

    region = carbonscape.make_region(tmp_path, shape=(90, 90), n_counties=9, seed=1)
    names = gpd.read_file(region.counties)["county"]
    pd.DataFrame({"county": names, "population": 1000}).to_csv(tmp_path / "population.csv", index=False)
    study = tmp_path / "study.toml"
    assert _invoke("init", study).exit_code == 0
    study.write_text(study.read_text(encoding="utf-8").replace("\nyear = ", "\nyaer = ", 1), encoding="utf-8")
    done = _invoke("check", study)
    assert done.exit_code == 2 and "did you mean `year`" in done.output, done.output
    assert done.output.count("study.toml") == 1 and f"{study}, line " in done.output, done.output
    from carbonscape.errors import StudyError

    assert str(StudyError(["study.toml, line 2: unknown key"], path="study.toml")) == "study.toml, line 2: unknown key"
    assert str(StudyError(["study.toml, line 2: unknown key"], path="/a/b/study.toml")) == "/a/b/study.toml, line 2: unknown key"
    assert str(StudyError(["[demand] table is missing"], path="study.toml")) == "study.toml: [demand] table is missing"


def test_a_bad_scheduler_lists_the_job_queues_too(stores, tmp_path):
    done = _invoke("supply", "--landuse", stores.landuse, "--zones", stores.zones, "--pools", stores.region.pools, "--out", tmp_path / "o",
                   "--scheduler", "slurmm")
    assert done.exit_code == 2 and "'slurmm'" in done.output
    assert "slurm" in done.output.replace("'slurmm'", "") and "pbs" in done.output and "--jobs" in done.output, done.output


def test_a_missing_sheet_lists_the_sheets_there_are(stores, tmp_path):
    import geopandas as gpd

    names = gpd.read_file(stores.region.counties)["county"]
    table = tmp_path / "population.xlsx"
    with pd.ExcelWriter(table) as writer:
        pd.DataFrame({"county": names, "population": 1000}).to_excel(writer, sheet_name="pop 2020", index=False)
        pd.DataFrame({"note": ["x"]}).to_excel(writer, sheet_name="notes", index=False)
    out = tmp_path / "results"
    assert _supply(stores, out).exit_code == 0
    done = _invoke("demand", out, "--counties", stores.region.counties, "--id-field", "county", "--table", table, "--sheet", "Sheet1",
                   "--per-capita-t", "4")
    assert done.exit_code == 2 and "'Sheet1'" in done.output and "'pop 2020'" in done.output and "'notes'" in done.output, done.output
    from carbonscape.tables import read_table

    with pytest.raises(carbonscape.InputError, match=r"no sheet 5.*'pop 2020', 'notes'"):
        read_table(table, sheet=5)


def test_the_change_figures_are_titled_by_the_years_when_given(tmp_path, monkeypatch):
    from carbonscape.change_figures import draw_transitions
    from matplotlib.figure import Figure

    titles = []
    save = Figure.savefig

    def keep(self, *args, **kwargs):
        titles.extend(ax.get_title() for ax in self.axes)
        return save(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    transitions = pd.DataFrame({"from_code": [1, 1, 2], "from_name": ["forest", "forest", "cropland"], "to_code": [1, 2, 2],
                                "to_name": ["forest", "cropland", "cropland"], "area_km2": [10.0, 2.0, 5.0]})
    labelled = {"maps": {"from": "stores/lu_a.zarr", "to": "stores/lu_b.zarr"}}
    draw_transitions(SimpleNamespace(transitions=transitions, summary={**labelled, "years": [2000, 2020]}), tmp_path / "a.png")
    draw_transitions(SimpleNamespace(transitions=transitions, summary={**labelled, "years": None}), tmp_path / "b.png")
    assert "2000 → 2020" in titles[0] and "lu_a" not in titles[0]
    assert "stores/lu_a.zarr → stores/lu_b.zarr" in titles[1]
    assert json.dumps(titles)


def _change(stores, out, *extra):
    return _invoke("change", "--from", stores.landuse, "--to", stores.landuse, "--zones", stores.zones, "--pools", stores.region.pools,
                   "--out", out, "--scheduler", "synchronous", "--no-progress", *extra)


def test_change_leaves_a_folder_of_the_users_own_files_alone_and_reruns_into_its_own(stores, tmp_path):
    mine = tmp_path / "work"
    mine.mkdir()
    (mine / "notes.txt").write_text("notes\n", encoding="utf-8")
    done = _change(stores, mine)
    assert done.exit_code == 2, done.output
    assert "notes.txt" in done.output and "--overwrite" in done.output
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    done = _change(stores, tmp_path / "change")
    assert done.exit_code == 0, done.output
    assert (tmp_path / "change" / "change_by_county.csv").is_file()
    again = _change(stores, tmp_path / "change")  # its own folder: a rerun is allowed
    assert again.exit_code == 0, again.output
    done = _change(stores, mine, "--overwrite")
    assert done.exit_code == 0, done.output
    assert (mine / "notes.txt").exists() and (mine / "change_by_county.csv").is_file()


def test_a_discount_rate_given_as_a_fraction_is_warned_about(caplog):
    with caplog.at_level(logging.WARNING, logger="carbonscape.change"):
        carbonscape.Valuation(price=50, discount_rate=0.05)
    assert "discount rate 0.05 is read as 0.05 % a year (rates are percentages, as in InVEST); for 5 % give 5" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="carbonscape.change"):
        carbonscape.Valuation(price=50, discount_rate=7)
        carbonscape.Valuation(price=50, discount_rate=0)
    assert "discount rate" not in caplog.text
