"""Spatial statistics: weights checked by hand on a 3 × 3 lattice, every value against esda run directly."""

from __future__ import annotations

from importlib.resources import files

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from carbonscape.errors import InputError
from carbonscape.spatial import (
    NOT_SIGNIFICANT,
    SpatialSettings,
    spatial_statistics,
    spatial_weights,
)
from esda.getisord import G_Local
from esda.moran import Moran, Moran_BV, Moran_Local
from libpysal.weights import Queen, fill_diagonal


def lattice(n_rows: int = 3, n_cols: int = 3) -> gpd.GeoDataFrame:
    """Unit squares, row-major, keys "r{row}c{col}" (row 0 at the top)."""
    boxes, keys = [], []
    for r in range(n_rows):
        for c in range(n_cols):
            boxes.append(shapely.box(c, n_rows - r - 1, c + 1, n_rows - r))
            keys.append(f"r{r}c{c}")
    return gpd.GeoDataFrame(geometry=boxes, index=pd.Index(keys, name="county"), crs="EPSG:3857")


def demo_units() -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """The demo's 49 Central Yunnan counties with the paper's supply (Table 2) and demand (Table 3)."""
    data = files("carbonscape.demo") / "data"
    gdf = gpd.read_file(str(data / "counties.gpkg")).set_index("county")
    paper = pd.read_csv(str(data / "paper_tables2_3_by_county.csv")).set_index("county")
    area = gdf.geometry.area / 1e6
    table = pd.DataFrame({
        "supply_t_per_km2": paper["supply_1e6_t"] * 1e6 / area,
        "demand_t_per_km2": paper["demand_t_per_km2"],
    }).reindex(gdf.index)
    table["ratio"] = table["demand_t_per_km2"] / table["supply_t_per_km2"]
    return gdf, table


def test_queen_and_rook_neighbours_on_a_lattice_by_hand() -> None:
    queen = spatial_weights(lattice(), kind="queen")
    assert sorted(queen.neighbors["r1c1"]) == sorted(k for k in lattice().index if k != "r1c1")  # the centre touches all 8
    assert sorted(queen.neighbors["r0c0"]) == ["r0c1", "r1c0", "r1c1"]  # a corner: 2 edges and 1 corner
    assert queen.transform == "R" and queen.weights["r0c0"] == [1 / 3] * 3
    rook = spatial_weights(lattice(), kind="rook")
    assert sorted(rook.neighbors["r0c0"]) == ["r0c1", "r1c0"]
    knn = spatial_weights(lattice(), kind="knn:2")
    assert all(len(v) == 2 for v in knn.neighbors.values())


def test_moran_by_hand_on_a_lattice() -> None:
    # Values rising left to right (0, 1, 2 in each row): strong positive autocorrelation.
    units = lattice()
    values = np.tile([0.0, 1.0, 2.0], 3)
    table = pd.DataFrame({"x": values}, index=units.index)
    result = spatial_statistics(units, table, variables=["x"], bivariate=None, settings=SpatialSettings(permutations=99, seed=1, alpha=0.05))
    # I = (n / S0) · zᵀWz / zᵀz with row-standardised W (S0 = n): zᵀWz / zᵀz.
    w = spatial_weights(units).full()[0]
    z = values - values.mean()
    expected = z @ w @ z / (z @ z)
    row = result.moran.iloc[0]
    assert row["I"] == pytest.approx(expected)
    assert row["EI"] == pytest.approx(-1 / 8)
    assert row["I"] > 0.3


def test_values_equal_esda_run_directly_on_the_demo_counties() -> None:
    gdf, table = demo_units()
    settings = SpatialSettings(permutations=199, seed=7, alpha=0.05)
    result = spatial_statistics(gdf, table, settings=settings)
    w = Queen.from_dataframe(gdf, use_index=True)
    w.transform = "R"
    moran = result.moran.set_index("variable")
    for name in ("supply_t_per_km2", "demand_t_per_km2", "ratio"):
        y = table[name].to_numpy()
        np.random.seed(7)
        direct = Moran(y, w, permutations=199)
        assert moran.loc[name, "I"] == pytest.approx(direct.I, rel=1e-12)
        assert moran.loc[name, "EI"] == pytest.approx(direct.EI)
        assert moran.loc[name, "z"] == pytest.approx(direct.z_sim, rel=1e-12)
        assert moran.loc[name, "p_sim"] == pytest.approx(direct.p_sim)
        local = Moran_Local(y, w, permutations=199, seed=7, n_jobs=1)
        ours = result.lisa[result.lisa["variable"] == name].set_index("county").reindex(gdf.index)
        np.testing.assert_allclose(ours["local_i"], local.Is, rtol=1e-12)
        np.testing.assert_allclose(ours["p_sim"], local.p_sim)
        labels = pd.Series(local.get_cluster_labels(crit_value=0.05)).map(
            {"High-High": "HH", "Low-Low": "LL", "High-Low": "HL", "Low-High": "LH", "Insignificant": NOT_SIGNIFICANT}
        )
        assert list(ours["cluster"]) == list(labels)
        binary = Queen.from_dataframe(gdf, use_index=True)
        binary.transform = "B"
        gi = G_Local(y, fill_diagonal(binary, 1), transform="R", star=True, permutations=199, seed=7, n_jobs=1)
        hot = result.hotspots[result.hotspots["variable"] == name].set_index("county").reindex(gdf.index)
        np.testing.assert_allclose(hot["gi_star_z"], gi.Zs, rtol=1e-12)
        np.testing.assert_allclose(hot["p_sim"], gi.p_sim)
        assert ((hot["spot"] == "hot spot") == ((gi.p_sim < 0.05) & (gi.Zs > 0))).all()
    np.random.seed(7)
    bv = Moran_BV(table["supply_t_per_km2"].to_numpy(), table["demand_t_per_km2"].to_numpy(), w, permutations=199)
    assert moran.loc["supply_t_per_km2 ~ demand_t_per_km2", "I"] == pytest.approx(bv.I, rel=1e-12)
    assert moran.loc["supply_t_per_km2 ~ demand_t_per_km2", "p_sim"] == pytest.approx(bv.p_sim)
    # Central Yunnan's urban cores cluster: demand density is positively autocorrelated.
    assert moran.loc["demand_t_per_km2", "I"] > 0


