"""Raster I/O: GeoTIFF tiles to a chunked Zarr v3 store, and stores back to grids + dask arrays.

Stores follow the xarray/rioxarray conventions (a ``spatial_ref`` variable with ``crs_wkt`` and
``GeoTransform``, ``x``/``y`` pixel-centre coordinates, ``grid_mapping`` on the data variable), so
``xarray.open_zarr(path)`` and ``.rio`` read them as they are. The nodata value is kept in a
``nodata`` attribute rather than ``_FillValue``, which would make xarray decode codes to floats.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import os
import shutil
import uuid
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.array as da
import numcodecs
import numcodecs.blosc
import numpy as np
import rasterio
import xarray as xr
import zarr
from carbonscape import leftovers, remote
from carbonscape.cluster import Executor, using
from carbonscape.errors import AlignmentError, GridError, InputError
from carbonscape.grid import Grid
from carbonscape.accumulate.library import CODE_HISTOGRAM, code_counts
from carbonscape.accumulate.spec import Chunk, Layout
from dask.highlevelgraph import HighLevelGraph
from rasterio.windows import Window

log = logging.getLogger(__name__)

LANDUSE_VARIABLE = "landuse"
# 4096² chunks: dask's distributed scheduler costs a few milliseconds per task here, which with
# 2048² chunks was half the supply pass; a 4096² uint8 chunk is still only 16 MiB.
DEFAULT_CHUNK = 4096
# lz4 with bit-shuffle decodes land-use codes at several GB/s per core; reading the stores is the
# limit of the supply pass, so decode speed matters more than the last few percent of size.
_COMPRESSORS = (zarr.codecs.BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle"),)
# dask already runs one task per core; blosc's own thread pool on top of that oversubscribes the
# cores and made the supply pass 30% slower in the threaded scheduler.
numcodecs.blosc.use_threads = False
_INTEGER_KINDS = "iu"


# -- atomic outputs ---------------------------------------------------------------------------
def temporary_sibling(path: Path) -> Path:
    """A hidden name beside ``path`` on the same file system, for write-then-rename."""
    # Keep the suffix: GDAL picks drivers and checks names by it.
    return path.with_name(f".{path.stem}.tmp-{uuid.uuid4().hex[:8]}{path.suffix}")


def _refuse_to_replace_a_folder(final: Path) -> None:
    """Replacing a store replaces a whole folder: refuse any folder that is not a Zarr store, such as
    the folder the inputs sit in, given as --out by mistake."""
    if final.is_dir() and not final.is_symlink() and not (final / "zarr.json").exists() and any(final.iterdir()):
        raise InputError(
            f"{final} is a folder with other files in it, not a Zarr store; carbonscape will not replace it "
            f"(that would delete them). Give a new path for the store, e.g. {final / 'landuse.zarr'}"
        )


def _move_into_place(source: Path, target: Path) -> None:
    """Rename ``source`` to ``target``; a folder (a store) there is renamed aside first and removed
    after, since a rename cannot replace a non-empty folder."""
    if target.is_dir() and not target.is_symlink():
        old = temporary_sibling(target)
        target.rename(old)
        source.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(source, target)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path; on success replace ``path`` with it, on failure remove it.

    The path is made absolute first: on a cluster the workers write to it, and their working
    folder is not ours.
    """
    final = Path(path).absolute()
    _refuse_to_replace_a_folder(final)
    made = make_folders(final.parent)
    tmp = temporary_sibling(final)
    try:
        yield tmp
        _move_into_place(tmp, final)
    except BaseException:
        # Removed now and again when the executor closes: a chunk task still running may write
        # into it after this removal.
        leftovers.abandon(functools.partial(_remove_path, tmp))
        leftovers.abandon(functools.partial(remove_made_folders, made))
        raise
    finally:
        _remove_path(tmp)


def make_folders(folder: Path) -> list[Path]:
    """Make ``folder`` and its missing parents; return the folders this made, deepest first, for
    :func:`remove_made_folders` (a refused `--out a/b/new` is to leave no ``a/b`` behind)."""
    made = []
    for missing in (folder, *folder.parents):
        if missing.exists():
            break
        made.append(missing)
    folder.mkdir(parents=True, exist_ok=True)
    return made


def remove_made_folders(made: list[Path]) -> None:
    """Remove the folders :func:`make_folders` made, deepest first, as long as they are empty."""
    for folder in made:
        try:
            folder.rmdir()
        except OSError:  # not empty (someone else's files, or gone already)
            if folder.exists():
                return


