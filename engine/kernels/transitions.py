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
def sum_transition_areas(zones, codes_a, codes_b, lut_a, offset_a, lut_b, offset_b, n_zones, n_a, n_b, area):  # pragma: no cover
    """True area (m²) per (county id, column in A, column in B) of one chunk: float64.

    ``area`` broadcasts to the chunk: ``(rows, 1)``, ``(1, 1)`` or ``(rows, cols)``.
    """
    out = np.zeros(n_zones * n_a * n_b, dtype=np.float64)
    rows, cols = codes_a.shape
    row_step = 1 if area.shape[0] > 1 else 0
    col_step = 1 if area.shape[1] > 1 else 0
    for r in range(rows):
        zone_row = zones[r]
        a_row = codes_a[r]
        b_row = codes_b[r]
        area_row = area[r * row_step]
        for c in range(cols):
            z = np.int64(zone_row[c])
            if z < 0 or z >= n_zones:
                raise ValueError("zone id out of range of the zone table")
            a = np.int64(lut_a[np.int64(a_row[c]) - offset_a])
            b = np.int64(lut_b[np.int64(b_row[c]) - offset_b])
            out[(z * n_a + a) * n_b + b] += area_row[c * col_step]
    return out.reshape(n_zones, n_a, n_b)


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
    areas float64 (n_zones * n_cells,) or (1,) without areas)``. Two partial tables break the
    store-to-load dependency between neighbouring pixels of the same transition.
    """
    rows, cols = codes_a.shape
    parts = np.zeros((2, n_zones * n_cells), dtype=np.int64)
    area_parts = np.zeros((2, n_zones * n_cells if with_area else 1), dtype=np.float64)
    buffer = np.empty(cols, dtype=np.float64)
    row_step = 1 if area.shape[0] > 1 else 0
    for r in range(rows):
        zone_row = zones[r]
        a_row = codes_a[r]
        b_row = codes_b[r]
        if not with_area:
            for c in range(cols):
                z = np.int64(zone_row[c])
                if z < 0 or z >= n_zones:
                    raise ValueError("zone id out of range of the zone table")
                parts[c & 1, z * n_cells + lut_a[np.int64(a_row[c]) - offset_a] + lut_b[np.int64(b_row[c]) - offset_b]] += 1
            continue
        if use_lattice:
            lattice_row(lattice, node_rows, node_cols, row0 + r, col0, buffer)
        elif area.shape[1] == 1:
            buffer[:] = area[r * row_step, 0]
        else:
            buffer[:] = area[r]
        # Runs of one cell along the row (land use is clustered: most neighbours share their
        # county and both classes) are summed in registers and stored once per run.
        run_cell = np.int64(-1)
        run_pixels = np.int64(0)
        run_area = 0.0
        for c in range(cols):
            z = np.int64(zone_row[c])
            if z < 0 or z >= n_zones:
                raise ValueError("zone id out of range of the zone table")
            cell = z * n_cells + lut_a[np.int64(a_row[c]) - offset_a] + lut_b[np.int64(b_row[c]) - offset_b]
            if cell != run_cell:
                if run_pixels:
                    parts[0, run_cell] += run_pixels
                    area_parts[0, run_cell] += run_area
                run_cell = cell
                run_pixels = 0
                run_area = 0.0
            run_pixels += 1
            run_area += buffer[c]
        if run_pixels:
            parts[0, run_cell] += run_pixels
            area_parts[0, run_cell] += run_area
    return parts[0] + parts[1], area_parts[0] + area_parts[1]


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


@njit(nogil=True, cache=True)
def sparse_transition_tables(zones, codes_a, codes_b, lut_a, offset_a, lut_b, offset_b, n_zones, n_cells,
                             with_area, use_lattice, lattice, node_rows, node_cols, area, row0, col0):  # pragma: no cover
    """:func:`transition_tables` as a hash table: only the (county, from, to) cells the chunk holds.

    Arguments as :func:`transition_tables` (``lut_a`` premultiplied by the number of columns of B,
    ``n_cells = n_a * n_b``); the cell of a pixel is the key ``z * n_cells + a * n_b + b``. Keys
    live in an open-addressing table (linear probing, load under one half, grown by doubling), so
    the table is as large as the cells present, not as ``n_zones × n_a × n_b`` (16-bit codes with
    hundreds of classes and thousands of counties). Consecutive pixels of one transition (most
    land does not change) reuse the previous slot without hashing. Returns ``(keys int64 sorted,
    pixels int64, areas float64)``, one entry per cell present; ``areas`` is zeros without
    ``with_area``.
    """
    rows, cols = codes_a.shape
    capacity = 1024
    keys = np.full(capacity, -1, dtype=np.int64)
    pixels = np.zeros(capacity, dtype=np.int64)
    areas = np.zeros(capacity, dtype=np.float64)
    used = 0
    buffer = np.zeros(cols, dtype=np.float64)
    row_step = 1 if area.shape[0] > 1 else 0
    last_key = np.int64(-1)
    last_slot = 0
    for r in range(rows):
        zone_row = zones[r]
        a_row = codes_a[r]
        b_row = codes_b[r]
        if with_area:
            if use_lattice:
                lattice_row(lattice, node_rows, node_cols, row0 + r, col0, buffer)
            elif area.shape[1] == 1:
                buffer[:] = area[r * row_step, 0]
            else:
                buffer[:] = area[r]
        for c in range(cols):
            z = np.int64(zone_row[c])
            if z < 0 or z >= n_zones:
                raise ValueError("zone id out of range of the zone table")
            key = z * n_cells + lut_a[np.int64(a_row[c]) - offset_a] + lut_b[np.int64(b_row[c]) - offset_b]
            if key != last_key:
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
                last_key = key
                last_slot = slot
            pixels[last_slot] += 1
            if with_area:
                areas[last_slot] += buffer[c]
    present = np.flatnonzero(keys != -1)
    order = np.argsort(keys[present])
    chosen = present[order]
    return keys[chosen], pixels[chosen], areas[chosen]


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
    one key along the row summed in registers and stored once per run. Every pair's transfer
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
    row_step = 1 if area.shape[0] > 1 else 0
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
            if use_lattice:
                lattice_row(lattice, node_rows, node_cols, row0 + r, col0, buffer)
            elif area.shape[1] == 1:
                buffer[:] = area[r * row_step, 0]
            else:
                buffer[:] = area[r]
        c = 0
        while c < cols:
            key = key_row[c]
            run_pixels = 0
            run_area = 0.0
            while c < cols and key_row[c] == key:
                run_pixels += 1
                run_area += buffer[c]
                c += 1
            if dense:
                dense_pixels[key] += run_pixels
                dense_areas[key] += run_area
                continue
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
    if dense:
        present = np.flatnonzero(dense_pixels)
        return present.astype(np.int64), dense_pixels[present], dense_areas[present]
    present = np.flatnonzero(keys != -1)
    chosen = present[np.argsort(keys[present])]
    return keys[chosen], pixels[chosen], areas[chosen]