def test_same_seed_same_tables_and_the_global_generator_left_alone() -> None:
    gdf, table = demo_units()
    np.random.seed(3)
    before = np.random.random()
    np.random.seed(3)
    first = spatial_statistics(gdf, table, settings=SpatialSettings(permutations=99, seed=5))
    after = np.random.random()
    second = spatial_statistics(gdf, table, settings=SpatialSettings(permutations=99, seed=5))
    pd.testing.assert_frame_equal(first.moran, second.moran)
    pd.testing.assert_frame_equal(first.lisa, second.lisa)
    pd.testing.assert_frame_equal(first.hotspots, second.hotspots)
    assert before == after
    other = spatial_statistics(gdf, table, settings=SpatialSettings(permutations=99, seed=6))
    assert not np.array_equal(first.lisa["p_sim"], other.lisa["p_sim"])


def test_units_without_a_finite_value_are_left_out_of_that_variable(caplog: pytest.LogCaptureFixture) -> None:
    gdf, table = demo_units()
    table.loc[table.index[0], "ratio"] = np.inf  # a county without supply
    result = spatial_statistics(gdf, table, settings=SpatialSettings(permutations=99))
    ratio_rows = result.lisa[result.lisa["variable"] == "ratio"]
    assert len(ratio_rows) == len(gdf) - 1 and table.index[0] not in set(ratio_rows["county"])
    assert "leave out 1 unit" in caplog.text


def test_write_gives_the_three_tables(tmp_path: object) -> None:
    gdf, table = demo_units()
    result = spatial_statistics(gdf, table, settings=SpatialSettings(permutations=99))
    paths = result.write(tmp_path)  # type: ignore[arg-type]
    moran = pd.read_csv(paths["moran"])
    assert list(moran.columns) == ["variable", "I", "EI", "z", "p_sim"]
    assert len(moran) == 4
    lisa = pd.read_csv(paths["lisa"])
    assert list(lisa.columns) == ["county", "variable", "local_i", "p_sim", "cluster"]
    assert set(lisa["cluster"]) <= {"HH", "LL", "HL", "LH", NOT_SIGNIFICANT}
    assert len(lisa) == 3 * len(gdf)


def test_too_few_units_is_a_clear_error() -> None:
    units = lattice(1, 4)
    with pytest.raises(InputError, match="at least 5 units, this study has 4"):
        spatial_statistics(units, pd.DataFrame({"x": [1.0, 2, 3, 4]}, index=units.index), variables=["x"], bivariate=None)


def test_units_with_no_neighbour_at_all_are_a_clear_error() -> None:
    apart = gpd.GeoDataFrame(geometry=[shapely.box(3 * i, 0, 3 * i + 1, 1) for i in range(6)], index=pd.Index(list("abcdef")))
    with pytest.raises(InputError, match="no unit has a neighbour.*knn"):
        spatial_statistics(apart, pd.DataFrame({"x": np.arange(6.0)}, index=apart.index), variables=["x"], bivariate=None)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"weights": "distance"}, "weights 'distance'"),
        ({"permutations": 10}, "permutations"),
        ({"alpha": 1.5}, "alpha"),
        ({"permutations": 99, "alpha": 0.001}, "at least 1000 permutations"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict, words: str) -> None:
    with pytest.raises(InputError, match=words):
        SpatialSettings(**kwargs)


def test_hotspot_p_values_are_written_as_float64_counts_like_lisa(tmp_path: object) -> None:
    gdf, table = demo_units()
    result = spatial_statistics(gdf, table, settings=SpatialSettings(permutations=999))
    assert result.hotspots["p_sim"].dtype == np.float64
    hot = pd.read_csv(result.write(tmp_path)["hotspots"])  # type: ignore[arg-type]
    # Each p is (larger + 1) / 1000: written as 0.112, not float32's 0.1120000035.
    assert np.array_equal(hot["p_sim"].to_numpy(), np.round(hot["p_sim"].to_numpy() * 1000) / 1000)
    assert hot["p_sim"].map(lambda p: len(repr(float(p)))).max() <= len("0.123")