def _remove_path(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()


def local_folder(folder: str | os.PathLike[str]) -> Path:
    """``folder`` as a local path; a URL is bad input (a user's `--out s3://b/res` became a local
    folder named ``s3:``): results folders are local, only stores go to object storage."""
    if remote.is_url(folder):
        raise InputError(
            f"--out {folder}: results (tables, maps, report) are written to a local folder; give a local path. "
            "Stores can live in object storage: `ingest`/`zones --out s3://…`, or a study's [outputs] stores"
        )
    return Path(folder)


@contextlib.contextmanager
def staged_outputs(folder: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a hidden staging folder inside ``folder``; on success move everything written there
    into ``folder`` (replacing files and stores of the same names), on failure or interrupt remove
    it. Several outputs (tables, pixel maps) then appear together or not at all."""
    local_folder(folder)
    final = Path(folder).absolute()
    made = make_folders(final)
    staging = final / f".staging-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        yield staging
        for item in sorted(staging.iterdir()):
            _move_into_place(item, final / item.name)
    except BaseException:
        leftovers.abandon(functools.partial(shutil.rmtree, staging, ignore_errors=True))
        # The folders made for this output (``folder`` and its parents) and left empty go too.
        leftovers.abandon(functools.partial(remove_made_folders, made))
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# -- reading stores ---------------------------------------------------------------------------
@dataclass(frozen=True)
class RasterStore:
    """An opened raster store: its grid, lazy data and metadata."""

    path: Path | str  # a local path, or the URL of a store in object storage
    grid: Grid
    data: da.Array
    nodata: int | float | None
    attrs: Mapping[str, Any]


def open_store(path: str | os.PathLike[str], *, variable: str | None = None) -> RasterStore:
    """Open a carbonscape (or rioxarray-written) Zarr store as a grid and a dask array.

    Parameters
    ----------
    path
        The store directory.
    variable
        The data variable; by default the only 2-D variable in the store.
    """
    if remote.is_url(path):
        return _open_remote_store(str(path), variable=variable)
    # Absolute, because workers on a cluster read the chunks by path from their own working folder.
    store_path = Path(path).absolute()
    if not store_path.exists():
        raise InputError(f"{store_path}: no such store; create it with `carbonscape ingest` or `zones`")
    try:
        group = zarr.open_group(str(store_path), mode="r")
    except Exception as exc:  # zarr raises several types for a directory that is not a store
        raise InputError(f"{store_path}: not a Zarr store ({exc}); create it with `carbonscape ingest`") from exc
    names = [name for name, arr in group.arrays() if arr.ndim == 2]
    if variable is None:
        if len(names) != 1:
            raise InputError(f"{store_path}: expected one 2-D variable, found {names}; name the variable")
        variable = names[0]
    if variable not in names:
        raise InputError(f"{store_path}: no 2-D variable {variable!r} (found {names})")
    array = group[variable]
    attrs = dict(array.attrs)
    root_attrs = dict(group.attrs)
    grid = _grid_from_group(group, array, store_path)
    # carbonscape writes every chunk of its own stores, so there a missing chunk file is an error,
    # not zarr's "all fill value" chunk.
    data = _direct_chunks(store_path / variable, grid, complete="carbonscape_kind" in root_attrs)
    if data is None:
        data = da.from_zarr(array, chunks=array.chunks, inline_array=True)
    nodata = attrs.get("nodata", attrs.get("_FillValue"))
    return RasterStore(path=store_path, grid=grid, data=data, nodata=nodata, attrs={**root_attrs, **attrs})


def _open_remote_store(url: str, *, variable: str | None) -> RasterStore:
    """:func:`open_store` for a store in object storage: zarr's own store API (FsspecStore over
    s3fs), chunks read by the workers with the ``AWS_*`` environment they run in. Stores there are
    published whole (see :func:`carbonscape.remote.staged_store`), so no chunk is missing."""
    url = remote.location(url)
    group = remote.open_group(url)
    names = [name for name, arr in group.arrays() if arr.ndim == 2]
    if variable is None:
        if len(names) != 1:
            raise InputError(f"{url}: expected one 2-D variable, found {names}; name the variable")
        variable = names[0]
    if variable not in names:
        raise InputError(f"{url}: no 2-D variable {variable!r} (found {names})")
    array = group[variable]
    attrs = dict(array.attrs)
    grid = _grid_from_group(group, array, url)
    data = da.from_zarr(array, chunks=array.chunks, inline_array=True)
    nodata = attrs.get("nodata", attrs.get("_FillValue"))
    return RasterStore(path=url, grid=grid, data=data, nodata=nodata, attrs={**dict(group.attrs), **attrs})


def _read_blosc_chunk(path: str, shape: tuple[int, int], full: tuple[int, int], dtype: str, fill: Any, complete: bool = False) -> np.ndarray:
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        if complete:
            raise InputError(
                f"{path}: a chunk of the store is missing, so the store is incomplete or this machine does "
                "not see it. On a cluster every worker must reach the store at the same absolute path (a "
                "shared file system); otherwise re-create the store with --force"
            ) from None
        return np.full(shape, fill, dtype=dtype)  # zarr leaves out chunks that hold only the fill value
    block = np.frombuffer(numcodecs.blosc.decompress(raw), dtype=dtype).reshape(full)
    return block[: shape[0], : shape[1]] if shape != full else block


def _direct_chunks(array_path: Path, grid: Grid, *, complete: bool = False) -> da.Array | None:
    """A dask array that reads a local Zarr v3 array's chunk files and blosc-decodes them itself.

    zarr-python 3 routes every chunk read through its asyncio machinery, which on this machine
    halved read throughput (950 vs 1,770 Mpx/s per core for uint8 lz4 chunks) and made the store
    read, not the kernel, the limit of the supply pass. Used only for the exact layout carbonscape
    writes (regular grid, default "/" keys, bytes + blosc codecs, little-endian or 1-byte data);
    anything else goes through zarr.
    """
    try:
        meta = json.loads((array_path / "zarr.json").read_text())
    except (OSError, ValueError):
        return None
    codecs = meta.get("codecs", [])
    names = [codec.get("name") for codec in codecs]
    key_encoding = meta.get("chunk_key_encoding", {})
    dtype = np.dtype(meta.get("data_type", "V")) if isinstance(meta.get("data_type"), str) else None
    if (
        names != ["bytes", "blosc"]
        or dtype is None
        or (dtype.itemsize > 1 and codecs[0].get("configuration", {}).get("endian", "little") != "little")
        or meta.get("chunk_grid", {}).get("name") != "regular"
        or key_encoding.get("name") != "default"
        or key_encoding.get("configuration", {}).get("separator", "/") != "/"
        or meta.get("storage_transformers")
    ):
        return None
    full = tuple(meta["chunk_grid"]["configuration"]["chunk_shape"])
    if full != grid.chunks:
        return None
    fill = meta.get("fill_value", 0)
    name = "read-" + uuid.uuid4().hex
    layer: dict[Any, Any] = {}
    for (i, j), (rows, cols) in grid.chunk_windows():
        shape = (rows.stop - rows.start, cols.stop - cols.start)
        layer[(name, i, j)] = (_read_blosc_chunk, str(array_path / "c" / str(i) / str(j)), shape, full, dtype.str, fill, complete)
    graph = HighLevelGraph.from_collections(name, layer, dependencies=())
    return da.Array(graph, name, grid.dask_chunks, dtype=dtype)


def _grid_from_group(group: zarr.Group, array: zarr.Array, path: Path | str) -> Grid:
    ref = dict(group["spatial_ref"].attrs) if "spatial_ref" in group else {}
    crs = ref.get("crs_wkt") or ref.get("spatial_ref")
    if not crs:
        raise GridError(f"{path}: the store has no CRS (no spatial_ref.crs_wkt); re-create it with `carbonscape ingest`")
    if "GeoTransform" in ref:
        c, a, b, f, d, e = (float(v) for v in str(ref["GeoTransform"]).split())
    else:
        x = np.asarray(group["x"][:2]) if "x" in group else None
        y = np.asarray(group["y"][:2]) if "y" in group else None
        if x is None or y is None or len(x) < 2 or len(y) < 2:
            raise GridError(f"{path}: the store has neither a GeoTransform nor x/y coordinates")
        a, e = float(x[1] - x[0]), float(y[1] - y[0])
        b = d = 0.0
        c, f = float(x[0] - a / 2), float(y[0] - e / 2)
    try:
        return Grid.from_affine(crs=crs, transform=rasterio.Affine(a, b, c, d, e, f), shape=array.shape, chunks=array.chunks)
    except GridError as exc:
        raise GridError(f"{path}: {exc}") from None


# -- writing stores ---------------------------------------------------------------------------
def raster_dataset(
    data: da.Array, grid: Grid, *, name: str, nodata: int | float | None, attrs: Mapping[str, Any]
) -> xr.Dataset:
    """Wrap a dask array on ``grid`` as an xarray Dataset with rioxarray-style georeferencing."""
    a, b, c, d, e, f = grid.transform
    var_attrs: dict[str, Any] = {"grid_mapping": "spatial_ref"}
    if nodata is not None:
        var_attrs["nodata"] = nodata.item() if isinstance(nodata, np.generic) else nodata
    ds = xr.Dataset(
        {name: (("y", "x"), data, var_attrs)},
        coords={
            "y": ("y", grid.y_coords(), {"units": "CRS units", "axis": "Y"}),
            "x": ("x", grid.x_coords(), {"units": "CRS units", "axis": "X"}),
            "spatial_ref": (
                (),
                np.int32(0),
                {"crs_wkt": grid.crs_wkt, "spatial_ref": grid.crs_wkt, "GeoTransform": f"{c!r} {a!r} {b!r} {f!r} {d!r} {e!r}"},
            ),
        },
        attrs=dict(attrs),
    )
    return ds


def _write_blosc_chunk(
    block: np.ndarray, *, path: str, full: tuple[int, int], histogram: tuple[int, int] | None, block_info: dict | None = None
) -> np.ndarray:
    """Encode one chunk as Zarr v3 (bytes + blosc lz4 bitshuffle) and write it to its key."""
    i, j = block_info[0]["chunk-location"]  # type: ignore[index]
    data = np.ascontiguousarray(block, dtype=block.dtype.newbyteorder("<"))
    if data.shape != full:  # edge chunks are stored full size; readers slice them
        padded = np.zeros(full, dtype=data.dtype)
        padded[: data.shape[0], : data.shape[1]] = data
        data = padded
    payload = numcodecs.blosc.compress(data, b"lz4", 5, numcodecs.blosc.BITSHUFFLE)
    _put_chunk(path, i, j, payload)
    if histogram is None:
        return np.zeros((1, 1, 1), dtype=np.int64)
    # The code histogram rides on the write (one read of the source); the statistic is the
    # CODE_HISTOGRAM accumulation that supply's error path also runs.
    where = Chunk(layout=Layout(codes=histogram), rows=slice(0, block.shape[0]), cols=slice(0, block.shape[1]), location=(i, j))
    return CODE_HISTOGRAM.chunk({"landuse": block}, where)[None, None, :]


def _put_chunk(path: str, i: int, j: int, payload: bytes) -> None:
    """Write chunk (i, j) of the array at ``path``: a file, or an object in object storage."""
    if remote.is_url(path):
        remote.put_bytes(f"{path}/c/{i}/{j}", payload)
        return
    folder = os.path.join(path, "c", str(i))
    os.makedirs(folder, exist_ok=True)
    # Written beside and renamed into place: a worker killed mid-write (or a lost worker still
    # writing while its task re-runs elsewhere) never leaves a torn chunk under the chunk's key.
    target = os.path.join(folder, str(j))
    partial = f"{target}.{uuid.uuid4().hex[:8]}.partial"
    with open(partial, "wb") as handle:
        handle.write(payload)
    os.replace(partial, target)


@contextlib.contextmanager
def _staged_store(path: str | os.PathLike[str]) -> Iterator[Path | str]:
    """Where a store is written before it is moved into place: :func:`atomic_path` for a local
    path, :func:`carbonscape.remote.staged_store` for an ``s3://`` URL."""
    if remote.is_url(path):
        if not str(path).lower().startswith("s3://"):
            raise InputError(f"{path}: stores can be written to local paths or s3:// URLs, not to {str(path).split('://')[0]}://")
        with remote.staged_store(remote.location(path)) as staging:  # type: ignore[arg-type]
            yield staging
        return
    with atomic_path(path) as tmp:
        yield tmp
        # A chunk write killed mid-way (its task re-ran elsewhere) leaves its .partial file behind.
        for leftover in tmp.glob("*/c/*/*.partial"):
            leftover.unlink()


def _zarr_target(where: Path | str) -> Any:
    """What zarr and xarray open for a local folder (its path) or a URL (zarr's FsspecStore)."""
    return remote.zarr_store(where, read_only=False) if isinstance(where, str) else str(where)


def write_store(
    ds: xr.Dataset,
    path: str | os.PathLike[str],
    *,
    grid: Grid,
    run: Executor,
    progress: bool = False,
    label: str = "",
    histogram: tuple[int, int] | None = None,
    finalize: Any = None,
) -> np.ndarray | None:
    """Write the 2-D variable of ``ds`` to a Zarr v3 store atomically, chunk by chunk on the workers.

    xarray writes the metadata and coordinates; the chunks are encoded and written by our own
    tasks, because zarr-python 3's asyncio write path was most of the ingest time (0.64 of 0.70 s
    for 10^8 pixels). With ``histogram=(lo, n)`` the same pass counts codes ``lo..lo+n-1``.
    ``finalize(group, histogram)`` may add attributes before the store is renamed into place.
    """
    names = [name for name, var in ds.data_vars.items() if var.ndim == 2]
    if len(names) != 1:
        raise ValueError(f"write_store expects one 2-D variable, got {names}")
    name = names[0]
    data = ds[name].data
    encoding = {name: {"chunks": grid.chunks, "compressors": _COMPRESSORS}}
    with _staged_store(path) as tmp:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*Consolidated metadata.*")
            # compute=False: metadata and coordinates now, the data variable's chunks by us below.
            ds.to_zarr(_zarr_target(tmp), mode="w", zarr_format=3, encoding=encoding, compute=False, consolidated=False)
        bins = 1 if histogram is None else histogram[1] + 1
        per_chunk = data.map_blocks(
            _write_blosc_chunk,
            path=str(remote.join(tmp, name)),
            full=grid.chunks,
            histogram=histogram,
            dtype=np.int64,
            chunks=tuple((1,) * len(c) for c in data.chunks) + ((bins,),),
            new_axis=[2],
        )
        (counts,) = run.compute(per_chunk.sum(axis=(0, 1), split_every=8), progress=progress, label=label)
        group = zarr.open_group(_zarr_target(tmp), mode="r+")
        if finalize is not None:
            finalize(group, None if histogram is None else np.asarray(counts))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*Consolidated metadata.*")
            zarr.consolidate_metadata(_zarr_target(tmp))
    return None if histogram is None else np.asarray(counts)


# -- ingest -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Tile:
    path: str
    row: int
    col: int
    height: int
    width: int


def _read_window(tiles: tuple[_Tile, ...], rows: tuple[int, int], cols: tuple[int, int], dtype: str, fill: Any) -> np.ndarray:
    r0, r1 = rows
    c0, c1 = cols
    if len(tiles) == 1 and tiles[0].row <= r0 and tiles[0].row + tiles[0].height >= r1 and tiles[0].col <= c0 and tiles[0].col + tiles[0].width >= c1:
        # One tile covers the whole window (every window but those on tile edges): GDAL's array is
        # the chunk, without filling a 16 MiB array first and copying the read into it.
        tile = tiles[0]
        with remote.gdal_env_for(tile.path), rasterio.open(tile.path) as src:
            return np.ascontiguousarray(src.read(1, window=Window(c0 - tile.col, r0 - tile.row, c1 - c0, r1 - r0)), dtype=dtype)
    out = np.full((r1 - r0, c1 - c0), fill, dtype=dtype)
    parts = []
    for tile in tiles:
        tr0, tr1 = max(r0, tile.row), min(r1, tile.row + tile.height)
        tc0, tc1 = max(c0, tile.col), min(c1, tile.col + tile.width)
        if tr0 < tr1 and tc0 < tc1:
            parts.append((tile, tr0, tr1, tc0, tc1))
    # Only where tiles overlap inside the window can one tile's nodata erase another's data; tiles
    # side by side (a window astride their edge: a sixth of a 10-tile nation's chunks) are copied
    # as they are, without a masked copy of every pixel (80 ms of a 4096² chunk).
    overlap = any(
        a[1] < b[2] and b[1] < a[2] and a[3] < b[4] and b[3] < a[4] for k, a in enumerate(parts) for b in parts[k + 1 :]
    )
    for tile, tr0, tr1, tc0, tc1 in parts:
        with remote.gdal_env_for(tile.path), rasterio.open(tile.path) as src:
            window = Window(tc0 - tile.col, tr0 - tile.row, tc1 - tc0, tr1 - tr0)
            block = src.read(1, window=window)
            target = out[tr0 - r0 : tr1 - r0, tc0 - c0 : tc1 - c0]
            if overlap and src.nodata is not None:
                np.copyto(target, block, where=block != src.nodata, casting="unsafe")
            else:
                target[...] = block
    return out


# Tiles whose origins differ from the mosaic's grid by less than this (in pixels) are snapped onto
# it; larger offsets are refused (they would shift land use against the county boundaries).
TILE_SNAP_PX = 1e-3


def _mosaic_grid(paths: Sequence[str], chunk: int) -> tuple[Grid, tuple[_Tile, ...], np.dtype, Any]:
    first_grid: Grid | None = None
    infos = []
    for path in paths:
        if not remote.is_url(path) and not os.path.exists(path):
            raise InputError(f"{path}: no such file")
        try:
            src_cm = rasterio.open(path)
        except rasterio.errors.RasterioIOError as exc:
            raise InputError(f"{path}: cannot be read as a raster ({exc})") from exc
        with src_cm as src:
            if src.dtypes[0][0] not in _INTEGER_KINDS and np.dtype(src.dtypes[0]).kind not in _INTEGER_KINDS:
                raise InputError(
                    f"{path}: land-use codes must be integers, the raster holds {src.dtypes[0]}; "
                    "convert it, e.g. `gdal_translate -ot Int16 in.tif out.tif`"
                )
            if src.crs is None:
                raise GridError(f"{path}: the raster has no CRS; assign one, e.g. `gdal_edit.py -a_srs EPSG:XXXX {path}`")
            try:
                grid = Grid.from_affine(crs=src.crs, transform=src.transform, shape=(src.height, src.width))
                if not grid.is_geographic:
                    grid.linear_unit_m  # noqa: B018  (refuse a CRS without units now, not at the supply pass)
            except GridError as exc:
                raise GridError(f"{path}: {exc}") from exc
            if src.count > 1:
                log.warning("%s has %d bands; only band 1 is used as land use", path, src.count)
            infos.append((path, grid, np.dtype(src.dtypes[0]), src.nodata))
            first_grid = first_grid or grid
    assert first_grid is not None
    dtypes = {info[2] for info in infos}
    nodatas = {info[3] for info in infos}
    ref_path, ref_grid = infos[0][0], infos[0][1]
    xres, yres = ref_grid.resolution
    for path, grid, _, _ in infos[1:]:
        if not grid.crs.equals(ref_grid.crs, ignore_axis_order=True):
            raise AlignmentError(f"{path}: CRS {grid.crs.name!r} differs from {ref_path}'s {ref_grid.crs.name!r}; warp the tiles to one CRS")
        if not np.allclose(grid.resolution, (xres, yres), rtol=1e-9):
            raise AlignmentError(f"{path}: pixel size {grid.resolution} differs from {ref_path}'s {(xres, yres)}; resample the tiles to one grid")
    left = min(g.bounds[0] for _, g, _, _ in infos)
    top = max(g.bounds[3] for _, g, _, _ in infos)
    tiles = []
    right_px = bottom_px = 0
    for path, grid, _, _ in infos:
        col_f = (grid.bounds[0] - left) / xres
        row_f = (top - grid.bounds[3]) / yres
        col, row = round(col_f), round(row_f)
        dx, dy = col_f - col, row_f - row
        if max(abs(dx), abs(dy)) > TILE_SNAP_PX:
            raise AlignmentError(
                f"{path}: its pixels are offset by a fraction of a pixel (columns {dx:+.4g}, rows {dy:+.4g} pixel; "
                f"more than the {TILE_SNAP_PX:g} pixel carbonscape snaps) from {ref_path}'s; the tiles are not one grid — "
                "resample them onto a common grid (gdalwarp -tap)"
            )
        if max(abs(dx), abs(dy)) > 1e-9:
            # Rounding in the tiles' georeferencing (a corner written to 6 decimals, a reprojected
            # origin): far below a pixel, so the tile is placed on the nearest whole pixel.
            log.info("%s: offset by (%+.3g, %+.3g) pixel from %s's grid, under %g pixel: snapped onto it", path, dx, dy, ref_path, TILE_SNAP_PX)
        tiles.append(_Tile(path=os.path.abspath(path), row=row, col=col, height=grid.shape[0], width=grid.shape[1]))
        right_px = max(right_px, col + grid.shape[1])
        bottom_px = max(bottom_px, row + grid.shape[0])
    dtype = np.result_type(*dtypes)
    if len(nodatas) > 1:
        raise InputError(f"the tiles disagree on nodata ({sorted(map(str, nodatas))}); set one value with `gdal_edit.py -a_nodata`")
    nodata = nodatas.pop()
    if nodata is not None:
        nodata = np.array(nodata).astype(dtype).item()
    a, _, _, _, e, _ = ref_grid.transform
    mosaic = Grid.from_affine(
        crs=ref_grid.crs_wkt,
        transform=rasterio.Affine(a, 0.0, left, 0.0, e, top),
        shape=(bottom_px, right_px),
        chunks=(chunk, chunk),
    )
    return mosaic, tuple(tiles), dtype, nodata


def source_fingerprint(paths: Sequence[str], chunk: int) -> dict[str, Any]:
    """What makes a land-use store up to date with its GeoTIFFs (paths, sizes, times, chunking);
    ``carbonscape check`` asks the same question as ingest."""
    files = []
    for path in paths:
        if remote.is_url(path):
            files.append(remote.describe(path))  # URL, size and ETag
            continue
        stat = os.stat(path)
        files.append({"path": os.path.abspath(path), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns})
    return {"files": files, "chunk": chunk, "format": 1}


def store_is_current(path: Path | str, fingerprint: Mapping[str, Any], key: str) -> bool:
    """True when the store at ``path`` (a folder or an ``s3://`` URL) was built from exactly these
    inputs and options."""
    if remote.is_url(path):
        try:
            attrs = dict(remote.open_group(str(path)).attrs)
        except Exception:
            return False
        return attrs.get(key) == json.loads(json.dumps(fingerprint))
    path = Path(path)
    if not (path / "zarr.json").exists():
        return False
    try:
        attrs = dict(zarr.open_group(str(path), mode="r").attrs)
    except Exception:
        return False
    return attrs.get(key) == json.loads(json.dumps(fingerprint))


def _chunk_from_tiles(
    tiles: tuple[_Tile, ...], rows: tuple[int, int], cols: tuple[int, int], dtype: str, fill: Any,
    path: str, i: int, j: int, full: tuple[int, int],
) -> np.ndarray:
    """Read one chunk's window from the GeoTIFF tiles, write it as chunk ``(i, j)`` of the staged
    store, and return it: the root task of :func:`ingesting`'s lazy array, run by the accumulation
    pass inside its task of that chunk, so the pass that counts the chunk also writes it.

    Idempotent: a re-run (its worker lost) writes the same bytes under the same key, each write
    renamed into place whole (:func:`_put_chunk`)."""
    block = _read_window(tiles, rows, cols, dtype, fill)
    _write_blosc_chunk(block, path=path, full=full, histogram=None, block_info={0: {"chunk-location": (i, j)}})
    return block


@dataclass
class StagedIngest:
    """A land-use store being ingested by the pass that reads it (:func:`ingesting`).

    ``store`` is opened as :func:`open_store` opens a finished one (``path`` is where the store will
    be, ``attrs`` what it will record but ``code_counts``), except that computing a block of
    ``store.data`` reads it from the GeoTIFFs and writes it to the staged store. ``histogram`` is
    the ``(lo, n)`` code range to count in that pass (None for codes wider than 16 bits), whose
    table :meth:`finish` records. ``current``: the store was already up to date with its sources
    (nothing to write; ``store`` reads it)."""

    store: RasterStore
    current: bool
    histogram: tuple[int, int] | None = None
    _staging: Path | str | None = None
    finished: bool = False

    def finish(self, histogram: np.ndarray | None) -> None:
        """Record the code counts of the pass's histogram and consolidate the metadata; the store
        moves into place when :func:`ingesting`'s block ends without an error."""
        if self.current:
            return
        if (histogram is None) != (self.histogram is None):
            raise ValueError("finish() takes the code histogram of the pass exactly when the ingest asked for one")
        group = zarr.open_group(_zarr_target(self._staging), mode="r+")  # type: ignore[arg-type]
        if histogram is not None:
            found = code_counts(np.asarray(histogram), Layout(codes=self.histogram))
            group.attrs["code_counts"] = {str(code): n for code, n in found.items()}
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*Consolidated metadata.*")
            zarr.consolidate_metadata(_zarr_target(self._staging))  # type: ignore[arg-type]
        self.finished = True


@contextlib.contextmanager
def ingesting(
    sources: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    chunk: int = DEFAULT_CHUNK,
    force: bool = False,
) -> Iterator[StagedIngest]:
    """:func:`ingest` done by the caller's own pass over the chunks: reads each chunk of the GeoTIFFs
    once for both the store and the caller's statistics.

    Yields a :class:`StagedIngest`. Unless the store is already current, the caller computes its
    pass over ``staged.store.data`` (every chunk, e.g. with :func:`carbonscape.accumulate.accumulate`,
    which runs each chunk's read-and-write inside its own task) counting ``staged.histogram``'s
    codes (:data:`CODE_HISTOGRAM`), then calls ``staged.finish(histogram)``; the store then moves
    into place as :func:`ingest`'s does. An error inside the block, or a block left without
    ``finish``, removes the staged store: nothing half-written is ever at ``out``.

    The chunks are written by whichever tasks compute them: compute ``staged.store.data`` once
    (a second computation re-reads the GeoTIFFs and rewrites the same bytes).
    """
    paths, out_path, fingerprint = _ingest_inputs(sources, out, chunk)
    if not force and store_is_current(out_path, fingerprint, "carbonscape_source"):
        log.info("%s is up to date with its sources; the pass reads it", out_path)
        yield StagedIngest(store=open_store(out_path), current=True)
        return
    grid, ds, data, histogram, tasks = _ingest_graph(paths, out_path, chunk, fingerprint)
    with _staged_store(out_path) as tmp:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*Consolidated metadata.*")
            ds.to_zarr(_zarr_target(tmp), mode="w", zarr_format=3, encoding={LANDUSE_VARIABLE: {"chunks": grid.chunks, "compressors": _COMPRESSORS}},
                       compute=False, consolidated=False)
        target = str(remote.join(tmp, LANDUSE_VARIABLE))
        name = "ingest-write-" + uuid.uuid4().hex
        layer = {(name, i, j): (_chunk_from_tiles, *task[1:], target, i, j, grid.chunks) for (i, j), task in tasks.items()}
        written = da.Array(HighLevelGraph.from_collections(name, layer, dependencies=()), name, data.chunks, dtype=data.dtype)
        var = ds[LANDUSE_VARIABLE]
        store = RasterStore(path=out_path, grid=grid, data=written, nodata=var.attrs.get("nodata"), attrs={**ds.attrs, **var.attrs})
        staged = StagedIngest(store=store, current=False, histogram=histogram, _staging=tmp)
        yield staged
        if not staged.finished:
            raise RuntimeError(f"{out_path}: the ingest pass ended without finish(); the staged store was removed")


def _ingest_inputs(
    sources: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], chunk: int,
) -> tuple[list[str], Path | str, dict[str, Any]]:
    """The checked source paths, the store's path and the sources' fingerprint."""
    paths = [os.fspath(p) for p in ([sources] if isinstance(sources, (str, os.PathLike)) else sources)]
    if not paths:
        raise InputError("no land-use raster given")
    if chunk < 16:
        raise InputError(f"--chunk {chunk} is too small; use 256 or more (4096 is the default)")
    out_path = remote.location(out) if remote.is_url(out) else Path(out)
    for path in paths:
        if not remote.is_url(path) and not os.path.isfile(path):
            raise InputError(f"{path}: no such file; check the land-use path")
    return paths, out_path, source_fingerprint(paths, chunk)


