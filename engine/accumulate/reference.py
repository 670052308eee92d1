"""Plain-numpy reference engines of every statistic in :mod:`carbonscape.accumulate.library`.

Each has the signature of its statistic's ``chunk`` (``blocks, where``) and is written with
``np.bincount`` over flattened keys, sharing no code with the numba kernels: the property tests
check every kernel against these on random rasters and chunkings.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from carbonscape.accumulate.spec import Chunk
from carbonscape.errors import ZoneError


def _county_ids(blocks: Mapping[str, np.ndarray], where: Chunk) -> np.ndarray:
    ids = np.asarray(blocks["counties"]).astype(np.int64).ravel()
    if ids.size and (ids.min() < 0 or ids.max() >= where.layout.n_counties):
        raise ZoneError("zone id out of range of the zone table")
    return ids


def counts_reference(blocks: Mapping[str, np.ndarray], where: Chunk) -> np.ndarray:
    """Pixels per (county, class column): ``(n_counties, n_cols)`` int64."""
    layout = where.layout
    ids = _county_ids(blocks, where)
    columns = layout.classes.columns(blocks["landuse"]).ravel()  # type: ignore[union-attr]
    flat = np.bincount(ids * layout.n_cols + columns, minlength=layout.n_counties * layout.n_cols)
    return flat.reshape(layout.n_counties, layout.n_cols)


def areas_reference(blocks: Mapping[str, np.ndarray], where: Chunk) -> np.ndarray:
    """True area (m²) per (county, class column): ``(n_counties, n_cols)`` float64; in fraction
    mode (``layout.params["boundary"]``) each boundary pixel shared by covered fraction."""
    layout = where.layout
    ids = _county_ids(blocks, where)
    columns = layout.classes.columns(blocks["landuse"]).ravel()  # type: ignore[union-attr]
    weights = np.broadcast_to(where.area(), blocks["landuse"].shape).ravel()
    keys = ids * layout.n_cols + columns
    size = layout.n_counties * layout.n_cols
    flat = np.bincount(keys, weights=weights, minlength=size)
    if layout.params.get("boundary") is not None:
        from carbonscape.rasterize import read_boundary_window

        entries = read_boundary_window(layout.params["boundary"], where.rows, where.cols)
        width = where.cols.stop - where.cols.start
        pixel = entries["row"] * width + entries["col"]
        shared = np.unique(pixel)
        flat -= np.bincount(keys[shared], weights=weights[shared], minlength=size)
        flat += np.bincount(entries["county"].astype(np.int64) * layout.n_cols + columns[pixel], weights=entries["fraction"] * weights[pixel], minlength=size)
        covered = np.bincount(np.searchsorted(shared, pixel), weights=entries["fraction"], minlength=len(shared))
        rest = np.clip(1.0 - covered, 0.0, None)
        flat += np.bincount(columns[shared], weights=rest * weights[shared], minlength=size)  # county 0: outside
    return flat.reshape(layout.n_counties, layout.n_cols)


def code_histogram_reference(blocks: Mapping[str, np.ndarray], where: Chunk) -> np.ndarray:
    """Pixels of each code ``lo .. lo+n-1``, and of every other code in the last bin: ``(n + 1,)``."""
    lo, n = where.layout.codes  # type: ignore[misc]
    position = np.asarray(blocks["landuse"]).astype(np.int64).ravel() - lo
    inside = (position >= 0) & (position < n)
    hist = np.bincount(position[inside], minlength=n).astype(np.int64)
    return np.append(hist, np.int64((~inside).sum()))


def _transition_keys(blocks: Mapping[str, np.ndarray], where: Chunk) -> tuple[np.ndarray, int, int]:
    layout = where.layout
    ids = _county_ids(blocks, where)
    a = layout.classes.columns(blocks["landuse"]).ravel()  # type: ignore[union-attr]
    b = layout.to_classes.columns(blocks["landuse_to"]).ravel()
    n_a, n_b = layout.n_cols, layout.to_classes.n_cols
    return (ids * n_a + a) * n_b + b, n_a, n_b


def transitions_reference(blocks: Mapping[str, np.ndarray], where: Chunk) -> np.ndarray:
    """Pixels per (county, column in A, column in B): ``(n_counties, n_a, n_b)`` int64."""
    keys, n_a, n_b = _transition_keys(blocks, where)
    n = where.layout.n_counties
    return np.bincount(keys, minlength=n * n_a * n_b).reshape(n, n_a, n_b)


def transition_areas_reference(blocks: Mapping[str, np.ndarray], where: Chunk) -> np.ndarray:
    """True area (m²) per (county, column in A, column in B): ``(n_counties, n_a, n_b)`` float64."""
    keys, n_a, n_b = _transition_keys(blocks, where)
    n = where.layout.n_counties
    weights = np.broadcast_to(where.area(), blocks["landuse"].shape).ravel()
    return np.bincount(keys, weights=weights, minlength=n * n_a * n_b).reshape(n, n_a, n_b)


def transition_tables_reference(blocks: Mapping[str, np.ndarray], where: Chunk) -> np.ndarray:
    """Pixels ``[0]`` and true area in m² ``[1]`` per (county, column in A, column in B):
    ``(2, n_counties, n_a, n_b)`` float64."""
    return np.stack([transitions_reference(blocks, where).astype(np.float64), transition_areas_reference(blocks, where)])


def sparse_transitions_reference(blocks: Mapping[str, np.ndarray], where: Chunk) -> np.ndarray:
    """The cells present of :func:`transition_tables_reference`, as ``(key, pixels, area_m2)``
    records sorted by key (``np.unique`` of the keys)."""
    keys, _, _ = _transition_keys(blocks, where)
    return sparse_records(keys, np.broadcast_to(where.area(), blocks["landuse"].shape).ravel())


def sparse_records(keys: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Every pixel's key (int64, flat) and area (m², flat) as one record per key present, sorted
    by key (``np.unique``, ``np.bincount``): the reference of the hashed kernels' tables."""
    from carbonscape.accumulate.library import SPARSE_DTYPE

    present, inverse = np.unique(keys, return_inverse=True)
    out = np.empty(len(present), dtype=SPARSE_DTYPE)
    out["key"] = present
    out["pixels"] = np.bincount(inverse.ravel(), minlength=len(present))
    out["area_m2"] = np.bincount(inverse.ravel(), weights=weights, minlength=len(present))
    return out


