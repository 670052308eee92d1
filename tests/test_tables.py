"""Tables and vectors as people have them (handed cases 02, 04, 10, 11 and their kinds): separators,
decimal commas, encodings, Excel title rows, GBK shapefiles without .cpg, tiles a hair apart."""

import os
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from carbonscape import check_study, read_pools, run_study
from carbonscape.cli.main import cli
from carbonscape.demand import check_county_table
from carbonscape.tables import detect_encoding, parse_number, read_table
from click.testing import CliRunner
from conftest import pixel_box, write_tif
from rasterio.transform import from_origin

# The handed cases' land use: codes 1-4 in a fixed pattern, 100 m pixels (1 ha).
POOLS = {1: (50.0, 10.0, 100.0, 5.0, "forest"), 2: (5.0, 2.0, 80.0, 1.0, "cropland"), 3: (10.0, 3.0, 60.0, 2.0, "grassland"),
         4: (0.0, 0.0, 20.0, 0.0, "built-up")}


def codes(rows=20, cols=30):
    r, c = np.mgrid[0:rows, 0:cols]
    return np.array([1, 2, 3, 4], dtype=np.uint8)[(r * 7 + c * 3 + (r * c) % 5) % 4]


def by_hand(lulc, columns, pools=POOLS):
    """t C of the pixels in each column range: pixel count × 1 ha × total density."""
    density = {code: sum(v[:4]) for code, v in pools.items()}
    return {name: float(sum(density[int(c)] for c in lulc[:, a:b].ravel())) for name, (a, b) in columns.items()}


def pools_text(pools=POOLS, *, sep=",", decimal="."):
    lines = [sep.join(["lucode", "c_above", "c_below", "c_soil", "c_dead", "LULC_name"])]
    for code, (*values, name) in pools.items():
        lines.append(sep.join([str(code), *(f"{v:g}".replace(".", decimal) for v in values), name]))
    return "\n".join(lines) + "\n"


STUDY = """[landuse]
rasters = [{rasters}]
[counties]
path = "{counties}"
id_field = "{id_field}"
[pools]
path = "{pools}"
[demand]
table = "{table}"
per_capita_t = 4.0
[zoning]
method = "jenks"
k = 2
scheme = "classes"
[outputs]
maps = false
report = false
"""


def study(folder, *, rasters='"landuse.tif"', counties="counties.gpkg", id_field="county", pools="pools.csv", table="population.csv"):
    path = folder / "study.toml"
    path.write_text(STUDY.format(rasters=rasters, counties=counties, id_field=id_field, pools=pools, table=table), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "decimal", "value"),
    [("12 000", ".", 12000), ("1,234.5", ".", 1234.5), ("1.234,5", ",", 1234.5), ("5,5", ",", 5.5), ("12,000", ".", 12000),
     ("12\u00a0000", ".", 12000), ("-5", ".", -5), ("1e5", ".", 1e5), (" 7 ", ".", 7), ("abc", ".", None), ("", ".", None),
     ("1,2,3", ".", None), ("5,5", ".", None)],
)
def test_numbers_as_people_write_them(text, decimal, value):
    assert parse_number(text, decimal=decimal) == value


@pytest.mark.parametrize(
    ("data", "encoding"),
    [("名,1\n".encode(), "utf-8"), ("\ufeff名,1\n".encode(), "utf-8-sig"), ("五华区,1\n".encode("gbk"), "gb18030"),
     ("Zürich,1\n".encode("cp1252"), "cp1252")],
)
def test_encodings_are_detected(data, encoding):
    assert detect_encoding(data) == encoding


