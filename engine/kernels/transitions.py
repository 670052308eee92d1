"""Per-chunk (county, class in map A, class in map B) tables: the land-use transfer matrix.

Codes reach the kernels through dense lookup tables covering every value of an 8/16-bit dtype
(``lut[code - offset]`` is the column of ``code``: a class, nodata or unknown), as in
:func:`carbonscape.kernels.crosstab.crosstab_counts_dense`; wider codes are first mapped to their
columns by :func:`code_columns` and then read through an identity table.
"""

from __future__ import annotations

import numpy as np
from carbonscape.kernels.area import lattice_row
from carbonscape.kernels.classes import class_column
from numba import njit


@njit(nogil=True, cache=True)
def code_columns(codes, lut, offset, unknown_col, nodata, nodata_col):  # pragma: no cover
    """The class column of every code as int32 (``nodata`` → ``nodata_col``, codes outside ``lut`` →
    ``unknown_col``)."""
    out = np.empty(codes.shape, dtype=np.int32)
    rows, cols = codes.shape
    for r in range(rows):
        for c in range(cols):
            out[r, c] = class_column(np.int64(codes[r, c]), lut, offset, nodata, nodata_col, unknown_col)
    return out


@njit(nogil=True, cache=True)
def count_transitions(zones, codes_a, codes_b, lut_a, offset_a, lut_b, offset_b, n_zones, n_a, n_b):  # pragma: no cover
    """Pixels per (county id, column in A, column in B) of one chunk: int64 ``(n_zones, n_a, n_b)``.

    Two partial tables break the store-to-load dependency between neighbouring pixels of the same
    transition (most pixels do not change class, so neighbours usually hit the same cell).
    """
    parts = np.zeros((2, n_zones * n_a * n_b), dtype=np.int64)
    rows, cols = codes_a.shape
    for r in range(rows):
        zone_row = zones[r]
        a_row = codes_a[r]
        b_row = codes_b[r]
        for c in range(cols):
            z = np.int64(zone_row[c])
            if z < 0 or z >= n_zones:
                raise ValueError("zone id out of range of the zone table")
            a = np.int64(lut_a[np.int64(a_row[c]) - offset_a])
            b = np.int64(lut_b[np.int64(b_row[c]) - offset_b])
            parts[c & 1, (z * n_a + a) * n_b + b] += 1
    return (parts[0] + parts[1]).reshape(n_zones, n_a, n_b)


@njit(nogil=True, cache=True)
def count_transitions_8bit(zones, codes_a, codes_b, pair_lut, offset_a, offset_b, n_zones, n_pairs):  # pragma: no cover
    """:func:`count_transitions` for two 8-bit maps: ``pair_lut[code_a - offset_a, code_b -
    offset_b]`` is the cell ``a * n_b + b`` of the pair, so each pixel costs one lookup (the table,
    256 × 256 int32, stays in cache). Four partial tables, as in the dense counts kernel.
    Returns int64 ``(n_zones, n_pairs)``."""
    parts = np.zeros((4, n_zones * n_pairs), dtype=np.int64)
    rows, cols = codes_a.shape
    for r in range(rows):
        zone_row = zones[r]
        a_row = codes_a[r]
        b_row = codes_b[r]
        c = 0
        while c + 4 <= cols:
            for k in range(4):
                z = np.int64(zone_row[c + k])
                if z < 0 or z >= n_zones:
                    raise ValueError("zone id out of range of the zone table")
                parts[k, z * n_pairs + pair_lut[np.int64(a_row[c + k]) - offset_a, np.int64(b_row[c + k]) - offset_b]] += 1
            c += 4
        while c < cols:
            z = np.int64(zone_row[c])
            if z < 0 or z >= n_zones:
                raise ValueError("zone id out of range of the zone table")
            parts[0, z * n_pairs + pair_lut[np.int64(a_row[c]) - offset_a, np.int64(b_row[c]) - offset_b]] += 1
            c += 1
    return parts.sum(axis=0).reshape(n_zones, n_pairs)


