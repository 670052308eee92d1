"""Object storage (``s3://``) and remote inputs (``http(s)://``) beside local paths.

Land-use GeoTIFFs (best as COGs) are read by GDAL's range requests (``/vsis3/``, ``/vsicurl/``);
Zarr stores are written and read through zarr's :class:`~zarr.storage.FsspecStore` over s3fs.
Endpoint and credentials come from the standard ``AWS_*`` environment, on the machine that runs the
command and on every worker: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` (or ``AWS_PROFILE``),
``AWS_DEFAULT_REGION``, and ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3``) for an S3-compatible
server such as MinIO or Ceph. GDAL has its own names for the endpoint; :func:`gdal_options`
translates.

A store written to object storage is staged under a hidden sibling prefix and copied into place
only once every chunk is written, its root ``zarr.json`` last, so a failed or interrupted run
leaves no readable half-written store. Errors name the URL: missing credentials, a bucket that
does not exist or an object that is not there are the user's to fix (:class:`InputError`, exit 2);
an endpoint that does not answer is infrastructure (:class:`StorageError`, exit 1).
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from carbonscape import leftovers
from carbonscape.errors import CarbonscapeError, InputError, StorageError

log = logging.getLogger(__name__)

#: URL schemes carbonscape reads; ``s3://`` is also written.
SCHEMES = ("s3://", "http://", "https://")


def is_url(path: Any) -> bool:
    """True for an ``s3://``, ``http://`` or ``https://`` URL (not for a local path)."""
    return isinstance(path, str) and path.lower().startswith(SCHEMES)


def location(path: str | os.PathLike[str]) -> Path | str:
    """A URL as given (without a trailing slash), a local path made absolute (workers on a cluster
    resolve relative paths in their own folders)."""
    if is_url(path):
        return str(path).rstrip("/")
    return Path(path).absolute()


def name_of(path: Path | str) -> str:
    """The file name of a local path or a URL (its last segment), for messages."""
    if is_url(path):
        return urlsplit(str(path)).path.rstrip("/").rpartition("/")[2] or str(path)
    return Path(path).name


# Small inputs read from object storage or the web (tables, polygons) are copied here once per
# process; the rasters are never copied (GDAL reads them by range requests).
_COPIES: dict[str, Path] = {}
# Files that make up one vector dataset beside the named one (a Shapefile is several files).
_SIDECARS = {".shp": (".shx", ".dbf", ".prj", ".cpg")}


def local_copy(url: str) -> Path:
    """A local copy of a small remote input (a CSV, workbook, GeoPackage, GeoJSON or Shapefile
    with its sidecar files), downloaded once per process into a temporary folder.

    Raises
    ------
    InputError
        When the object, its bucket or the credentials are missing (naming the URL).
    StorageError
        When the endpoint does not answer.
    """
    import atexit
    import shutil
    import tempfile

    if url in _COPIES and _COPIES[url].is_file():
        return _COPIES[url]
    fs = filesystem(url, fresh=True)
    folder = Path(tempfile.mkdtemp(prefix="carbonscape-input-"))
    atexit.register(shutil.rmtree, folder, True)
    target = folder / (name_of(url) or "input")
    try:
        fs.get_file(_key(url), str(target))
    except Exception as exc:
        raise storage_error(url, exc) from exc
    stem, dot, suffix = url.rpartition(".")
    for extra in _SIDECARS.get(f".{suffix.lower()}" if dot else "", ()):
        with contextlib.suppress(Exception):  # sidecars other than .shx/.dbf are optional; GDAL says which are missing
            fs.get_file(_key(stem + extra), str(target.with_suffix(extra)))
    _COPIES[url] = target
    return target