@pytest.mark.parametrize(
    ("sep", "decimal", "encoding"),
    [(";", ",", "utf-8-sig"), (";", ",", "gbk"), ("\t", ".", "utf-8"), ("|", ".", "utf-8"), (",", ".", "utf-16")],
    ids=["semicolon-decimal-comma-bom", "semicolon-gbk", "tab", "pipe", "utf16"],
)
def test_a_pools_table_in_any_separator_decimal_mark_and_encoding(tmp_path, sep, decimal, encoding):
    pools = dict(POOLS)
    pools[2] = (5.5, 2.25, 80.0, 1.0, "耕地")
    (tmp_path / "pools.csv").write_bytes(pools_text(pools, sep=sep, decimal=decimal).encode(encoding))
    table = read_pools(tmp_path / "pools.csv")
    assert table.table.loc[2, ["c_above", "c_below"]].tolist() == [5.5, 2.25] and table.table.loc[2, "name"] == "耕地"
    assert table.table.loc[1, "c_soil"] == 100.0


def test_semicolon_pools_with_decimal_commas_give_the_right_supply_step_by_step(tmp_path):
    """Case 02: a ';'-separated pools table with ',' decimals (natcap/invest#1296), through the CLI."""
    lulc = codes()
    pools = dict(POOLS)
    pools[2] = (5.5, 2.25, 80.0, 1.0, "cropland")
    write_tif(tmp_path / "landuse.tif", lulc, nodata=255)
    (tmp_path / "pools.csv").write_bytes(pools_text(pools, sep=";", decimal=",").encode("utf-8-sig"))
    gpd.GeoDataFrame({"county": ["A", "B"]}, geometry=[pixel_box(0, 0, 12, 20), pixel_box(12, 0, 30, 20)], crs="EPSG:32648").to_file(
        tmp_path / "counties.gpkg")
    runner = CliRunner()
    s = "--scheduler", "synchronous"
    assert runner.invoke(cli, ["ingest", str(tmp_path / "landuse.tif"), "--out", str(tmp_path / "lu.zarr"), *s]).exit_code == 0
    assert runner.invoke(cli, ["zones", str(tmp_path / "counties.gpkg"), "--like", str(tmp_path / "lu.zarr"), "--id-field", "county",
                               "--out", str(tmp_path / "z.zarr"), *s]).exit_code == 0
    done = runner.invoke(cli, ["supply", "--landuse", str(tmp_path / "lu.zarr"), "--zones", str(tmp_path / "z.zarr"), "--pools",
                               str(tmp_path / "pools.csv"), "--out", str(tmp_path / "res"), *s])
    assert done.exit_code == 0, done.output
    got = pd.read_csv(tmp_path / "res" / "supply_by_county.csv").set_index("county")["supply_t"].to_dict()
    assert got == pytest.approx({"A": 20925.0, "B": 31387.5}, rel=1e-12)
    assert got == pytest.approx(by_hand(lulc, {"A": (0, 12), "B": (12, 30)}, pools), rel=1e-12)


NAMES = ["五华区", "盘龙区", "官渡区"]
COLUMNS = {"五华区": (0, 8), "盘龙区": (8, 19), "官渡区": (19, 30)}  # case 11/04 supply: 13920, 19140, 19140 t


def three_counties(folder, *, vector="gpkg"):
    write_tif(folder / "landuse.tif", codes(), nodata=255)
    (folder / "pools.csv").write_text(pools_text(), encoding="utf-8")
    frame = gpd.GeoDataFrame({"county": NAMES}, geometry=[pixel_box(a, 0, b, 20) for a, b in COLUMNS.values()], crs="EPSG:32648")
    frame.to_file(folder / "counties.gpkg")
    return frame


def excel_with_title(path, rows, *, header=("county", "population", "households"), notes=True):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "人口"
    ws.append(["2020年各县（市、区）常住人口", None, None])
    ws.merge_cells("A1:C1")
    ws.append(list(header))
    ws.append(["", "人", "户"])  # a units row
    for row in rows:
        ws.append(list(row))
    if notes:
        ws.append(["注：数据来源于第七次全国人口普查。", None, None])
    wb.save(path)