@njit(nogil=True, cache=True)
def _row_areas(r, use_lattice, lattice, node_rows, node_cols, area, row0, col0, out):  # pragma: no cover
    """Fill ``out`` with the true areas (m²) of the chunk's row ``r``: rebuilt from the grid's
    area lattice (``use_lattice``, :func:`carbonscape.kernels.area.lattice_row`; ``row0, col0``
    the chunk's top-left pixel) or read from ``area``, which broadcasts to the chunk (``(rows,
    1)``, ``(1, 1)`` or ``(rows, cols)``)."""
    if use_lattice:
        lattice_row(lattice, node_rows, node_cols, row0 + r, col0, out)
    elif area.shape[1] == 1:
        out[:] = area[r if area.shape[0] > 1 else 0, 0]
    else:
        out[:] = area[r]


@njit(nogil=True, cache=True)
def _pair_keys(zone_row, a_row, b_row, lut_a, offset_a, lut_b, offset_b, n_zones, n_cells, out):  # pragma: no cover
    """Fill ``out[c]`` with the cell ``z * n_cells + lut_a[a - offset_a] + lut_b[b - offset_b]`` of
    every pixel of one row (``lut_a`` premultiplied by the number of columns of B). A county id
    out of range raises."""
    for c in range(out.shape[0]):
        z = np.int64(zone_row[c])
        if z < 0 or z >= n_zones:
            raise ValueError("zone id out of range of the zone table")
        out[c] = z * n_cells + lut_a[np.int64(a_row[c]) - offset_a] + lut_b[np.int64(b_row[c]) - offset_b]


@njit(nogil=True, cache=True)
def _slot(keys, key, mask):  # pragma: no cover
    """The slot of ``key`` in an open-addressing table (linear probing), or of the empty slot where
    it goes (empty slots hold -1; keys are never negative)."""
    # splitmix64's finalizer: every bit of the key reaches the low bits taken by the mask (keys
    # are county * stride + columns, so their low bits alone collide).
    x = np.uint64(key)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    x = x ^ (x >> np.uint64(31))
    h = np.int64(x & np.uint64(mask))
    while keys[h] != key and keys[h] != -1:
        h = (h + 1) & mask
    return h


@njit(inline="always", nogil=True, cache=True)
def _add_runs(key_row, with_area, area_row, dense, dense_pixels, dense_areas, keys, pixels, areas, used):  # pragma: no cover
    """Add one row's pixels (and areas) to their cells: runs of one key along the row (land use
    is clustered: most neighbours share their county and classes) are summed in registers and
    stored once per run, in ``dense_pixels/dense_areas`` indexed by key (``dense``) or else in the
    open-addressing table ``keys/pixels/areas`` (linear probing, load kept under one half by
    doubling and rehashing); with ``with_area`` each run's areas from ``area_row`` too. Returns ``(keys,
    pixels, areas, used)``, new arrays when the table grew."""
    cols = key_row.shape[0]
    c = 0
    while c < cols:
        key = key_row[c]
        start = c
        while c < cols and key_row[c] == key:
            c += 1
        run_pixels = c - start
        run_area = 0.0
        if with_area:  # a chain of additions: only when areas are wanted
            for j in range(start, c):
                run_area += area_row[j]
        if dense:
            dense_pixels[key] += run_pixels
            dense_areas[key] += run_area
            continue
        capacity = keys.shape[0]
        mask = capacity - 1
        slot = _slot(keys, key, mask)
        if keys[slot] == -1:
            if 2 * (used + 1) > capacity:  # keep the load under one half: grow and rehash
                capacity *= 2
                mask = capacity - 1
                new_keys = np.full(capacity, -1, dtype=np.int64)
                new_pixels = np.zeros(capacity, dtype=np.int64)
                new_areas = np.zeros(capacity, dtype=np.float64)
                for old in range(keys.shape[0]):
                    if keys[old] != -1:
                        s = _slot(new_keys, keys[old], mask)
                        new_keys[s] = keys[old]
                        new_pixels[s] = pixels[old]
                        new_areas[s] = areas[old]
                keys, pixels, areas = new_keys, new_pixels, new_areas
                slot = _slot(keys, key, mask)
            keys[slot] = key
            used += 1
        pixels[slot] += run_pixels
        areas[slot] += run_area
    return keys, pixels, areas, used


