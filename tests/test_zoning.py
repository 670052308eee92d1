import logging

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


# The paper's Table 4 as printed: class → closed range of the ratio.
TABLE_4 = {
    1: (0.005517, 0.013832), 2: (0.013833, 0.025549), 3: (0.025550, 0.040932), 4: (0.040933, 0.076898),
    5: (0.076899, 0.136217), 6: (0.136218, 0.356339), 7: (0.356340, 0.637277),
}


@pytest.mark.parametrize("bound", [0, 1], ids=["lower", "upper"])
def test_every_bound_of_table_4_lands_in_its_class(bound):
    ratio = pd.Series({klass: bounds[bound] for klass, bounds in TABLE_4.items()})
    frame, info = zone_ratios(ratio, method="manual", k=7, breaks=PAPER_RATIO_BREAKS, scheme="paper")
    assert frame["class"].tolist() == list(TABLE_4)
    assert info["clipped"] == {}


def test_values_outside_the_manual_edges_go_to_the_outer_classes_with_a_warning(caplog):
    ratio = pd.Series({"低": 0.001, "中": 0.05, "高": 0.9})
    with caplog.at_level(logging.WARNING, logger="carbonscape.zoning"):
        frame, info = zone_ratios(ratio, method="manual", k=7, breaks=PAPER_RATIO_BREAKS)
    assert frame["class"].tolist() == [1, 4, 7]
    assert info["clipped"] == {"低": 0.001, "高": 0.9}
    assert "2 ratio(s) outside" in caplog.text and "低: 0.001" in caplog.text and "高: 0.9" in caplog.text


def test_quantile_zoning_refuses_tied_values_clearly():
    ratio = pd.Series([0.0] * 10 + [1, 2, 3, 4, 5])
    with pytest.raises(InputError, match=r"tie at 0 .*use at most k = 2 classes or method=\"jenks\""):
        zone_ratios(ratio, method="quantile", k=4, scheme="classes")


def test_scheme_errors_say_what_to_do():
    with pytest.raises(InputError, match="unknown zone scheme 'papr'.*\"four_zones\" \\(7 classes into 4 functional zones\\)"):
        get_scheme("papr", k=7)
    with pytest.raises(InputError, match="made for 7 classes, not k = 5; set k = 7, or scheme = \"classes\""):
        get_scheme("paper", k=5)


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
