"""How land-use codes map to table columns (:class:`ClassIndex`), and the per-pixel lookup."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import dask.array as da
import numpy as np
from carbonscape.errors import InputError
from carbonscape.kernels.crosstab import lookup_values

# A code no integer raster can hold, used when there is no nodata value.
_NO_NODATA = np.iinfo(np.int64).min
# Land-use codes are small integers in practice; a larger span means a mistaken raster.
_MAX_LUT = 1 << 24


@dataclass(frozen=True)
class ClassIndex:
    """How land-use codes map to table columns: classes first, then nodata, then unknown codes."""

    codes: tuple[int, ...]
    nodata: int | None
    lut: np.ndarray
    offset: int

    @classmethod
    def build(cls, codes: Sequence[int], *, nodata: int | float | None) -> ClassIndex:
        codes = tuple(int(c) for c in codes)
        if len(set(codes)) != len(codes):
            raise InputError(f"duplicate land-use codes {codes}")
        lo, hi = min(codes), max(codes)
        if hi - lo + 1 > _MAX_LUT:
            raise InputError(f"land-use codes span {lo}..{hi}; carbonscape expects codes within {_MAX_LUT:,} of each other")
        unknown_col = len(codes) + 1
        lut = np.full(hi - lo + 1, unknown_col, dtype=np.int32)
        for column, code in enumerate(codes):
            lut[code - lo] = column
        nd = None if nodata is None or (isinstance(nodata, float) and not np.isfinite(nodata)) else int(nodata)
        if nd is not None and nd in codes:
            raise InputError(
                f"the raster's nodata value {nd} is also a land-use code in the pools table; remove that row "
                "from the table, or give the raster another nodata value (`gdal_edit.py -a_nodata`) and ingest it again"
            )
        return cls(codes=codes, nodata=nd, lut=lut, offset=lo)

    @property
    def n_classes(self) -> int:
        return len(self.codes)

    @property
    def nodata_col(self) -> int:
        return len(self.codes)

    @property
    def unknown_col(self) -> int:
        return len(self.codes) + 1

    @property
    def n_cols(self) -> int:
        return len(self.codes) + 2

    @property
    def nodata_code(self) -> int:
        return _NO_NODATA if self.nodata is None else self.nodata

    def columns(self, codes: np.ndarray) -> np.ndarray:
        """The column of every code (plain numpy; the reference engines' mapping), int64."""
        codes64 = np.asarray(codes).astype(np.int64)
        position = codes64 - self.offset
        inside = (position >= 0) & (position < self.lut.size)
        columns = np.full(codes64.shape, self.unknown_col, dtype=np.int64)
        columns[inside] = self.lut[position[inside]]
        columns[codes64 == self.nodata_code] = self.nodata_col
        return columns

    def dense_lut(self, dtype: np.dtype) -> tuple[np.ndarray, int]:
        """A table over every value of an 8/16-bit ``dtype``: class, nodata or unknown column."""
        info = np.iinfo(dtype)
        lut = np.full(int(info.max) - int(info.min) + 1, self.unknown_col, dtype=np.int32)
        for column, code in enumerate(self.codes):
            if info.min <= code <= info.max:
                lut[code - info.min] = column
        if self.nodata is not None and info.min <= self.nodata <= info.max:
            lut[self.nodata - info.min] = self.nodata_col
        return lut, int(info.min)


def lookup(codes: da.Array, *, index: ClassIndex, values: np.ndarray, fill: float = np.nan) -> da.Array:
    """Lazy float32 raster of ``values[class]`` per pixel; nodata and unknown codes get ``fill``."""
    values = np.asarray(values, dtype=np.float64)
    return codes.map_blocks(_lookup_block, index=index, values=values, fill=fill, dtype=np.float32)


def _lookup_block(block: np.ndarray, *, index: ClassIndex, values: np.ndarray, fill: float) -> np.ndarray:
    # nodata is never a class code, so the table already sends it to ``fill``.
    return lookup_values(block, index.lut, index.offset, values, np.float32(fill))
