"""The class column of a land-use code, as every class kernel reads it.

Land-use codes reach the kernels through a lookup table ``lut`` indexed by ``code - offset``
(:class:`carbonscape.accumulate.classindex.ClassIndex` builds it): ``lut[i]`` is the class column
of that code, the ``nodata`` code goes to ``nodata_col`` (callers pass a value outside the dtype's
range when there is none), and every code outside the table lands in ``unknown_col``.

One definition, inlined into each kernel's pixel loop (``inline="always"``: numba splices its IR
into the caller, so the branch costs what it cost written out in place). Numba's cache keys a
kernel on its own file only: after editing this helper, clear the kernels' numba cache
(``__pycache__/*.nbi``, ``*.nbc``) or callers keep the old copy.
"""

from __future__ import annotations

from numba import njit


@njit(inline="always", nogil=True, cache=True)
def class_column(code, lut, offset, nodata, nodata_col, unknown_col):  # pragma: no cover
    """The table column of one land-use code.

    Parameters
    ----------
    code : int64
        The pixel's land-use code (callers widen it with ``np.int64`` first).
    lut : 1-D integer array
        Column of each code ``offset .. offset + len(lut) - 1``.
    offset : int
        The code at ``lut[0]``.
    nodata : int
        The raster's nodata code (a value no pixel holds when there is none).
    nodata_col, unknown_col : int
        Columns of nodata pixels and of codes off the table.

    Returns
    -------
    int
        ``nodata_col`` for ``nodata``, ``lut[code - offset]`` inside the table, else ``unknown_col``.
    """
    # No chained comparison (``0 <= i < n``) and no ``if`` that only sets a variable: written that
    # way, numba's reference-count pruning left an incref/decref of ``lut`` on every pixel once the
    # helper was inlined, and the counting kernels ran twice as slow (a 4096² chunk).
    i = code - offset
    if code == nodata:
        return nodata_col
    if i < 0 or i >= lut.shape[0]:
        return unknown_col
    return lut[i]
