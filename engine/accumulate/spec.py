"""What a per-chunk statistic is: the :class:`Accumulation` record, its :class:`Layout`, and the
:class:`Chunk` every kernel is handed (flox's ``Aggregation``, cut to what a unit × class engine
needs).

A statistic is declared once: the function that turns one chunk of aligned rasters into a small
table (``chunk``), how partial tables combine (a tree sum, or kept per block), what the final table
becomes on the client (``finalize``), and a plain-numpy ``reference`` with the same signature as
``chunk`` that the tests use as the oracle (it is handed the whole raster as one chunk).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
from carbonscape.accumulate.classindex import ClassIndex
from carbonscape.grid import Grid


@runtime_checkable
class AreaSource(Protocol):
    """Per-pixel true areas for any window of the grid, supplied to the kernels that need them.

    ``area_block(rows, cols)`` returns float64 m² as a 2-D array that broadcasts to the window's
    shape: ``(n_rows, 1)`` when areas vary by row only (a geographic grid), ``(1, 1)`` when every
    pixel has the same area, ``(n_rows, n_cols)`` for a true per-pixel field (a projected grid whose
    scale factor varies). ``uniform_area_m2()`` is that one area when all pixels share it, else None
    (callers then need an area pass instead of multiplying pixel counts).
    """

    def area_block(self, rows: slice, cols: slice) -> np.ndarray: ...

    def uniform_area_m2(self) -> float | None: ...


@dataclass(frozen=True)
class RowAreas:
    """Today's pixel areas of a :class:`~carbonscape.grid.Grid`: exact ellipsoidal row areas on a
    geographic grid (:meth:`Grid.row_areas_m2`), the nominal pixel area on a projected one."""

    grid: Grid

    def area_block(self, rows: slice, cols: slice) -> np.ndarray:
        if self.grid.is_geographic:
            return np.ascontiguousarray(self.grid.row_areas_m2(rows.start, rows.stop)[:, None], dtype=np.float64)
        return np.full((1, 1), self.grid.pixel_area_m2, dtype=np.float64)

    def uniform_area_m2(self) -> float | None:
        return None if self.grid.is_geographic else float(self.grid.pixel_area_m2)


def pixel_areas(grid: Grid) -> AreaSource:
    """The area source of ``grid``: the grid itself once it knows its own per-pixel areas (it then
    implements :class:`AreaSource`), else :class:`RowAreas`."""
    return grid if isinstance(grid, AreaSource) else RowAreas(grid)


@dataclass(frozen=True)
class Layout:
    """The sizes every table of one pass is shaped by.

    Parameters
    ----------
    n_counties
        Number of unit ids including 0 (outside every unit).
    classes
        Code → column mapping of the (first) land-use raster; tables have ``classes.n_cols``
        columns (classes, then nodata, then unknown codes).
    classes_to
        The mapping of the second raster of a pair (``landuse_to``), when its nodata differs.
    codes
        ``(lo, n)``: the code range ``lo .. lo+n-1`` a code histogram counts (one more bin for
        every code outside it).
    params
        Anything else a plug-in statistic needs (cell size of grid cells, ...), by name.
    """

    n_counties: int = 1
    classes: ClassIndex | None = None
    classes_to: ClassIndex | None = None
    codes: tuple[int, int] | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def n_cols(self) -> int:
        if self.classes is None:
            raise ValueError("this statistic needs Layout(classes=ClassIndex...)")
        return self.classes.n_cols

    @property
    def to_classes(self) -> ClassIndex:
        """The mapping of ``landuse_to``: ``classes_to`` if given, else ``classes``."""
        index = self.classes_to or self.classes
        if index is None:
            raise ValueError("this statistic needs Layout(classes=ClassIndex...)")
        return index


@dataclass
class Chunk:
    """Where a block lies and what the kernels may ask of it (handed to ``chunk`` and ``reference``).

    ``rows`` and ``cols`` are the block's window on the whole grid; ``location`` its chunk index.
    :meth:`area` gives the per-pixel true areas (m², broadcastable to the block), computed once
    per chunk however many statistics ask.
    """

    layout: Layout
    rows: slice
    cols: slice
    location: tuple[int, int] = (0, 0)
    areas: AreaSource | None = None
    _area: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows.stop - self.rows.start, self.cols.stop - self.cols.start)

    def area(self) -> np.ndarray:
        if self._area is None:
            if self.areas is None:
                raise ValueError("this statistic needs pixel areas: pass grid= (or areas=) to accumulate")
            self._area = np.asarray(self.areas.area_block(self.rows, self.cols), dtype=np.float64)
        return self._area


ChunkFunction = Callable[[Mapping[str, np.ndarray], Chunk], np.ndarray]


def _by_county_and_column(layout: Layout) -> tuple[int, ...]:
    return (layout.n_counties, layout.n_cols)


@dataclass(frozen=True)
class Accumulation:
    """One additive per-chunk statistic: chunk → combine → finalize.

    Parameters
    ----------
    name
        The key of its result in :func:`carbonscape.accumulate.accumulate`'s answer.
    chunk
        ``chunk(blocks, where) -> table``: ``blocks`` maps each raster named in ``reads`` to this
        chunk's block, ``where`` is the :class:`Chunk`; returns an array of ``shape(layout)`` and
        ``dtype``. Typically a thin call of one numba kernel.
    reference
        The plain-numpy engine with the same signature (handed whole rasters as one chunk): the
        oracle of the property tests. Required: a statistic without one is not declared.
    reads
        The aligned rasters it reads: ``"counties"`` (unit ids), ``"landuse"``, ``"landuse_to"``,
        or any other name given to ``accumulate(rasters=...)`` (a weights or fraction raster).
    dtype, shape
        Of one partial table.
    combine
        ``"sum"``: partial tables are summed as a tree (flox's map-reduce). ``"blocks"``: kept one
        per chunk, as an array ``(n_row_chunks, n_col_chunks, *shape)`` (blockwise tables, e.g. grid
        cells, whose finalize stitches them). ``"merge"``: tables of no fixed shape (sparse: one
        record per cell present) merged as a tree by ``merge``.
    finalize
        ``finalize(table, layout) -> Any`` on the client, after compute (:func:`finalize` applies it).
    needs_area
        Whether ``chunk`` calls ``where.area()`` (so the runner needs an :class:`AreaSource`).
    merge
        ``merge(tables) -> table`` of a ``"merge"`` statistic: partial tables into one (associative).
    """

    name: str
    chunk: ChunkFunction
    reference: ChunkFunction
    reads: tuple[str, ...] = ("counties", "landuse")
    dtype: np.dtype = np.dtype(np.int64)
    shape: Callable[[Layout], tuple[int, ...]] = _by_county_and_column
    combine: Literal["sum", "blocks", "merge"] = "sum"
    finalize: Callable[[np.ndarray, Layout], Any] | None = None
    needs_area: bool = False
    merge: Callable[[list[np.ndarray]], np.ndarray] | None = None

    def __dask_tokenize__(self) -> tuple[str, ...]:
        return ("carbonscape.Accumulation", self.name, *self.reads, self.dtype.str, self.combine)


@dataclass(frozen=True)
class _Bound:
    """A statistic's chunk (or reference) reading other rasters, or with its own layout."""

    function: ChunkFunction
    rasters: tuple[tuple[str, str], ...]
    layout: Layout | None

    def __call__(self, blocks: Mapping[str, np.ndarray], where: Chunk) -> np.ndarray:
        renamed = dict(blocks)
        for inner, outer in self.rasters:
            renamed[inner] = blocks[outer]
        if self.layout is not None:
            where = Chunk(layout=self.layout, rows=where.rows, cols=where.cols, location=where.location, areas=where.areas,
                          _area=where._area)
        return self.function(renamed, where)


def bind(spec: Accumulation, name: str, *, rasters: Mapping[str, str] | None = None, layout: Layout | None = None) -> Accumulation:
    """``spec`` under another ``name``, reading ``rasters[r]`` where it reads ``r`` and sized by
    its own ``layout``: how one pass accumulates a statistic several times, e.g. the counts of
    every map of a study (``bind(COUNTS, "counts 2000", rasters={"landuse": "2000"}, layout=...)``)."""
    mapping = dict(rasters or {})
    pairs = tuple(mapping.items())
    shape = spec.shape if layout is None else (lambda _ignored, _shape=spec.shape, _layout=layout: _shape(_layout))
    finalize = spec.finalize
    if finalize is not None and layout is not None:
        finalize = (lambda table, _ignored, _f=spec.finalize, _layout=layout: _f(table, _layout))
    return replace(
        spec,
        name=name,
        chunk=_Bound(spec.chunk, pairs, layout),
        reference=_Bound(spec.reference, pairs, layout),
        reads=tuple(mapping.get(r, r) for r in spec.reads),
        shape=shape,
        finalize=finalize,
    )
