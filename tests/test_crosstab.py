import dask.array as da
import numpy as np
import pandas as pd
import pytest
from carbonscape.accumulate import ClassIndex, crosstab, crosstab_numpy, lookup
from carbonscape.errors import InputError, ZoneError
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

ZONES = np.array([[1, 1, 2], [1, 1, 2], [0, 0, 2]], dtype=np.uint8)
CODES = np.array([[1, 2, 2], [1, 9, 3], [3, 3, 7]], dtype=np.uint8)


def test_hand_computed_3x3():
    index = ClassIndex.build([1, 2, 3], nodata=9)
    # columns: class 1, class 2, class 3, nodata, unknown
    expected = np.array([
        [0, 0, 2, 0, 0],  # zone 0: two 3s
        [2, 1, 0, 1, 0],  # zone 1: 1,2,1,nodata
        [0, 1, 1, 0, 1],  # zone 2: 2,3 and the unknown code 7
    ])
    np.testing.assert_array_equal(crosstab_numpy(ZONES, CODES, index=index, n_zones=3), expected)
    lazy = crosstab(da.from_array(ZONES, chunks=2), da.from_array(CODES, chunks=2), index=index, n_zones=3)
    np.testing.assert_array_equal(lazy.compute(scheduler="synchronous"), expected)


def test_codes_outside_the_table_range_are_unknown_and_nodata_far_away_is_fine():
    index = ClassIndex.build([10, 20], nodata=-32768)
    codes = np.array([[10, 20, 5, 1000, -32768]], dtype=np.int16)
    zones = np.ones_like(codes, dtype=np.uint8)
    counts = crosstab(da.from_array(zones), da.from_array(codes), index=index, n_zones=2).compute(scheduler="synchronous")
    np.testing.assert_array_equal(counts[1], [1, 1, 1, 2])


def test_class_column_sends_nodata_classes_and_codes_off_the_table_to_their_columns():
    """The lookup every class kernel inlines (carbonscape.kernels.classes), called directly: a fault
    in it shows here even while the kernels' numba cache still holds an older copy of it."""
    from carbonscape.kernels.classes import class_column

    index = ClassIndex.build([10, 12, 11], nodata=255)  # columns: 10, 12, 11, nodata, unknown
    args = (index.lut, index.offset, index.nodata_code, index.nodata_col, index.unknown_col)
    codes = [10, 11, 12, 255, 9, 13, -5]
    assert [class_column(np.int64(c), *args) for c in codes] == [0, 2, 1, 3, 4, 4, 4]
    index = ClassIndex.build([10, 12], nodata=None)  # 11 lies inside the table's span, unknown
    args = (index.lut, index.offset, index.nodata_code, index.nodata_col, index.unknown_col)
    codes = np.array([10, 11, 12, 0, 255], dtype=np.int64)
    assert [class_column(c, *args) for c in codes] == [0, 3, 1, 3, 3] == list(index.columns(codes))


def test_zone_id_out_of_range_raises():
    index = ClassIndex.build([1, 2, 3], nodata=9)
    with pytest.raises(ZoneError, match="unit id .* out of range"):
        crosstab(da.from_array(ZONES), da.from_array(CODES), index=index, n_zones=2).compute(scheduler="synchronous")
    with pytest.raises(InputError, match="zone id"):
        crosstab_numpy(ZONES, CODES, index=index, n_zones=2)


def test_nodata_that_is_also_a_class_is_refused():
    with pytest.raises(InputError, match="nodata value 3"):
        ClassIndex.build([1, 2, 3], nodata=3)


def test_lookup_maps_codes_to_densities_and_nodata_to_nan():
    index = ClassIndex.build([1, 2, 3], nodata=9)
    out = lookup(da.from_array(CODES, chunks=2), index=index, values=np.array([10.0, 20.0, 30.0])).compute(scheduler="synchronous")
    expected = np.array([[10, 20, 20], [10, np.nan, 30], [30, 30, np.nan]], dtype=np.float32)
    np.testing.assert_array_equal(out, expected)


@st.composite
def zone_code_arrays(draw):
    rows = draw(st.integers(1, 40))
    cols = draw(st.integers(1, 40))
    n_zones = draw(st.integers(1, 6))
    zones = draw(hnp.arrays(np.uint16, (rows, cols), elements=st.integers(0, n_zones - 1)))
    # 16-bit codes take the dense-table kernel, 32-bit ones the general one.
    dtype = draw(st.sampled_from([np.int16, np.int32]))
    codes = draw(hnp.arrays(dtype, (rows, cols), elements=st.integers(-3, 12)))
    chunk_rows = draw(st.integers(1, rows))
    chunk_cols = draw(st.integers(1, cols))
    table_codes = draw(st.lists(st.integers(0, 10), min_size=1, max_size=8, unique=True))
    nodata = draw(st.one_of(st.none(), st.integers(-3, 12).filter(lambda v: v not in table_codes)))
    return zones, codes, (chunk_rows, chunk_cols), table_codes, nodata, n_zones


@settings(max_examples=60, deadline=None)
@given(zone_code_arrays())
def test_dask_crosstab_equals_numpy_reference_and_pandas(case):
    zones, codes, chunks, table_codes, nodata, n_zones = case
    index = ClassIndex.build(table_codes, nodata=nodata)
    reference = crosstab_numpy(zones, codes, index=index, n_zones=n_zones)
    lazy = crosstab(da.from_array(zones, chunks=chunks), da.from_array(codes, chunks=chunks), index=index, n_zones=n_zones, split_every=2)
    np.testing.assert_array_equal(lazy.compute(scheduler="synchronous"), reference)
    # An independent oracle for the known classes: pandas' crosstab.
    frame = pd.DataFrame({"zone": zones.ravel(), "code": codes.ravel()})
    frame = frame[frame["code"].isin(table_codes)]
    oracle = pd.crosstab(frame["zone"], frame["code"]).reindex(index=range(n_zones), columns=table_codes, fill_value=0)
    np.testing.assert_array_equal(reference[:, : len(table_codes)], oracle.to_numpy())
    assert reference.sum() == zones.size