@njit(nogil=True, cache=True)
def _present(keys, pixels, areas):  # pragma: no cover
    """The occupied slots of a hash table, sorted by key: ``(keys, pixels, areas)``."""
    present = np.flatnonzero(keys != -1)
    chosen = present[np.argsort(keys[present])]
    return keys[chosen], pixels[chosen], areas[chosen]


@njit(nogil=True, cache=True)
def _pair_cells(zones, codes_a, codes_b, lut_a, offset_a, lut_b, offset_b, n_zones, n_cells, dense,
                with_area, use_lattice, lattice, node_rows, node_cols, area, row0, col0):  # pragma: no cover
    """The loop of :func:`transition_tables` (``dense``) and :func:`sparse_transition_tables`:
    each row's cells (:func:`_pair_keys`) and areas (:func:`_row_areas`), added run by run
    (:func:`_add_runs`). Returns ``(dense pixels, dense areas, keys, pixels, areas)``: the dense
    tables have one entry when not ``dense``, the hash table one slot when ``dense``; areas are
    zeros without ``with_area``."""
    rows, cols = codes_a.shape
    size = n_zones * n_cells if dense else 1
    dense_pixels = np.zeros(size, dtype=np.int64)
    dense_areas = np.zeros(size, dtype=np.float64)
    capacity = 1 if dense else 1024
    keys = np.full(capacity, -1, dtype=np.int64)
    pixels = np.zeros(capacity, dtype=np.int64)
    areas = np.zeros(capacity, dtype=np.float64)
    used = 0
    area_row = np.zeros(cols, dtype=np.float64)
    key_row = np.empty(cols, dtype=np.int64)
    for r in range(rows):
        _pair_keys(zones[r], codes_a[r], codes_b[r], lut_a, offset_a, lut_b, offset_b, n_zones, n_cells, key_row)
        if with_area:
            _row_areas(r, use_lattice, lattice, node_rows, node_cols, area, row0, col0, area_row)
        keys, pixels, areas, used = _add_runs(key_row, with_area, area_row, dense, dense_pixels, dense_areas, keys, pixels, areas, used)
    return dense_pixels, dense_areas, keys, pixels, areas


@njit(nogil=True, cache=True)
def transition_tables(zones, codes_a, codes_b, lut_a, offset_a, lut_b, offset_b, n_zones, n_cells,
                      with_area, use_lattice, lattice, node_rows, node_cols, area, row0, col0):  # pragma: no cover
    """Pixels and true area (m²) per (county id, column in A, column in B) of one chunk, in one read.

    ``lut_a[code - offset_a]`` is the column of a code of map A already multiplied by the number
    of columns of map B, ``lut_b[code - offset_b]`` the column of a code of map B, so a pixel's cell
    is their sum (two lookups in tables that stay in L1 for 8-bit codes). With ``with_area`` each
    pixel's area is added too: rebuilt row by row from the grid's area lattice (``use_lattice``,
    :func:`carbonscape.kernels.area.lattice_row`, never a per-pixel area block) or read from
    ``area``, which broadcasts to the chunk (``(rows, 1)``, ``(1, 1)`` or ``(rows, cols)``).
    ``row0, col0`` is the chunk's top-left pixel. Returns ``(pixels int64 (n_zones * n_cells,),
    areas float64 (n_zones * n_cells,) or (1,) without areas)``. The loop is
    :func:`sparse_transition_tables`' (:func:`_pair_cells`), into a table of every cell.
    """
    dense_pixels, dense_areas, _, _, _ = _pair_cells(zones, codes_a, codes_b, lut_a, offset_a, lut_b, offset_b, n_zones, n_cells, True,
                                                     with_area, use_lattice, lattice, node_rows, node_cols, area, row0, col0)
    return dense_pixels, (dense_areas if with_area else np.zeros(1, dtype=np.float64))