def _ingest_graph(
    paths: list[str], out_path: Path | str, chunk: int, fingerprint: dict[str, Any],
) -> tuple[Grid, xr.Dataset, da.Array, tuple[int, int] | None, dict[tuple[int, int], tuple[Any, ...]]]:
    """The mosaic's grid, the store's dataset (lazy reads of the windows), the lazy array, the code
    range to count, and each chunk's read task."""
    with remote.gdal_env():
        grid, tiles, dtype, nodata = _mosaic_grid(paths, chunk)
    # Remote tiles keep their URLs (the mosaic makes local paths absolute).
    tiles = tuple(dataclasses.replace(tile, path=path) if remote.is_url(path) else tile for tile, path in zip(tiles, paths))
    fill = nodata
    if fill is None:
        if len(tiles) > 1:
            fill = np.iinfo(dtype).max
            nodata = fill
            log.warning("the tiles have no nodata value; gaps between them are filled with %s, recorded as nodata", fill)
        else:
            fill = 0
    name = "ingest-" + uuid.uuid4().hex
    row_chunks, col_chunks = grid.dask_chunks
    layer: dict[Any, Any] = {}
    tasks: dict[tuple[int, int], tuple[Any, ...]] = {}
    for (i, j), (rows, cols) in grid.chunk_windows():
        covering = tuple(
            t for t in tiles
            if t.row < rows.stop and t.row + t.height > rows.start and t.col < cols.stop and t.col + t.width > cols.start
        )
        tasks[(i, j)] = layer[(name, i, j)] = (_read_window, covering, (rows.start, rows.stop), (cols.start, cols.stop), dtype.str, fill)
    data = da.Array(HighLevelGraph.from_collections(name, layer, dependencies=()), name, (row_chunks, col_chunks), dtype=dtype)
    histogram = None
    if dtype.itemsize <= 2:
        histogram = (int(np.iinfo(dtype).min), int(np.iinfo(dtype).max) - int(np.iinfo(dtype).min) + 1)
    attrs = {
        "carbonscape_source": fingerprint,
        "carbonscape_kind": "landuse",
        "sources": [os.path.basename(p) for p in paths],
    }
    ds = raster_dataset(data, grid, name=LANDUSE_VARIABLE, nodata=nodata, attrs=attrs)
    return grid, ds, data, histogram, tasks