def span_counts_areas_reference(blocks: Mapping[str, np.ndarray], where: Chunk) -> np.ndarray:
    """Pixels and true areas (m²) per (county, class column) from the land use and the county
    rings (``blocks["county_rings"]``, one :class:`~carbonscape.rasterize.ChunkRings` for the
    whole raster): ``(2, n_counties, n_cols)``. Counts: the ids by the pixel-centre rule tested
    centre by centre against every edge (:func:`carbonscape.kernels.spans.burn_rings_numpy`), then
    :func:`counts_reference`. Areas: in fraction mode (``layout.params["boundary_rings"]``) every
    pixel shared among the counties by its covered fraction, computed by shapely for every pixel
    and county (:func:`carbonscape.kernels.fraction.polygon_fractions_numpy`), the rest to id 0;
    otherwise :func:`areas_reference` of the ids."""
    import shapely
    from carbonscape.kernels.fraction import polygon_fractions_numpy
    from carbonscape.kernels.spans import burn_rings_numpy

    layout = where.layout
    rings, codes = blocks["county_rings"], blocks["landuse"]
    shape = codes.shape
    ids = burn_rings_numpy(rings.xs, rings.ys, rings.ring_starts, rings.polygon_starts, rings.counties, shape)
    counted = {"counties": ids, "landuse": codes}
    counts = counts_reference(counted, where).astype(np.float64)
    if layout.params.get("boundary_rings") is None:
        return np.stack([counts, areas_reference(counted, where)])
    columns = layout.classes.columns(codes).ravel()  # type: ignore[union-attr]
    weights = np.broadcast_to(where.area(), shape).ravel()
    size = layout.n_counties * layout.n_cols
    flat = np.zeros(size)
    covered = np.zeros(codes.size)
    for k in range(len(rings.counties)):
        # A county's rings as one shapely geometry: shells minus holes (even-odd), in pixel units.
        polygons = [shapely.Polygon(np.column_stack([rings.xs[a:b], rings.ys[a:b]]))
                    for a, b in zip(rings.ring_starts[rings.polygon_starts[k]:rings.polygon_starts[k + 1]],
                                    rings.ring_starts[rings.polygon_starts[k] + 1:rings.polygon_starts[k + 1] + 1])]
        geom = shapely.Polygon()
        for polygon in polygons:
            geom = shapely.symmetric_difference(geom, polygon)
        fractions = polygon_fractions_numpy(geom, (1.0, 0.0, 0.0, 0.0, 1.0, 0.0), shape).ravel()
        covered += fractions
        flat += np.bincount(int(rings.counties[k]) * layout.n_cols + columns, weights=fractions * weights, minlength=size)
    flat += np.bincount(columns, weights=np.clip(1.0 - covered, 0.0, None) * weights, minlength=size)
    return np.stack([counts, flat.reshape(layout.n_counties, layout.n_cols)])