@njit(nogil=True, cache=True)
def sparse_transition_tables(zones, codes_a, codes_b, lut_a, offset_a, lut_b, offset_b, n_zones, n_cells,
                             with_area, use_lattice, lattice, node_rows, node_cols, area, row0, col0):  # pragma: no cover
    """:func:`transition_tables` as a hash table: only the (county, from, to) cells the chunk holds.

    Arguments as :func:`transition_tables` (``lut_a`` premultiplied by the number of columns of B,
    ``n_cells = n_a * n_b``); the cell of a pixel is the key ``z * n_cells + a * n_b + b``. Keys
    live in an open-addressing table (linear probing, load under one half, grown by doubling), so
    the table is as large as the cells present, not as ``n_zones × n_a × n_b`` (16-bit codes with
    hundreds of classes and thousands of counties). Runs of one transition along a row (most
    land does not change) are hashed once. Returns ``(keys int64 sorted, pixels int64, areas
    float64)``, one entry per cell present; ``areas`` is zeros without ``with_area``.
    """
    _, _, keys, pixels, areas = _pair_cells(zones, codes_a, codes_b, lut_a, offset_a, lut_b, offset_b, n_zones, n_cells, False,
                                            with_area, use_lattice, lattice, node_rows, node_cols, area, row0, col0)
    return _present(keys, pixels, areas)


@njit(nogil=True, cache=True)
def trajectory_tables(zones, maps, luts, offsets, n_zones, stride, dense, with_area, use_lattice, lattice, node_rows, node_cols,
                      area, row0, col0):  # pragma: no cover
    """Pixels and true area (m²) per (county id, column in map 1, ..., column in map k) of one
    chunk — each pixel's *trajectory* through all the maps — as a hash table of the cells present.

    ``maps`` is a tuple of the chunk's blocks of every map (one dtype); ``luts[m, code -
    offsets[m]]`` is the column of ``code`` in map ``m`` already multiplied by the product of the
    column counts of the maps after it, and ``stride`` is the product of all of them, so a
    pixel's key is ``z * stride + Σ_m luts[m, ...]``: built a row at a time, one map after the
    other (a map costs one load, one lookup and one add per pixel), then counted with the runs of
    one key along the row summed in registers and stored once per run (:func:`_add_runs`, as the
    pair kernels do). Every pair's transfer
    matrix and every map's own table is a margin of this one (one table per pass, not one per pair).
    With ``dense`` (the caller's choice when ``n_zones × stride`` cells are few) the runs go to a
    table of every cell, indexed by key, instead of the hash table (a probe per run costs more than
    an increment where the maps change often, short runs). Areas as in :func:`transition_tables`. Returns ``(keys int64 sorted, pixels int64, areas
    float64)``.
    """
    rows, cols = zones.shape
    k = len(maps)
    capacity = 1024
    keys = np.full(capacity, -1, dtype=np.int64)
    pixels = np.zeros(capacity, dtype=np.int64)
    areas = np.zeros(capacity, dtype=np.float64)
    used = 0
    dense_pixels = np.zeros(n_zones * stride if dense else 1, dtype=np.int64)
    dense_areas = np.zeros(n_zones * stride if dense else 1, dtype=np.float64)
    buffer = np.zeros(cols, dtype=np.float64)
    key_row = np.empty(cols, dtype=np.int64)
    for r in range(rows):
        zone_row = zones[r]
        for c in range(cols):
            z = np.int64(zone_row[c])
            if z < 0 or z >= n_zones:
                raise ValueError("zone id out of range of the zone table")
            key_row[c] = z * stride
        for m in range(k):
            code_row = maps[m][r]
            lut = luts[m]
            offset = offsets[m]
            for c in range(cols):
                key_row[c] += lut[np.int64(code_row[c]) - offset]
        if with_area:
            _row_areas(r, use_lattice, lattice, node_rows, node_cols, area, row0, col0, buffer)
        keys, pixels, areas, used = _add_runs(key_row, with_area, buffer, dense, dense_pixels, dense_areas, keys, pixels, areas, used)
    if dense:
        present = np.flatnonzero(dense_pixels)
        return present.astype(np.int64), dense_pixels[present], dense_areas[present]
    return _present(keys, pixels, areas)