def test_a_yearbook_sheet_with_a_title_row_units_row_and_notes_is_read_right(tmp_path):
    """Case 11: the header is on row 2; the units row and the notes line are skipped."""
    three_counties(tmp_path)
    excel_with_title(tmp_path / "population.xlsx", zip(NAMES, [12000, 8000, 15000], [4000, 2700, 5100]))
    result = run_study(study(tmp_path, table="population.xlsx"), scheduler="synchronous")
    demand = pd.read_csv(tmp_path / "results" / "demand_by_county.csv").set_index("county")
    assert demand["population"].to_dict() == {"五华区": 12000, "盘龙区": 8000, "官渡区": 15000}
    supply = result.supply.by_county.set_index("county")["supply_t"].to_dict()
    assert supply == pytest.approx({"五华区": 13920.0, "盘龙区": 19140.0, "官渡区": 19140.0}, rel=1e-12)
    assert supply == pytest.approx(by_hand(codes(), COLUMNS), rel=1e-12)


def test_a_title_row_in_a_csv_and_thousands_separators(tmp_path):
    text = "2020 population by county\n\ncounty;population\n五华区;12.000\n盘龙区;8.000\n官渡区;15.500\n"
    (tmp_path / "p.csv").write_bytes(text.encode("gbk"))
    frame, problems = check_county_table(tmp_path / "p.csv", key="county", numeric=["population"])
    assert problems == [] and frame["population"].to_dict() == {"五华区": 12000, "盘龙区": 8000, "官渡区": 15500}


def test_row_numbers_in_messages_are_the_file_s_rows_below_a_title(tmp_path):
    excel_with_title(tmp_path / "p.xlsx", [("A", 1, 1), ("B", "abc", 2), ("C", -5, 3)], notes=False)
    _, problems = check_county_table(tmp_path / "p.xlsx", key="county", numeric=["population"])
    assert problems == ["%s: 'population' must be a non-negative number in every row; bad: 'B' (row 5): 'abc', 'C' (row 6): '-5'. "
                        "Fix these cells" % (tmp_path / "p.xlsx")]


def test_a_pools_table_in_xlsx_below_a_title(tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["Carbon pools (t/ha), after Zhang et al."])
    ws.append(["LUCODE", "C_ABOVE", "C_BELOW", "C_SOIL", "C_DEAD", "LULC_NAME"])
    for code, (*values, name) in POOLS.items():
        ws.append([code, *values, name])
    wb.save(tmp_path / "pools.xlsx")
    table = read_pools(tmp_path / "pools.xlsx")
    assert table.codes == [1, 2, 3, 4] and table.table.loc[1, "c_above"] == 50.0 and table.table.loc[4, "name"] == "built-up"


def test_a_table_without_its_key_column_names_the_columns_found(tmp_path):
    (tmp_path / "p.csv").write_text("name;pop\nA;1\n", encoding="utf-8")
    _, problems = check_county_table(tmp_path / "p.csv", key="county", numeric=["population"])
    assert "no column 'county' to match the counties by" in problems[0] and "['name', 'pop']" in problems[0]


def gbk_shapefile(folder):
    """Case 04: a shapefile whose DBF text is GBK, with no .cpg and no language-driver byte."""
    (folder / "counties").mkdir()
    shp = folder / "counties" / "counties.shp"
    gpd.GeoDataFrame({"NAME": NAMES, "adcode": [530102, 530103, 530111]}, geometry=[pixel_box(a, 0, b, 20) for a, b in COLUMNS.values()],
                     crs="EPSG:32648").to_file(shp, encoding="GBK", engine="pyogrio")
    os.remove(shp.with_suffix(".cpg"))
    dbf = bytearray(shp.with_suffix(".dbf").read_bytes())
    dbf[29] = 0
    shp.with_suffix(".dbf").write_bytes(bytes(dbf))
    return shp


