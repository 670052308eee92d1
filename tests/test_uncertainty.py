"""Monte Carlo of the densities: against the analytic normal interval, by hand, and its bad inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from carbonscape.errors import PoolTableError
from carbonscape.uncertainty import (
    analytic_normal_interval,
    draw_densities,
    factors_from_pairs,
    read_spreads,
    supply_uncertainty,
)
from carbonscape.zoning import PAPER_SCHEME


def pools_csv(tmp_path: Path, extra: dict[str, list[float]], name: str = "pools.csv") -> Path:
    table = pd.DataFrame({
        "lucode": [1, 2, 3], "LULC_name": ["forest", "crop", "water"],
        "c_above": [100.0, 20.0, 0.0], "c_below": [30.0, 5.0, 0.0], "c_soil": [80.0, 60.0, 0.0], "c_dead": [10.0, 0.0, 0.0],
        **extra,
    })
    path = tmp_path / name
    table.to_csv(path, index=False)
    return path


SD = {"c_above_sd": [10.0, 4.0, 0.0], "c_below_sd": [3.0, 1.0, 0.0], "c_soil_sd": [8.0, 6.0, 0.0], "c_dead_sd": [2.0, 0.0, 0.0]}
AREAS = pd.DataFrame([[1000.0, 200.0, 50.0], [10.0, 3000.0, 0.0], [0.0, 0.0, 400.0]],
                     index=pd.Index(["a", "b", "c"], name="county"), columns=[1, 2, 3])


def test_normal_draws_match_the_analytic_interval(tmp_path: Path) -> None:
    spreads = read_spreads(pools_csv(tmp_path, SD))
    assert spreads is not None and spreads.kind == "sd"
    result = supply_uncertainty(AREAS, spreads, draws=40_000, seed=1)
    mean, p05, p95 = analytic_normal_interval(AREAS.to_numpy(), spreads.density, spreads.sd)
    # Unit a by hand: μ = 1000·220 + 200·85 = 237,000 t; σ² = 1000²·(100+9+64+4) + 200²·(16+1+36) = 1.772e8 + 2.12e6.
    assert mean[0] == pytest.approx(237_000.0)
    sigma = np.sqrt(1000**2 * 177 + 200**2 * 53)
    assert p95[0] - mean[0] == pytest.approx(1.6448536 * sigma)
    frame = result.by_unit
    # Sampling error of a 5 % quantile at 40,000 draws is ~0.011 σ; of the mean ~0.005 σ.
    sigmas = (p95 - mean) / 1.6448536
    for name, expected in (("supply_t_mean", mean), ("supply_t_p05", p05), ("supply_t_p95", p95)):
        got = frame[name].to_numpy()
        assert np.all(np.abs(got[:2] - expected[:2]) < 0.05 * sigmas[:2]), name
    # Unit c holds only water, certain at 0 t/ha: no spread at all.
    assert frame.loc["c", "supply_t_p05"] == frame.loc["c", "supply_t_p95"] == 0.0
    assert frame.loc["a", "supply_t_sd"] == pytest.approx(sigma, rel=0.02)


def test_zero_spreads_give_the_point_estimate_and_a_certain_zone(tmp_path: Path) -> None:
    spreads = read_spreads(pools_csv(tmp_path, {k: [0.0, 0.0, 0.0] for k in SD}))
    assert spreads is not None
    area_km2 = AREAS.sum(axis=1) / 100.0
    supply = AREAS.to_numpy() @ np.array([220.0, 85.0, 0.0])  # t C: a 237,000, b 257,200, c 0
    demand = pd.Series([5000.0, 800.0, 10.0], index=AREAS.index)
    edges = [0.0, 0.005, 0.01, 0.02, 0.04, 0.08, 0.2, 1.0]
    result = supply_uncertainty(AREAS, spreads, area_km2=area_km2, demand_t_per_km2=demand, edges=edges,
                                zones=[(z.key, z.classes) for z in PAPER_SCHEME.zones], draws=50, seed=3)
    frame = result.by_unit
    np.testing.assert_allclose(frame["supply_t_p05"], supply)
    np.testing.assert_allclose(frame["supply_t_p95"], supply)
    # Unit a: density 237,000 / 12.5 km² = 18,960 t/km²; ratio 5000 / 18,960 = 0.2637 → class 7 (0.2, 1] → optimization.
    assert frame.loc["a", "ratio_p05"] == pytest.approx(5000 / (237_000 / 12.5))
    assert frame.loc["a", "p_zone_optimization"] == 1.0
    # Unit b: 800 / (257,200 / 32.1) = 0.09984 → class 6 → optimization too; unit c: no supply → ∞ → class 7.
    assert frame.loc["b", "p_zone_optimization"] == 1.0
    assert np.isinf(frame.loc["c", "ratio_p95"]) and frame.loc["c", "p_zone_optimization"] == 1.0
    assert list(frame.columns)[-4:] == ["p_zone_optimization", "p_zone_sink_development", "p_zone_coordinated", "p_zone_low_carbon"]
    assert np.allclose(frame.filter(like="p_zone_").sum(axis=1), 1.0)


def test_a_unit_near_a_class_edge_is_unstable(tmp_path: Path) -> None:
    spreads = read_spreads(pools_csv(tmp_path, SD))
    assert spreads is not None
    areas = AREAS.iloc[:1]
    point = 237_000 / 12.0  # t/km² with 12 km²
    edge = 0.04
    demand = pd.Series([edge * point], index=areas.index)  # the point ratio sits on the class 4/5 edge
    edges = [0.0, 0.005, 0.01, 0.02, edge, 0.08, 0.2, 1.0]
    result = supply_uncertainty(areas, spreads, area_km2=pd.Series([12.0], index=areas.index), demand_t_per_km2=demand,
                                edges=edges, zones=[(z.key, z.classes) for z in PAPER_SCHEME.zones], draws=4000, seed=9)
    row = result.by_unit.iloc[0]
    # Half the draws above the edge (class 5: optimization), half below (class 4: sink development).
    assert row["p_zone_optimization"] == pytest.approx(0.5, abs=0.05)
    assert row["p_zone_sink_development"] == pytest.approx(0.5, abs=0.05)
    assert row["ratio_p05"] < edge < row["ratio_p95"]


def test_same_seed_same_file(tmp_path: Path) -> None:
    spreads = read_spreads(pools_csv(tmp_path, SD))
    assert spreads is not None
    first = supply_uncertainty(AREAS, spreads, draws=500, seed=11).write(tmp_path / "one")
    second = supply_uncertainty(AREAS, spreads, draws=500, seed=11).write(tmp_path / "two")
    assert first.read_bytes() == second.read_bytes()
    third = supply_uncertainty(AREAS, spreads, draws=500, seed=12).write(tmp_path / "three")
    assert first.read_bytes() != third.read_bytes()
    assert first.name == "uncertainty_by_county.csv"
    assert pd.read_csv(first).columns[0] == "county"


def test_triangular_ranges_have_the_triangular_mean(tmp_path: Path) -> None:
    ranges = {}
    for pool in ("above", "below", "soil", "dead"):
        ranges[f"c_{pool}_min"] = [0.0, 0.0, 0.0]
    ranges.update({"c_above_max": [400.0, 20.0, 0.0], "c_below_max": [30.0, 5.0, 0.0], "c_soil_max": [80.0, 60.0, 0.0], "c_dead_max": [10.0, 0.0, 0.0]})
    spreads = read_spreads(pools_csv(tmp_path, ranges))
    assert spreads is not None and spreads.kind == "range"
    draws = draw_densities(spreads, draws=60_000, seed=2)
    # Forest: above triangular(0, 100, 400) has mean 500/3; below, soil, dead have mode = max: means 20, 160/3, 20/3.
    assert draws[:, 0].mean() == pytest.approx(500 / 3 + 20 + 160 / 3 + 20 / 3, rel=0.01)
    assert draws.min() >= 0 and draws[:, 0].max() <= 520
    assert np.all(draws[:, 2] == 0.0)


def test_a_table_without_spreads_has_none(tmp_path: Path) -> None:
    assert read_spreads(pools_csv(tmp_path, {})) is None


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({**SD, "c_above_sd": [-1.0, 4.0, 0.0]}, "lucode 1: c_above_sd = -1 is negative"),
        ({k: v for k, v in SD.items() if k != "c_dead_sd"}, r"some pools only; missing column\(s\) \['c_dead_sd'\]"),
        ({**SD, "c_above_min": [0.0, 0.0, 0.0]}, "not both"),
        ({**SD, "c_soil_sd": [8.0, None, 0.0]}, "lucode 2: c_soil_sd = nan is not a number"),
        ({"c_above_min": [0, 0, 0], "c_below_min": [0, 0, 0], "c_soil_min": [0, 0, 0], "c_dead_min": [0, 0, 0],
          "c_above_max": [50, 50, 0], "c_below_max": [50, 50, 0], "c_soil_max": [90, 90, 0], "c_dead_max": [20, 20, 0]},
         r"lucode 1: c_above = 100 lies outside its range"),
    ],
)
def test_bad_spreads_are_clear_errors(tmp_path: Path, extra: dict, words: str) -> None:
    path = pools_csv(tmp_path, extra)
    with pytest.raises(PoolTableError, match=words) as caught:
        read_spreads(path)
    assert str(path) in str(caught.value)


# Corrected densities ([continuous] factors or factor_table): unit a's soil × 1.5 in both classes,
# unit b's above-ground × 0.5 in its crop only; every other pool, class and unit uncorrected.
FACTORS = np.ones((3, 3, 4))
FACTORS[0, :, 2] = 1.5
FACTORS[1, 1, 0] = 0.5


def test_corrected_densities_centre_the_draws_by_hand(tmp_path: Path) -> None:
    """Zero spreads: every draw is the corrected point estimate, computed here by hand."""
    spreads = read_spreads(pools_csv(tmp_path, {k: [0.0, 0.0, 0.0] for k in SD}))
    assert spreads is not None
    frame = supply_uncertainty(AREAS, spreads, draws=30, seed=2, factors=FACTORS).by_unit
    # a: 1000 ha × (100 + 30 + 80·1.5 + 10) + 200 ha × (20 + 5 + 60·1.5 + 0) = 260,000 + 23,000 = 283,000 t.
    # b: 10 ha × 220 + 3000 ha × (20·0.5 + 5 + 60) = 2,200 + 225,000 = 227,200 t; c: water, 0.
    expected = [283_000.0, 227_200.0, 0.0]
    for name in ("supply_t_mean", "supply_t_p05", "supply_t_p95"):
        np.testing.assert_allclose(frame[name].to_numpy(), expected, err_msg=name)
    assert supply_uncertainty(AREAS, spreads, draws=30, seed=2).by_unit.loc["a", "supply_t_mean"] == pytest.approx(237_000.0)


def test_corrected_draws_match_the_analytic_interval(tmp_path: Path) -> None:
    spreads = read_spreads(pools_csv(tmp_path, SD))
    assert spreads is not None
    mean, p05, p95 = analytic_normal_interval(AREAS.to_numpy(), spreads.density, spreads.sd, factors=FACTORS)
    # Unit a by hand: each pool's sd scaled by its factor, σ² = 1000²·(10² + 3² + (8·1.5)² + 2²) + 200²·(4² + 1² + (6·1.5)²).
    sigma = np.sqrt(1000**2 * (100 + 9 + 144 + 4) + 200**2 * (16 + 1 + 81))
    assert mean[0] == pytest.approx(283_000.0) and p95[0] - mean[0] == pytest.approx(1.6448536 * sigma)
    frame = supply_uncertainty(AREAS, spreads, draws=40_000, seed=1, factors=FACTORS).by_unit
    sigmas = (p95 - mean) / 1.6448536
    for name, expected in (("supply_t_mean", mean), ("supply_t_p05", p05), ("supply_t_p95", p95)):
        assert np.all(np.abs(frame[name].to_numpy()[:2] - expected[:2]) < 0.05 * sigmas[:2]), name
    assert frame.loc["a", "supply_t_sd"] == pytest.approx(sigma, rel=0.02)


def test_factors_from_a_corrected_county_class_table() -> None:
    pairs = pd.DataFrame({"county": ["a", "a", "a", "b"], "lucode": [1, 2, 3, 2], "factor_c_above": [1.0, 1.0, 1.0, 0.5],
                          "factor_c_below": [1.0] * 4, "factor_c_soil": [1.5, 1.5, 1.5, 1.0], "factor_c_dead": [1.0] * 4})
    got = factors_from_pairs(pairs, AREAS)
    assert got.shape == (3, 3, 4)
    # Pairs absent from the table (b's class 1, class 3, unit c) keep factor 1.
    np.testing.assert_array_equal(got, FACTORS)
    assert factors_from_pairs(pairs.drop(columns="factor_c_dead"), AREAS) is None
