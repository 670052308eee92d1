"""Where a result came from, for ``run.json``: input checksums, versions, timings and the machine."""

from __future__ import annotations

import hashlib
import os
import platform
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Timings", "describe_inputs", "jsonable", "sha256", "versions", "where"]

_PACKAGES = ("carbonscape", "numpy", "numba", "dask", "distributed", "xarray", "zarr", "rasterio", "geopandas", "pyogrio",
             "shapely", "pyproj", "pandas", "matplotlib")


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read 1 MiB at a time ("" for a folder)."""
    digest = hashlib.sha256()
    if path.is_dir():
        return ""
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def describe_inputs(files: list[tuple[str, Path | str]]) -> list[dict[str, Any]]:
    """``{role, path, sha256, bytes}`` of each input file; for an ``s3://`` or ``http(s)://``
    input ``{role, path, etag, bytes}`` (a remote raster is not read whole to be hashed)."""
    from carbonscape import remote

    return [{"role": role, **remote.describe(path)} if remote.is_url(path) else
            {"role": role, "path": str(path), "sha256": sha256(path), "bytes": path.stat().st_size} for role, path in files]


def versions() -> dict[str, str]:
    """Versions of Python, GDAL and every package a result depends on."""
    found = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    import rasterio

    found["gdal"] = rasterio.__gdal_version__
    return found


def where(executor_description: str, workers: Any) -> dict[str, Any]:
    """The scheduler, its workers and the machine the client ran on."""
    return {"scheduler": executor_description, "workers": workers, "host": socket.gethostname(),
            "platform": platform.platform(), "cpus": os.cpu_count()}


class Timings(dict[str, float]):
    """Seconds per stage: ``with timings.stage("ingest"): ...`` or ``timings.lap("ingest")``."""

    def __init__(self) -> None:
        super().__init__()
        self._clock = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self[name] = round(now - self._clock, 3)
        self._clock = now

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self[name] = round(time.perf_counter() - started, 3)
            self._clock = time.perf_counter()


def jsonable(value: Any) -> Any:
    """A value JSON can hold: numpy scalars and arrays as Python, non-finite floats as text."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    return value
