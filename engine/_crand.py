"""esda's conditional randomization (LISA, Gi*) with the statistic called directly, cached on disk.

esda's ``compute_chunk`` takes the local statistic as a first-class function; numba compiles it
per process and cannot reload such a function from its disk cache, so every `carbonscape run`
paid several seconds (8 s of the 2,900-county nation's statistics stage on 2 cores) compiling it
again. :func:`compute_chunk` is esda's serial loop (esda 2.x ``esda.crand.compute_chunk``, BSD
licence) calling esda's own kernels for local Moran's I and Gi* by name, compiled with
``cache=True``: the values are esda's, and a new process loads the machine code from disk.
:func:`patched` routes esda's ``crand`` to it for those two statistics (any other statistic goes
to esda's own loop).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
from esda.crand import _permutation_significance
from esda.getisord import _g_local_star_crand
from esda.moran import _moran_local_crand
from numba import njit

# The statistics compute_chunk calls directly, by esda kernel.
MORAN_LOCAL, G_LOCAL_STAR = 0, 1
KINDS = {_moran_local_crand: MORAN_LOCAL, _g_local_star_crand: G_LOCAL_STAR}


@njit(fastmath=True, cache=True)
def compute_chunk(chunk_start, z_chunk, z, observed, cardinalities, self_weights, other_weights, permuted_ids, scaling, keep,
                  kind, island_weight, alternative):  # pragma: no cover - compiled
    """esda's ``compute_chunk`` with ``stat_func`` chosen by ``kind`` (:data:`MORAN_LOCAL` or
    :data:`G_LOCAL_STAR`). Returns ``(p_sims (n_chunk,), rlocals (n_chunk, permutations) or (1, 1))``."""
    chunk_n = z_chunk.shape[0]
    p_sims = np.zeros((chunk_n,), dtype=np.float32)
    rlocals = np.empty((chunk_n, permuted_ids.shape[0])) if keep else np.empty((1, 1))
    wloc = 0
    for i in range(chunk_n):
        cardinality = cardinalities[i]
        if cardinality == 0:  # an island: one "fake" neighbour of island_weight
            weights_i = np.zeros(2, dtype=other_weights.dtype)
            weights_i[1] = island_weight
        else:  # the self-weight first, then the next `cardinality` weights
            weights_i = np.zeros(cardinality + 1, dtype=other_weights.dtype)
            weights_i[0] = self_weights[i]
            weights_i[1:] = other_weights[wloc:(wloc + cardinality)]
        wloc += cardinality
        if kind == MORAN_LOCAL:
            rstats = _moran_local_crand(chunk_start + i, z, permuted_ids, weights_i, scaling)
        else:
            rstats = _g_local_star_crand(chunk_start + i, z, permuted_ids, weights_i, scaling)
        p_sims[i] = _permutation_significance(observed[i], rstats, alternative=alternative).item()
        if keep:
            rlocals[i] = rstats
    return p_sims, rlocals


@contextlib.contextmanager
def patched() -> Iterator[None]:
    """esda's serial conditional randomization through :func:`compute_chunk` while inside."""
    import esda.crand

    original = esda.crand.compute_chunk

    def chunk(chunk_start: int, z_chunk: Any, z: Any, observed: Any, cardinalities: Any, self_weights: Any, other_weights: Any,
              permuted_ids: Any, scaling: Any, keep: bool, stat_func: Any, island_weight: float, alternative: str = "directed") -> Any:
        kind = KINDS.get(stat_func)
        if kind is None:
            return original(chunk_start, z_chunk, z, observed, cardinalities, self_weights, other_weights, permuted_ids, scaling, keep,
                            stat_func, island_weight, alternative=alternative)
        return compute_chunk(chunk_start, z_chunk, z, observed, cardinalities, self_weights, other_weights, permuted_ids, scaling, keep,
                             kind, island_weight, alternative)

    esda.crand.compute_chunk = chunk
    try:
        yield
    finally:
        esda.crand.compute_chunk = original