def ingest(
    sources: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    chunk: int = DEFAULT_CHUNK,
    force: bool = False,
    scheduler: str | None = None,
    progress: bool = False,
    run: Executor | None = None,
) -> Path:
    """Convert one land-use GeoTIFF, or several tiles of one grid, to a chunked Zarr v3 store.

    Reads window by window on the workers, so the whole raster is never in memory. The store also
    records the count of every land-use code, which lets ``supply`` check the pools table early.

    Parameters
    ----------
    sources
        A GeoTIFF path or a list of tiles on one grid (same CRS and pixel size, aligned).
    out
        The store to write (a directory, conventionally ``*.zarr``).
    chunk
        Chunk edge in pixels.
    force
        Rebuild even when the store is already up to date with the same inputs.
    scheduler
        See :func:`carbonscape.cluster.executor`.
    progress
        Show a progress bar.

    Returns
    -------
    pathlib.Path
        The store's path.
    """
    paths, out_path, fingerprint = _ingest_inputs(sources, out, chunk)
    if not force and store_is_current(out_path, fingerprint, "carbonscape_source"):
        log.info("%s is up to date with its sources; nothing to do (use --force to rebuild)", out_path)
        return out_path
    grid, ds, _, histogram, _ = _ingest_graph(paths, out_path, chunk, fingerprint)

    def finalize(group: zarr.Group, hist: np.ndarray | None) -> None:
        if hist is not None:
            found = code_counts(hist, Layout(codes=histogram))
            group.attrs["code_counts"] = {str(code): n for code, n in found.items()}

    with using(run, scheduler) as active:
        write_store(
            ds, out_path, grid=grid, run=active, histogram=histogram,
            progress=progress, label=f"ingest {grid.shape[0]}×{grid.shape[1]} pixels → {out_path}",
            finalize=finalize,
        )
    return out_path