@contextlib.contextmanager
def as_local(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A local path for a small input given as a path or a URL (:func:`local_copy`); errors raised
    inside name the URL, not the temporary copy."""
    if not is_url(path):
        yield Path(path)
        return
    local = local_copy(str(path))
    try:
        yield local
    except CarbonscapeError as exc:
        exc.args = tuple(a.replace(str(local), str(path)) if isinstance(a, str) else a for a in exc.args)
        raise


def join(base: Path | str, *parts: str) -> Path | str:
    """``base / part / ...`` for a local path or a URL."""
    if isinstance(base, Path):
        return base.joinpath(*parts)
    return "/".join([base.rstrip("/"), *parts])


def endpoint() -> str:
    """The S3 endpoint in force: ``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL``, or AWS itself."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or "AWS S3"


def gdal_options() -> dict[str, str]:
    """GDAL configuration for ``/vsis3/`` from the ``AWS_*`` environment.

    GDAL (3.10 here) does not read ``AWS_ENDPOINT_URL``; it wants the host in ``AWS_S3_ENDPOINT``,
    ``AWS_HTTPS=NO`` for plain http, and path-style addressing for S3-compatible servers. Keys,
    region and ``AWS_NO_SIGN_REQUEST`` GDAL reads from the environment itself.
    """
    options: dict[str, str] = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"}  # no directory listing per open
    url = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if url:
        parts = urlsplit(url if "://" in url else f"https://{url}")
        options["AWS_S3_ENDPOINT"] = parts.netloc + parts.path.rstrip("/")
        options["AWS_HTTPS"] = "NO" if parts.scheme == "http" else "YES"
        options["AWS_VIRTUAL_HOSTING"] = "FALSE"
    return options


@contextlib.contextmanager
def gdal_env() -> Iterator[None]:
    """A ``rasterio.Env`` configured by :func:`gdal_options`, for reads of remote rasters."""
    import rasterio

    with rasterio.Env(**gdal_options()):
        yield


def gdal_env_for(path: Any) -> contextlib.AbstractContextManager[Any]:
    """:func:`gdal_env` for a URL, nothing for a local path."""
    return gdal_env() if is_url(path) else contextlib.nullcontext()


def filesystem(url: str, *, fresh: bool = False) -> Any:
    """The fsspec file system of a URL (s3fs for ``s3://``, aiohttp for ``http(s)://``); s3fs reads
    the ``AWS_*`` environment itself, ``AWS_ENDPOINT_URL`` included. ``fresh`` bypasses fsspec's
    cache of instances and listings (for checks that must see the storage as it is now)."""
    import fsspec

    protocol = urlsplit(url).scheme.lower()
    if fresh:
        return fsspec.filesystem(protocol, skip_instance_cache=True, use_listings_cache=False)
    return fsspec.filesystem(protocol)


def _key(url: str) -> str:
    """``bucket/key`` of an ``s3://`` URL (the URL itself for http)."""
    return url.split("://", 1)[1] if url.lower().startswith("s3://") else url


def storage_error(url: str, exc: BaseException, *, doing: str = "read") -> CarbonscapeError:
    """A clear carbonscape error for a failure to reach ``url``: the user's to fix (exit 2) when
    credentials, the bucket or the object are wrong, infrastructure (exit 1) when the endpoint does
    not answer."""
    name = type(exc).__name__
    text = str(exc)
    where = endpoint() if url.lower().startswith("s3://") else urlsplit(url).netloc
    if name in {"NoCredentialsError", "PartialCredentialsError", "NoAuthTokenError"} or "Unable to locate credentials" in text:
        return InputError(
            f"{url}: no credentials for object storage ({text}); set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "(or AWS_PROFILE), or AWS_NO_SIGN_REQUEST=YES for a public bucket"
        )
    if isinstance(exc, PermissionError) or "AccessDenied" in text or "InvalidAccessKeyId" in text or "SignatureDoesNotMatch" in text:
        return InputError(f"{url}: access denied at {where} ({text}); check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and the bucket's policy")
    unreachable = _connection_failure(exc)
    if unreachable is not None:
        # fsspec's HTTP file system reports a refused connection as FileNotFoundError, with the
        # connection error as its cause: the endpoint's fault (exit 1), not a missing object.
        return StorageError(
            f"{url}: could not reach {where} to {doing} it ({type(unreachable).__name__}: {unreachable}); check the network "
            "and the URL (or AWS_ENDPOINT_URL for an S3-compatible server)"
        )
    if isinstance(exc, FileNotFoundError) or "NoSuchBucket" in text or "404" in text:
        if "bucket" in text.lower():
            bucket = _key(url).split("/", 1)[0]
            return InputError(f"{url}: the bucket {bucket!r} does not exist at {where}; create it or correct the URL")
        return InputError(f"{url}: no such object; check the URL (to {doing} it, carbonscape needs it to exist)")
    if isinstance(exc, (ConnectionError, TimeoutError, OSError)) or "Connect" in name or "Endpoint" in name or "Timeout" in name:
        return StorageError(
            f"{url}: could not reach {where} to {doing} it ({name}: {text}); check the network and "
            "AWS_ENDPOINT_URL (for an S3-compatible server) or the URL"
        )
    return StorageError(f"{url}: could not {doing} it ({name}: {text})")


def _connection_failure(exc: BaseException) -> BaseException | None:
    """The connection error behind ``exc`` (itself or its causes), if the endpoint did not answer."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return None
        name = type(seen).__name__
        if isinstance(seen, (ConnectionError, TimeoutError)) or name in {"ClientConnectorError", "ServerTimeoutError", "EndpointConnectionError", "ConnectTimeoutError"}:
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _check_bucket(fs: Any, url: str, *, doing: str) -> None:
    """Raise a clear error when the bucket of ``url`` does not exist or cannot be reached."""
    bucket = _key(url).split("/", 1)[0]
    try:
        fs.info(bucket)
    except FileNotFoundError:
        raise InputError(f"{url}: the bucket {bucket!r} does not exist at {endpoint()}; create it or correct the URL") from None
    except Exception as exc:
        raise storage_error(url, exc, doing=doing) from exc


def describe(url: str) -> dict[str, Any]:
    """What makes a remote raster the same raster again: its URL, size and ETag (or modification
    time); raises a clear error when it cannot be reached."""
    fs = filesystem(url, fresh=True)
    try:
        info = fs.info(_key(url))
    except Exception as exc:  # s3fs/aiohttp/botocore raise many types; storage_error sorts them
        raise storage_error(url, exc) from exc
    if info.get("type") == "directory":
        raise InputError(f"{url}: is a folder (prefix), not a raster; give the GeoTIFF's URL")
    tag = info.get("ETag") or info.get("etag") or info.get("LastModified") or info.get("last_modified")
    return {"path": url, "bytes": info.get("size"), "etag": str(tag) if tag is not None else None}


def zarr_store(url: str, *, read_only: bool) -> Any:
    """zarr's FsspecStore for ``url`` (its own store API: async, batched requests)."""
    from zarr.storage import FsspecStore

    return FsspecStore.from_url(url, read_only=read_only)


def open_group(url: str) -> Any:
    """Open the Zarr group at ``url`` read-only; a missing store or bucket is an :class:`InputError`."""
    import zarr

    fs = filesystem(url, fresh=True)
    try:
        found = fs.exists(f"{_key(url)}/zarr.json")
    except Exception as exc:
        raise storage_error(url, exc) from exc
    if not found:
        _check_bucket(fs, url, doing="read")  # a clearer message when it is the bucket that is missing
    if not found:
        raise InputError(f"{url}: no such store (no zarr.json there); create it with `carbonscape ingest` or `zones`")
    try:
        return zarr.open_group(zarr_store(url, read_only=True), mode="r")
    except Exception as exc:
        raise storage_error(url, exc) from exc


def put_bytes(url: str, payload: bytes) -> None:
    """Write one object (a chunk); runs on the workers."""
    filesystem(url).pipe_file(_key(url), payload)


def read_bytes(url: str) -> bytes | None:
    """One object's bytes, or None when there is no such object; runs on the workers."""
    try:
        return filesystem(url).cat_file(_key(url))
    except FileNotFoundError:
        return None


@contextlib.contextmanager
def staged_store(url: str) -> Iterator[str]:
    """Yield a hidden staging URL beside ``url``; on success move the store written there into
    place (replacing a store already at ``url``), on failure or interrupt delete it.

    Object storage has no rename: the staged objects are copied server-side, the root
    ``zarr.json`` last, so readers never open a store whose chunks are still arriving.
    """
    fs = filesystem(url, fresh=True)
    root = _key(url)
    bucket, _, prefix = root.partition("/")
    if not prefix:
        raise InputError(f"{url}: give a store name under the bucket, e.g. {url.rstrip('/')}/landuse.zarr")
    _check_bucket(fs, url, doing="write")
    try:
        existing = fs.find(root, maxdepth=1, withdirs=True)
    except Exception as exc:
        raise storage_error(url, exc, doing="write") from exc
    if existing and not fs.exists(f"{root}/zarr.json"):
        raise InputError(
            f"{url} holds other objects and is not a Zarr store; carbonscape will not replace it (that would delete "
            f"them). Give a new prefix for the store, e.g. {url.rstrip('/')}/landuse.zarr"
        )
    parent, _, name = root.rpartition("/")
    staging = f"{parent}/.{name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        # Credentials that may read but not write are found now, not after the whole pass.
        fs.pipe_file(f"{staging}/.carbonscape-writing", b"")
    except Exception as exc:
        raise storage_error(url, exc, doing="write") from exc
    replacing = False
    try:
        yield f"s3://{staging}"
        fs.rm_file(f"{staging}/.carbonscape-writing")
        fs.invalidate_cache()
        files = sorted(fs.find(staging))
        meta = f"{staging}/zarr.json"
        replacing = True  # from here on, what stands at ``root`` is partly old, partly new
        if fs.exists(root):
            with contextlib.suppress(FileNotFoundError):
                fs.rm_file(f"{root}/zarr.json")  # the old store stops being a store first
            fs.rm(root, recursive=True)
        body = [f for f in files if f != meta]
        if body:
            fs.copy(body, [root + f[len(staging):] for f in body])
        fs.copy(meta, f"{root}/zarr.json")
        fs.invalidate_cache()
    except BaseException:
        # Removed now and again when the executor closes: a chunk task still running on a worker
        # may put its chunk after this removal (it did, on Ctrl-C).
        leftovers.abandon(lambda: fs.rm(staging, recursive=True))
        if replacing:
            # Interrupted while the store was being copied into place (its root zarr.json goes
            # last): the objects copied so far are no store, and would block the next attempt
            # ("holds other objects"). The old store, if any, was already removed.
            leftovers.abandon(lambda: fs.rm(root, recursive=True))
        raise
    finally:
        with contextlib.suppress(Exception):
            fs.rm(staging, recursive=True)