def test_a_gbk_shapefile_without_cpg_is_read_as_gbk_in_a_study_and_step_by_step(tmp_path, caplog):
    three_counties(tmp_path)
    shp = gbk_shapefile(tmp_path)
    pd.DataFrame({"NAME": NAMES, "population": [12000, 8000, 15000]}).to_csv(tmp_path / "population.csv", index=False)
    result = run_study(study(tmp_path, counties="counties/counties.shp", id_field="NAME"), scheduler="synchronous")
    expected = {"五华区": 13920.0, "盘龙区": 19140.0, "官渡区": 19140.0}
    assert result.supply.by_county.set_index("county")["supply_t"].to_dict() == pytest.approx(expected, rel=1e-12)
    runner = CliRunner()
    s = "--scheduler", "synchronous"
    assert runner.invoke(cli, ["ingest", str(tmp_path / "landuse.tif"), "--out", str(tmp_path / "lu.zarr"), *s]).exit_code == 0
    zones = runner.invoke(cli, ["-v", "zones", str(shp), "--like", str(tmp_path / "lu.zarr"), "--id-field", "NAME", "--out",
                                str(tmp_path / "z.zarr"), *s])
    assert zones.exit_code == 0, zones.output
    assert "no .cpg file; its text decodes as GB18030 (GBK), so it is read as GB18030 (set --encoding to override)" in caplog.text
    assert runner.invoke(cli, ["supply", "--landuse", str(tmp_path / "lu.zarr"), "--zones", str(tmp_path / "z.zarr"), "--pools",
                               str(tmp_path / "pools.csv"), "--out", str(tmp_path / "res"), *s]).exit_code == 0
    got = pd.read_csv(tmp_path / "res" / "supply_by_county.csv").set_index("county")["supply_t"].to_dict()
    assert got == pytest.approx(expected, rel=1e-12)


def test_a_wrong_encoding_setting_is_refused_never_a_garbled_name(tmp_path):
    three_counties(tmp_path)
    gbk_shapefile(tmp_path)
    pd.DataFrame({"NAME": NAMES, "population": [1, 2, 3]}).to_csv(tmp_path / "population.csv", index=False)
    path = study(tmp_path, counties="counties/counties.shp", id_field="NAME")
    path.write_text(path.read_text().replace('id_field = "NAME"', 'id_field = "NAME"\nencoding = "latin1"'), encoding="utf-8")
    result = CliRunner().invoke(cli, ["run", str(path), "--scheduler", "synchronous"])
    assert result.exit_code == 2, result.output
    assert "looks mis-decoded" in result.output and "set [counties] encoding" in result.output
    assert not (tmp_path / "results").exists()


def test_a_file_with_several_layers_needs_layer_and_check_lists_them(tmp_path):
    frame = three_counties(tmp_path)
    frame.iloc[:1].to_file(tmp_path / "counties.gpkg", layer="rivers")
    pd.DataFrame({"county": NAMES, "population": [1, 2, 3]}).to_csv(tmp_path / "population.csv", index=False)
    path = study(tmp_path)
    problems = check_study(path)
    assert len(problems) == 1 and "counties.gpkg has 2 layers (counties, rivers); set [counties] layer to the one with the counties" \
        in problems[0], problems
    path.write_text(path.read_text().replace('id_field = "county"', 'id_field = "county"\nlayer = "counties"'), encoding="utf-8")
    assert check_study(path) == []


@pytest.mark.parametrize(("offset_px", "accepted"), [(1.0956868225269592e-05, True), (2e-4, True), (0.0125, False)])
def test_tiles_a_hair_apart_are_snapped_and_larger_offsets_refused_with_the_offset(tmp_path, offset_px, accepted):
    """Case 10: tile 2's origin is off the grid by a tiny fraction of a pixel."""
    lulc = codes(20, 30)
    write_tif(tmp_path / "tile_1.tif", lulc[:, :15].copy(), nodata=255)
    write_tif(tmp_path / "tile_2.tif", lulc[:, 15:].copy(), nodata=255,
              transform=from_origin(500_000 + 15 * 100 + offset_px * 100, 2_800_000, 100, 100))
    (tmp_path / "pools.csv").write_text(pools_text(), encoding="utf-8")
    gpd.GeoDataFrame({"county": ["West", "East"]}, geometry=[pixel_box(0, 0, 12, 20), pixel_box(12, 0, 30, 20)],
                     crs="EPSG:32648").to_file(tmp_path / "counties.gpkg")
    pd.DataFrame({"county": ["West", "East"], "population": [1, 2]}).to_csv(tmp_path / "population.csv", index=False)
    path = study(tmp_path, rasters='"tile_1.tif", "tile_2.tif"')
    result = CliRunner().invoke(cli, ["run", str(path), "--scheduler", "synchronous"])
    if accepted:
        assert result.exit_code == 0, result.output
        got = pd.read_csv(tmp_path / "results" / "supply_by_county.csv").set_index("county")["supply_t"].to_dict()
        assert got == pytest.approx(by_hand(lulc, {"West": (0, 12), "East": (12, 30)}), rel=1e-9)
    else:
        assert result.exit_code == 2 and "tile_2.tif" in result.output and "columns +0.0125" in result.output, result.output


