"""Supply–demand matching indices, checked against arithmetic done by hand in the comments."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from carbonscape.errors import InputError
from carbonscape.matching import (
    coupling_coordination,
    esdr,
    matching_indices,
    minmax,
    quadrants,
    zscores,
)
from hypothesis import given
from hypothesis import strategies as st

# Three units: S = 4, 2, 0 and D = 1, 3, 2 (t/km²).
S = np.array([4.0, 2.0, 0.0])
D = np.array([1.0, 3.0, 2.0])


def ratio_table() -> pd.DataFrame:
    return pd.DataFrame({"supply_t_per_km2": S, "demand_t_per_km2": D}, index=pd.Index(["a", "b", "c"], name="county"))


def test_esdr_by_hand() -> None:
    # S_max + D_max = 4 + 3 = 7, halved 3.5: (4-1)/3.5, (2-3)/3.5, (0-2)/3.5.
    np.testing.assert_allclose(esdr(S, D), [3 / 3.5, -1 / 3.5, -2 / 3.5])


def test_zscores_use_the_population_sd() -> None:
    # S: mean 2, sd √((4 + 0 + 4) / 3) = √(8/3) → z = ±2/√(8/3) = ±1.2247.
    np.testing.assert_allclose(zscores(S), [2 / math.sqrt(8 / 3), 0.0, -2 / math.sqrt(8 / 3)])


def test_quadrants_from_the_signs_of_the_zscores() -> None:
    # z_S = +1.22, 0, −1.22; z_D = −1.22, +1.22, 0. A z of 0 (at the mean) is low.
    assert list(quadrants(S, D)) == ["HS-LD", "LS-HD", "LS-LD"]
    assert list(quadrants(np.array([5.0, 1.0]), np.array([9.0, 1.0]))) == ["HS-HD", "LS-LD"]


def test_coupling_coordination_by_hand() -> None:
    # U1 = (S − 0)/4 = 1, 0.5, 0; U2 = (D − 1)/2 = 0, 1, 0.5.
    np.testing.assert_allclose(minmax(S), [1.0, 0.5, 0.0])
    np.testing.assert_allclose(minmax(D), [0.0, 1.0, 0.5])
    coupling, ccd = coupling_coordination(S, D)
    # Unit b: C = 2√(0.5·1)/1.5 = 0.942809; T = 0.75; D = √(0.942809·0.75) = 0.840896.
    # Units a and c have one side at zero: C = 0, so D = 0.
    np.testing.assert_allclose(coupling, [0.0, 2 * math.sqrt(0.5) / 1.5, 0.0])
    np.testing.assert_allclose(ccd, [0.0, math.sqrt(2 * math.sqrt(0.5) / 1.5 * 0.75), 0.0])
    # Weights 0.8/0.2: T = 0.8·0.5 + 0.2·1 = 0.6, D = √(0.942809·0.6) = 0.752121.
    _, weighted = coupling_coordination(S, D, alpha=0.8, beta=0.2)
    assert weighted[1] == pytest.approx(0.752121, abs=1e-6)


def test_equal_normalised_sides_couple_fully() -> None:
    coupling, ccd = coupling_coordination(np.array([0.0, 1.0, 2.0]), np.array([10.0, 20.0, 30.0]))
    # U1 = U2 = 0, 0.5, 1: C = 0 where both are 0 (by definition), else 2U/2U = 1; D = √T = √U.
    np.testing.assert_allclose(coupling, [0.0, 1.0, 1.0])
    np.testing.assert_allclose(ccd, [0.0, math.sqrt(0.5), 1.0])


def test_matching_indices_table() -> None:
    frame = matching_indices(ratio_table())
    assert list(frame.columns) == ["balance", "esdr", "z_supply", "z_demand", "quadrant", "coupling", "ccd"]
    assert list(frame.index) == ["a", "b", "c"]
    np.testing.assert_allclose(frame["balance"], [3.0, -1.0, -2.0])
    assert list(frame["quadrant"]) == ["HS-LD", "LS-HD", "LS-LD"]


def test_missing_values_stay_missing_and_do_not_shift_the_others() -> None:
    table = ratio_table()
    table.loc["d"] = [np.nan, 5.0]
    frame = matching_indices(table)
    assert frame.loc["d", "quadrant"] == ""
    assert np.isnan(frame.loc["d", "esdr"]) and np.isnan(frame.loc["d", "ccd"])
    # D_max is now 5: (S_max + D_max)/2 = 4.5 for the others.
    assert frame.loc["a", "esdr"] == pytest.approx(3 / 4.5)


def test_one_distinct_value_gives_no_coordination(caplog: pytest.LogCaptureFixture) -> None:
    frame = matching_indices(pd.DataFrame({"supply_t_per_km2": [3.0, 3.0], "demand_t_per_km2": [1.0, 2.0]}))
    assert frame["ccd"].isna().all()
    assert "same supply density" in caplog.text
    assert list(frame["quadrant"]) == ["LS-LD", "LS-HD"]


@pytest.mark.parametrize(("alpha", "beta", "words"), [(0.7, 0.7, "sum to 1"), (-0.5, 1.5, "alpha"), (0.5, float("nan"), "beta")])
def test_bad_weights_are_refused(alpha: float, beta: float, words: str) -> None:
    with pytest.raises(InputError, match=words):
        matching_indices(ratio_table(), alpha=alpha, beta=beta)


def test_a_table_without_densities_is_refused() -> None:
    with pytest.raises(InputError, match="supply_t_per_km2"):
        matching_indices(pd.DataFrame({"ratio": [1.0]}))


densities = st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=2, max_size=30)


@given(densities, st.data())
def test_properties_against_pandas(supply: list[float], data: st.DataObject) -> None:
    demand = data.draw(st.lists(st.floats(min_value=0, max_value=1e6), min_size=len(supply), max_size=len(supply)))
    s, d = pd.Series(supply), pd.Series(demand)
    frame = matching_indices(pd.DataFrame({"supply_t_per_km2": s, "demand_t_per_km2": d}))
    esdr_values = frame["esdr"].dropna()
    assert ((esdr_values >= -2 - 1e-12) & (esdr_values <= 2 + 1e-12)).all()
    assert (np.sign(frame["balance"]) == np.sign(s - d)).all()
    ccd = frame["ccd"].dropna()
    assert ((ccd >= 0) & (ccd <= 1 + 1e-12)).all()
    # Quadrants agree with pandas' own mean: above it is high.
    if s.std(ddof=0) > 0 and d.std(ddof=0) > 0:
        expected = np.where(s - s.mean() > 0, "HS", "LS").astype(object) + "-" + np.where(d - d.mean() > 0, "HD", "LD").astype(object)
        differs = frame["quadrant"].to_numpy() != expected
        # Only values within rounding of the mean may be judged differently.
        near = (np.abs(s - s.mean()) < 1e-9 * max(1.0, abs(s.mean()))) | (np.abs(d - d.mean()) < 1e-9 * max(1.0, abs(d.mean())))
        assert not (differs & ~near).any()
