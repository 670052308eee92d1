import numpy as np
import pandas as pd
import pytest
from carbonscape import InputError, TableError
from carbonscape.demand import (
    check_county_table,
    demand_by_county,
    demand_totals,
    demand_totals_table,
    per_capita_emission,
    read_county_table,
)
from carbonscape.ratio import supply_demand_ratio

TABLE = pd.DataFrame({"population": [100_000, 50_000, 0]}, index=pd.Index(["A", "B", "C"], name="county"))
AREA = pd.Series({"A": 100.0, "B": 500.0, "C": 50.0})


def test_hand_computed_demand():
    per_capita = per_capita_emission(total_emissions_t=4.0e8, total_population=1.0e8)  # 4 t/person
    demand = demand_by_county(TABLE, area_km2=AREA, per_capita_t=per_capita)
    # A: 4 × 100000 / 100 = 4000 t/km²; B: 4 × 50000 / 500 = 400; C: 0.
    assert demand["demand_t_per_km2"].tolist() == pytest.approx([4000, 400, 0])
    assert demand["density_per_km2"].tolist() == pytest.approx([1000, 100, 0])
    assert demand["share_pct"].tolist() == pytest.approx([100 * 4000 / 4400, 100 * 400 / 4400, 0])
    totals = demand_totals(demand)
    assert totals["sum_of_county_densities_t_per_km2"] == pytest.approx(4400)
    # The regional density: 600000 t over 650 km².
    assert totals["regional_density_t_per_km2"] == pytest.approx(600_000 / 650)


def test_county_inventory_instead_of_per_capita():
    table = TABLE.assign(co2=[1000.0, 5000.0, 50.0])
    demand = demand_by_county(table, area_km2=AREA, emissions_column="co2")
    assert demand["demand_t_per_km2"].tolist() == pytest.approx([10, 10, 1])
    with pytest.raises(InputError, match="exactly one"):
        demand_by_county(table, area_km2=AREA, emissions_column="co2", per_capita_t=1.0)


def test_mismatched_counties_name_the_rows():
    with pytest.raises(TableError, match=r"have no polygon: \['X'\].*no row in the table: \['C'\]"):
        demand_by_county(TABLE.rename(index={"C": "X"}), area_km2=AREA, per_capita_t=1.0)
    with pytest.raises(TableError, match="'B': 'many'"):
        demand_by_county(TABLE.astype(object).assign(population=[1, "many", 3]), area_km2=AREA, per_capita_t=1.0)


def test_read_county_table_checks_keys(tmp_path):
    path = tmp_path / "pop.csv"
    path.write_text("county,population\n五华区,100\n盘龙区,200\n五华区,300\n", encoding="utf-8")
    with pytest.raises(TableError, match=r"'五华区' on rows \[2, 4\]"):
        read_county_table(path, key="county")
    path.write_text("name,population\n五华区,100\n", encoding="utf-8")
    with pytest.raises(TableError, match="no column 'county'"):
        read_county_table(path, key="county")


def test_county_table_problems_are_gathered_with_rows(tmp_path):
    path = tmp_path / "pop.csv"
    # Line 4 is blank: row numbers stay the file's lines. Line 7 has no county.
    path.write_text("county,pop\nA,100\nB,abc\n\nC,\nA,-5\n,7\nD,20\n", encoding="utf-8")
    table, problems = check_county_table(path, key="county", numeric=["pop", "co2"])
    assert len(problems) == 4, problems
    missing, empty, repeated, bad = problems
    assert "no column(s) ['co2']" in missing and str(path) in missing
    assert "rows [7] have no 'county'" in empty
    assert "'A' on rows [2, 6]" in repeated
    assert "'pop' must be a non-negative number" in bad and "'B' (row 3): 'abc', 'C' (row 5): empty, 'A' (row 6): '-5'" in bad
    assert list(table.index) == ["A", "B", "C", "A", "D"]  # repeated keys kept for matching, keyless row left out
    with pytest.raises(TableError) as info:
        read_county_table(path, key="county", numeric=["pop"])
    assert "repeats" in str(info.value) and "'abc'" in str(info.value)


def test_bad_numbers_found_late_still_name_the_file(tmp_path):
    path = tmp_path / "pop.csv"
    path.write_text("county,population\nA,1\nB,many\nC,3\n", encoding="utf-8")
    table = read_county_table(path, key="county")
    with pytest.raises(TableError, match=r"pop\.csv: 'population' must be a non-negative number for every county; bad: 'B': 'many'"):
        demand_by_county(table, area_km2=AREA, per_capita_t=1.0)


def test_demand_totals_table_names_each_total_and_its_unit():
    demand = demand_by_county(TABLE, area_km2=AREA, per_capita_t=4.0)
    table = demand_totals_table(demand, per_capita_t=4.0).set_index("total")
    assert list(table.columns) == ["value", "unit", "meaning"]
    # Densities 4000 + 400 + 0; 600,000 t over 650 km²; 150,000 people.
    assert table.loc["sum_of_county_densities_t_per_km2", "value"] == pytest.approx(4400)
    assert table.loc["regional_density_t_per_km2", "value"] == pytest.approx(600_000 / 650)
    assert table.loc["total_demand_t", "value"] == pytest.approx(600_000)
    assert table.loc["total_population", "value"] == 150_000 and table.loc["total_area_km2", "value"] == 650
    assert table.loc["per_capita_t", "value"] == 4.0
    assert table.loc["sum_of_county_densities_t_per_km2", "unit"] == "t CO2/km²" and table.loc["total_demand_t", "unit"] == "t CO2"
    assert "per_capita_t" not in demand_totals_table(demand)["total"].tolist()


def test_ratio_units_and_zero_supply():
    demand = demand_by_county(TABLE, area_km2=AREA, per_capita_t=4.0)
    supply = pd.Series({"A": 2_000_000.0, "B": 0.0, "C": 1_000.0})
    ratio = supply_demand_ratio(supply, demand)
    # A: 4000 / (2e6 / 100) = 0.2; B has demand but no supply: infinite, flagged; C: 0 / 20 = 0.
    assert ratio.loc["A", "ratio"] == pytest.approx(0.2)
    assert np.isinf(ratio.loc["B", "ratio"]) and ratio.loc["B", "ratio_infinite"]
    assert ratio.loc["C", "ratio"] == 0
    carbon = supply_demand_ratio(supply, demand, units="carbon")
    assert carbon.loc["A", "ratio"] == pytest.approx(0.2 * 12 / 44)
    # The same column name holds t CO2 or t C: each row says which.
    assert carbon.loc["A", "demand_t_per_km2"] == pytest.approx(4000 * 12 / 44)
    assert set(ratio["demand_unit"]) == {"t CO2/km²"} and set(carbon["demand_unit"]) == {"t C/km²"}
    with pytest.raises(TableError, match="different counties"):
        supply_demand_ratio(supply.drop("C"), demand)


def test_excel_county_tables_are_read(tmp_path):
    path = tmp_path / "pop.xlsx"
    pd.DataFrame({"county": ["五华区", "盘龙区"], "population": [1_000, 2_000]}).to_excel(path, index=False, sheet_name="2020")
    table = read_county_table(path, key="county")
    assert table.loc["盘龙区", "population"] == 2_000
