import numpy as np
import pandas as pd
import pytest
from carbonscape import InputError
from carbonscape.zoning import (
    PAPER_RATIO_BREAKS,
    PAPER_SCHEME,
    Zone,
    ZoneScheme,
    get_scheme,
    zone_ratios,
)


def test_paper_breaks_and_scheme_assign_the_papers_zones():
    ratio = pd.Series({"五华区": 0.555, "官渡区": 0.30, "a": 0.1, "b": 0.05, "c": 0.03, "d": 0.02, "e": 0.006}, name="ratio")
    frame, info = zone_ratios(ratio, method="manual", k=7, breaks=PAPER_RATIO_BREAKS, scheme="paper")
    assert frame["class"].tolist() == [7, 6, 5, 4, 3, 2, 1]
    assert frame["zone"].tolist() == ["固碳优化区"] * 3 + ["碳汇发展区", "协调发展区", "低碳保持区", "低碳保持区"]
    assert frame.loc["b", "zone_en"] == "carbon sink development zone"
    assert info["edges"] == list(PAPER_RATIO_BREAKS) and 0 < info["gvf"] <= 1


def test_values_just_outside_the_manual_edges_go_to_the_outer_classes():
    ratio = pd.Series([0.001, 0.9])
    frame, _ = zone_ratios(ratio, method="manual", k=7, breaks=PAPER_RATIO_BREAKS)
    assert frame["class"].tolist() == [1, 7]


def test_jenks_zoning_and_infinite_ratio_in_the_top_class():
    ratio = pd.Series({"a": 0.01, "b": 0.011, "c": 0.5, "d": 0.52, "e": np.inf, "f": np.nan})
    frame, info = zone_ratios(ratio, method="jenks", k=2, scheme="classes")
    assert frame["class"].tolist() == [1, 1, 2, 2, 2, 0]
    assert frame.loc["f", "zone"] == "" and info["edges"] == [0.01, 0.011, 0.52]


def test_weighted_jenks_uses_the_weights():
    ratio = pd.Series([0.0, 4.0, 5.0, 10.0])
    unweighted, _ = zone_ratios(ratio, method="jenks", k=2, scheme="classes")
    weighted, _ = zone_ratios(ratio, method="jenks", k=2, scheme="classes", weights=[10, 1, 1, 1])
    assert unweighted["class"].tolist() == [1, 1, 1, 2] and weighted["class"].tolist() == [1, 2, 2, 2]


def test_scheme_validation_and_custom_schemes():
    with pytest.raises(InputError, match="missing \\[3\\]"):
        ZoneScheme("bad", 3, (Zone("a", "a", "a", (1,)), Zone("b", "b", "b", (2,))))
    custom = get_scheme({"name": "two", "zones": [{"key": "low", "classes": [1, 2]}, {"key": "high", "name_zh": "高", "classes": [3]}]}, k=3)
    assert custom.zone_of(3).name_zh == "高"
    with pytest.raises(InputError, match="made for 7 classes"):
        get_scheme("paper", k=5)
    assert PAPER_SCHEME.zone_of(4).key == "sink_development"


def test_manual_needs_k_plus_one_edges():
    with pytest.raises(InputError, match="k \\+ 1 = 8"):
        zone_ratios(pd.Series([0.1]), method="manual", k=7, breaks=[0, 1])