@pytest.mark.parametrize(
    ("text", "message"),
    [("lucode,c_above,c_below,c_soil,c_dead\n1.5,1,1,1,1\n", "lucode must be an integer; bad value(s) [1.5]"),
     ("lucode,c_above,c_below,c_soil,c_dead\n3,1,1,1,1\n3,2,2,2,2\n", "lucode [3] appears more than once"),
     ("lucode;c_above;c_below;c_soil;c_dead\n3;-1,5;1;1;1\n", "lucode 3: c_above = -1.5 is negative"),
     ("lucode,c_above,c_below,c_soil,c_dead\n3,,1,1,1\n4,x,1,1,1\n", "lucode 3: c_above = empty is not a number; lucode 4: c_above = 'x'")],
    ids=["fractional-code", "repeated-code", "negative", "empty-and-text"],
)
def test_pools_messages_show_values_as_written(tmp_path, text, message):
    from carbonscape import PoolTableError

    (tmp_path / "pools.csv").write_text(text, encoding="utf-8")
    with pytest.raises(PoolTableError) as info:
        read_pools(tmp_path / "pools.csv")
    assert message in str(info.value) and "np." not in str(info.value), str(info.value)


def test_zones_far_from_the_raster_show_plain_numbers(tmp_path):
    write_tif(tmp_path / "landuse.tif", codes(), nodata=255)
    gpd.GeoDataFrame({"county": ["A"]}, geometry=[pixel_box(1000, 0, 1010, 10)], crs="EPSG:32648").to_file(tmp_path / "c.gpkg")
    runner = CliRunner()
    assert runner.invoke(cli, ["ingest", str(tmp_path / "landuse.tif"), "--out", str(tmp_path / "lu.zarr"), "--scheduler",
                               "synchronous"]).exit_code == 0
    result = runner.invoke(cli, ["zones", str(tmp_path / "c.gpkg"), "--like", str(tmp_path / "lu.zarr"), "--id-field", "county",
                                 "--out", str(tmp_path / "z.zarr"), "--scheduler", "synchronous"])
    assert result.exit_code == 2 and "no polygon overlaps the raster" in result.output, result.output
    assert "np.float64" not in result.output and "(500000.0, 2798000.0, 503000.0, 2800000.0)" in result.output


def test_zones_on_a_file_with_several_layers_lists_them_and_takes_layer(tmp_path):
    frame = three_counties(tmp_path)
    frame.iloc[:1].to_file(tmp_path / "counties.gpkg", layer="rivers")
    runner = CliRunner()
    s = "--scheduler", "synchronous"
    assert runner.invoke(cli, ["ingest", str(tmp_path / "landuse.tif"), "--out", str(tmp_path / "lu.zarr"), *s]).exit_code == 0
    command = ["zones", str(tmp_path / "counties.gpkg"), "--like", str(tmp_path / "lu.zarr"), "--id-field", "county", "--out",
               str(tmp_path / "z.zarr"), *s]
    result = runner.invoke(cli, command)
    assert result.exit_code == 2 and "has 2 layers (counties, rivers); set --layer to the one with the counties" in result.output
    assert runner.invoke(cli, [*command, "--layer", "counties"]).exit_code == 0
