"""Staging areas given up after a failure or an interrupt, removed again once no worker can write.

A store is written into a hidden staging folder or prefix and moved into place only on success;
on failure or Ctrl-C the staging area is removed at once. But a chunk task already running on a
worker when the client gave up may still write its chunk *after* that removal, re-creating part of
the staging area (seen on object storage: ``.lu.zarr.tmp-…/landuse/c/0/0`` left in the bucket).
So every staging area given up is also remembered here, and :func:`sweep` removes it again when the
executor closes, after its workers have stopped (:func:`carbonscape.cluster.executor`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

__all__ = ["abandon", "sweep"]

_lock = threading.Lock()
_abandoned: list[Callable[[], None]] = []


def abandon(remove: Callable[[], None]) -> None:
    """Remove a staging area now (``remove()``, errors ignored) and once more at :func:`sweep`."""
    with contextlib.suppress(Exception):
        remove()
    with _lock:
        _abandoned.append(remove)


def sweep() -> None:
    """Remove again every staging area given up since the last sweep (errors ignored)."""
    with _lock:
        pending = list(_abandoned)
        _abandoned.clear()
    for remove in pending:
        try:
            remove()
        except Exception as exc:  # pragma: no cover - a cleanup that fails is only logged
            log.debug("could not remove a staging area: %s", exc)
