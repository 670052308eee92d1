"""The one runner: any set of :class:`~.spec.Accumulation` over aligned rasters, in one read of
each chunk.

Every chunk position becomes ONE task that receives the blocks of every raster the statistics
read and runs all their ``chunk`` functions on them, so a block is read and decoded once however
many statistics use it (counts of two maps and their transitions share the reads). Each statistic
then takes its table out of that task's answer and dask sums those small tables as a tree (flox's
chunk → combine), so only small tables leave the workers.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import Any

import dask.array as da
import numpy as np
from carbonscape.accumulate.spec import Accumulation, AreaSource, Chunk, Layout, pixel_areas
from carbonscape.errors import AlignmentError, ZoneError
from carbonscape.grid import Grid
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph, MaterializedLayer

_UNIT_ID_ERROR = (
    "a unit id in the county store is out of range of its county table: the store was built from other "
    "polygons than its table describes; rebuild it with `carbonscape zones ... --like <land-use store>`"
)


def _reads(specs: Sequence[Accumulation]) -> tuple[str, ...]:
    names: list[str] = []
    for spec in specs:
        names.extend(name for name in spec.reads if name not in names)
    return tuple(names)


def _check_specs(specs: Sequence[Accumulation]) -> None:
    seen = [spec.name for spec in specs]
    duplicated = sorted({name for name in seen if seen.count(name) > 1})
    if duplicated:
        raise ValueError(f"statistic(s) {duplicated} asked for twice in one pass; results are returned by name")


def _aligned(arrays: Mapping[str, Any], needed: Sequence[str], *, numpy: bool) -> None:
    missing = [name for name in needed if arrays.get(name) is None]
    if missing:
        raise ValueError(f"the statistics read raster(s) {missing} that were not given (given: {sorted(arrays)})")
    first = needed[0]
    for name in needed[1:]:
        a, b = arrays[first], arrays[name]
        if a.shape != b.shape:
            raise AlignmentError(f"rasters {first!r} {a.shape} and {name!r} {b.shape} differ in shape; they must share one grid")
        if not numpy and a.chunks != b.chunks:
            raise AlignmentError(
                f"rasters {first!r} and {name!r} are chunked differently ({a.chunks[0][0]}×{a.chunks[1][0]} "
                f"vs {b.chunks[0][0]}×{b.chunks[1][0]}); write them with the same chunks (`--like`)"
            )
    for name in needed:
        if arrays[name].ndim != 2:
            raise AlignmentError(f"raster {name!r} has {arrays[name].ndim} dimensions, not 2")


def _area_source(specs: Sequence[Accumulation], grid: Grid | None, areas: AreaSource | None) -> AreaSource | None:
    source = areas if areas is not None else (pixel_areas(grid) if grid is not None else None)
    if source is None and any(spec.needs_area for spec in specs):
        names = [spec.name for spec in specs if spec.needs_area]
        raise ValueError(f"statistic(s) {names} need pixel areas: pass grid= or areas= to accumulate")
    return source


def _root_tasks(array: da.Array) -> dict[tuple[int, int], tuple[Any, ...]] | None:
    """The task making each block of ``array`` when every one depends on nothing else (a chunk read
    from a store, a chunk of counties burned from its polygons), else None.

    The pass runs such tasks inside its own task for that chunk position instead of beside it:
    a block is then made, counted and freed in one task on one thread, never held in memory
    waiting for its sibling blocks (the scheduler ran reads ahead of the counting and held them:
    memory), and never carried between workers; it also makes a third of the tasks.
    """
    layer = array.dask.layers.get(array.name)
    if layer is None or array.dask.dependencies.get(array.name) or not isinstance(layer, MaterializedLayer):
        return None
    tasks: dict[tuple[int, int], tuple[Any, ...]] = {}
    for i in range(len(array.chunks[0])):
        for j in range(len(array.chunks[1])):
            task = layer.mapping.get((array.name, i, j))
            if not (isinstance(task, tuple) and task and callable(task[0])):
                return None
            tasks[(i, j)] = task
    return tasks


def _run_chunk(
    specs: tuple[Accumulation, ...], layout: Layout, areas: AreaSource | None, needed: tuple[str, ...],
    row0: int, row1: int, col0: int, col1: int, i: int, j: int, *blocks: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """Run every statistic on one chunk position; each answer gets two leading length-1 axes."""
    where = Chunk(layout=layout, rows=slice(row0, row1), cols=slice(col0, col1), location=(i, j), areas=areas)
    by_name = dict(zip(needed, blocks))
    out = []
    for spec in specs:
        try:
            table = spec.chunk({name: by_name[name] for name in spec.reads}, where)
        except ValueError as exc:
            if "zone id out of range" in str(exc):  # the kernels' only error: a foreign county store
                raise ZoneError(_UNIT_ID_ERROR) from None
            raise
        out.append(np.asarray(table, dtype=spec.dtype) if spec.combine == "merge" else np.asarray(table, dtype=spec.dtype)[None, None, ...])
    return tuple(out)


def _merge_tree(spec: Accumulation, graph: HighLevelGraph, name: str, n_rows: int, n_cols: int, k: int, split_every: int) -> Any:
    """A ``"merge"`` statistic's tables of every chunk, merged ``split_every`` at a time as a tree
    by ``spec.merge``; the root as a :class:`dask.delayed.Delayed` (sparse tables have no fixed shape)."""
    from dask.delayed import Delayed

    level_name = f"{name}-{spec.name}-merge"
    layer: dict[Any, Any] = {}
    keys: list[Any] = [(level_name, 0, n) for n in range(n_rows * n_cols)]
    for n, (i, j) in enumerate((i, j) for i in range(n_rows) for j in range(n_cols)):
        layer[keys[n]] = (operator.getitem, (name, i, j), k)
    level = 0
    while len(keys) > 1:
        level += 1
        grouped = [keys[g : g + split_every] for g in range(0, len(keys), split_every)]
        keys = [(level_name, level, g) for g in range(len(grouped))]
        for key, group in zip(keys, grouped):
            layer[key] = (spec.merge, list(group))
    root = f"{level_name}-root"
    layer[root] = (spec.merge, list(keys))
    merged = HighLevelGraph(layers={**graph.layers, level_name: layer}, dependencies={**graph.dependencies, level_name: {name}})
    return Delayed(root, merged, layer=level_name)


def accumulate(
    specs: Iterable[Accumulation],
    counties: da.Array | None,
    rasters: Mapping[str, da.Array] | None = None,
    *,
    layout: Layout,
    grid: Grid | None = None,
    areas: AreaSource | None = None,
    split_every: int = 16,
    inline: bool = True,
) -> dict[str, da.Array]:
    """Lazy tables of every statistic in ``specs``, by name, from one read of each chunk.

    Building the graph computes nothing.

    Parameters
    ----------
    specs
        The statistics (see :mod:`carbonscape.accumulate.library`), each named once.
    counties
        Unit ids ``0..layout.n_counties-1`` (0 = outside every unit), read as ``"counties"``; None
        when no statistic reads them.
    rasters
        The other aligned rasters by the names the statistics read (``"landuse"``,
        ``"landuse_to"``, a weights raster...): same shape and chunks as ``counties``.
    layout
        Table sizes (:class:`~.spec.Layout`).
    grid, areas
        Where per-pixel true areas come from for statistics that need them: ``areas`` if given,
        else :func:`~.spec.pixel_areas` of ``grid``.
    split_every
        Fan-in of the tree sum.
    inline
        Run the tasks making the rasters' blocks that depend on nothing (chunk reads of a store,
        counties burned from polygons) inside the pass's task of their chunk (:func:`_root_tasks`);
        False keeps them as tasks of their own.

    Returns
    -------
    dict[str, dask.array.Array]
        For a ``"sum"`` statistic its table of ``spec.shape(layout)``; for a ``"blocks"`` one an
        array ``(n_row_chunks, n_col_chunks, *shape)``; for a ``"merge"`` one (sparse tables) a
        :class:`dask.delayed.Delayed` of the merged table. Raises :class:`AlignmentError` when the
        rasters differ in shape or chunks and :class:`ZoneError` (at compute) for unit ids out of range.
    """
    specs = tuple(specs)
    if not specs:
        return {}
    _check_specs(specs)
    arrays: dict[str, Any] = dict(rasters or {})
    if counties is not None:
        arrays["counties"] = counties
    needed = _reads(specs)
    _aligned(arrays, needed, numpy=False)
    source = _area_source(specs, grid, areas)
    inputs = [arrays[name] for name in needed]
    token = tokenize([spec.name for spec in specs], layout, [a.name for a in inputs], source, split_every)
    name = f"carbonscape-accumulate-{token}"
    run = partial(_run_chunk, specs, layout, source, needed)
    row_chunks, col_chunks = inputs[0].chunks
    row_starts, col_starts = np.cumsum((0, *row_chunks)), np.cumsum((0, *col_chunks))
    roots = [_root_tasks(a) if inline else None for a in inputs]
    layer: dict[Any, Any] = {}
    for i in range(len(row_chunks)):
        for j in range(len(col_chunks)):
            layer[(name, i, j)] = (
                run, int(row_starts[i]), int(row_starts[i + 1]), int(col_starts[j]), int(col_starts[j + 1]), i, j,
                *[(a.name, i, j) if tasks is None else tasks[(i, j)] for a, tasks in zip(inputs, roots)],
            )
    graph = HighLevelGraph.from_collections(name, layer, dependencies=[a for a, tasks in zip(inputs, roots) if tasks is None])
    results: dict[str, da.Array] = {}
    for k, spec in enumerate(specs):
        if spec.combine == "merge":
            results[spec.name] = _merge_tree(spec, graph, name, len(row_chunks), len(col_chunks), k, split_every)
            continue
        shape = tuple(int(s) for s in spec.shape(layout))
        part_name = f"{name}-{spec.name}"
        zeros = (0,) * len(shape)
        parts = {
            (part_name, i, j, *zeros): (operator.getitem, (name, i, j), k)
            for i in range(len(row_chunks))
            for j in range(len(col_chunks))
        }
        part_graph = HighLevelGraph(
            layers={**graph.layers, part_name: parts}, dependencies={**graph.dependencies, part_name: {name}}
        )
        chunks = ((1,) * len(row_chunks), (1,) * len(col_chunks), *((s,) for s in shape))
        per_chunk = da.Array(part_graph, part_name, chunks, dtype=spec.dtype)
        results[spec.name] = (
            per_chunk.sum(axis=(0, 1), split_every=split_every, dtype=spec.dtype) if spec.combine == "sum" else per_chunk
        )
    return results


def accumulate_numpy(
    specs: Iterable[Accumulation],
    counties: np.ndarray | None,
    rasters: Mapping[str, np.ndarray] | None = None,
    *,
    layout: Layout,
    grid: Grid | None = None,
    areas: AreaSource | None = None,
    chunks: tuple[tuple[int, ...], tuple[int, ...]] | None = None,
) -> dict[str, np.ndarray]:
    """The plain-numpy engine: every statistic's ``reference`` on whole in-memory rasters.

    ``"sum"`` statistics see the raster as one chunk; ``"blocks"`` ones are handed each window
    of ``chunks`` (required for them) and stacked as :func:`accumulate` stacks them.
    """
    specs = tuple(specs)
    _check_specs(specs)
    arrays: dict[str, Any] = {k: np.asarray(v) for k, v in (rasters or {}).items()}
    if counties is not None:
        arrays["counties"] = np.asarray(counties)
    if not specs:
        return {}
    needed = _reads(specs)
    _aligned(arrays, needed, numpy=True)
    source = _area_source(specs, grid, areas)
    rows, cols = arrays[needed[0]].shape
    out: dict[str, np.ndarray] = {}
    for spec in specs:
        if spec.combine in ("sum", "merge"):
            where = Chunk(layout=layout, rows=slice(0, rows), cols=slice(0, cols), areas=source)
            out[spec.name] = np.asarray(spec.reference({n: arrays[n] for n in spec.reads}, where), dtype=spec.dtype)
            continue
        if chunks is None:
            raise ValueError(f"{spec.name} keeps one table per block: pass chunks= to accumulate_numpy")
        row_starts, col_starts = np.cumsum((0, *chunks[0])), np.cumsum((0, *chunks[1]))
        grid_of_tables = []
        for i in range(len(chunks[0])):
            line = []
            for j in range(len(chunks[1])):
                r, c = slice(int(row_starts[i]), int(row_starts[i + 1])), slice(int(col_starts[j]), int(col_starts[j + 1]))
                where = Chunk(layout=layout, rows=r, cols=c, location=(i, j), areas=source)
                line.append(np.asarray(spec.reference({n: arrays[n][r, c] for n in spec.reads}, where), dtype=spec.dtype))
            grid_of_tables.append(line)
        out[spec.name] = np.array(grid_of_tables, dtype=spec.dtype)
    return out


def finalize(spec: Accumulation, table: Any, layout: Layout) -> Any:
    """``spec.finalize(table, layout)`` on a computed table, or the table itself."""
    return table if spec.finalize is None else spec.finalize(np.asarray(table), layout)
