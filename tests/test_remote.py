"""Object storage and remote inputs against real local servers the tests start: an S3-compatible
server (moto in server mode) and an HTTP server that answers range requests. The tables of a run
through them equal the local-disk run byte for byte; bad endpoints, credentials and buckets are
clear errors that leave nothing behind."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.shutil
from carbonscape import ingest, open_store, rasterize_zones, remote, supply
from carbonscape.cluster import executor
from carbonscape.errors import InputError, StorageError
from carbonscape.synthetic import make_region

try:
    import s3fs  # noqa: F401
    from moto.server import ThreadedMotoServer
except ImportError as exc:  # a development .venv made before these dependencies were added
    if os.environ.get("CI"):
        raise
    pytest.skip(f"{exc.name} is not installed: `pip install -e '.[test]'` again", allow_module_level=True)

CLI = [sys.executable, "-m", "carbonscape.cli.main"]
TABLES = ("supply_by_county", "supply_by_class", "supply_by_county_class", "supply_by_pool")
BUCKET = "carbon-test"
# No real credentials or metadata services: botocore and GDAL must never look beyond this machine.
SAFE = {"AWS_EC2_METADATA_DISABLED": "true", "CPL_AWS_AUTODETECT_EC2": "NO", "AWS_MAX_ATTEMPTS": "1",
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_CONFIG_FILE": os.devnull, "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3():
    """A moto S3 server on 127.0.0.1 with one bucket; the AWS_* environment a user would set."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {**SAFE, "AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "carbonscape", "AWS_SECRET_ACCESS_KEY": "secret"}
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        fs = remote.filesystem("s3://x", fresh=True)
        fs.mkdir(BUCKET)
        yield env, fs
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()


class _RangeHandler(SimpleHTTPRequestHandler):
    """A static file server that answers ``Range: bytes=a-b`` with 206 (http.server does not)."""

    ranges: list[str] = []

    def log_message(self, *args: object) -> None:
        pass

    def send_head(self):  # noqa: ANN201
        header = self.headers.get("Range")
        path = Path(self.translate_path(self.path))
        if not header or not path.is_file():
            return super().send_head()
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", header.strip())
        size = path.stat().st_size
        if not match:
            self.send_error(416)
            return None
        start = int(match[1])
        end = min(int(match[2]) if match[2] else size - 1, size - 1)
        type(self).ranges.append(header)
        handle = path.open("rb")
        handle.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", "image/tiff")
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        return _Slice(handle, end - start + 1)


class _Slice:
    def __init__(self, handle, length: int) -> None:
        self.handle, self.left = handle, length

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = self.handle.read(n)
        self.left -= len(data)
        return data

    def close(self) -> None:
        self.handle.close()


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    base = tmp_path_factory.mktemp("remote")
    made = make_region(base / "in", shape=(600, 500), n_counties=8, seed=3)
    cog = base / "web" / "landuse_cog.tif"
    cog.parent.mkdir()
    rasterio.shutil.copy(made.landuse, cog, driver="COG", BLOCKSIZE=128)
    lu = ingest(made.landuse, base / "lu.zarr", chunk=128, scheduler="threads")
    zones = rasterize_zones(made.counties, like=lu, id_field="county", out=base / "z.zarr", scheduler="threads")
    supply(lu, zones, made.pools, out=base / "local", scheduler="threads")
    return made, cog, lu, base


@pytest.fixture(scope="module")
def http(region):
    _, cog, _, _ = region
    _RangeHandler.ranges = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_RangeHandler, directory=str(cog.parent)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    progress = [] if args[0] == "check" else ["--no-progress"]
    return subprocess.run([*CLI, *args, *progress], capture_output=True, text=True, timeout=300, cwd=cwd, env={**os.environ, **env})


def _same_tables(out: Path, local: Path) -> None:
    for table in TABLES:
        assert (out / f"{table}.csv").read_bytes() == (local / f"{table}.csv").read_bytes(), table


def _keys(fs, prefix: str = BUCKET) -> list[str]:
    fs.invalidate_cache()
    return sorted(fs.find(prefix))


def test_ingest_zones_and_supply_through_s3_equal_the_local_run_byte_for_byte(s3, region, tmp_path):
    env, fs = s3
    made, _, _, base = region
    fs.put(str(made.landuse), f"{BUCKET}/in/landuse.tif")
    steps = [
        ["ingest", f"s3://{BUCKET}/in/landuse.tif", "--out", f"s3://{BUCKET}/lu.zarr", "--chunk", "128"],
        ["zones", str(made.counties), "--like", f"s3://{BUCKET}/lu.zarr", "--id-field", "county", "--out", f"s3://{BUCKET}/z.zarr"],
        ["supply", "--landuse", f"s3://{BUCKET}/lu.zarr", "--zones", f"s3://{BUCKET}/z.zarr", "--pools", str(made.pools), "--out", "out"],
    ]
    for step in steps:
        # Worker processes: every task that reads or writes the bucket is pickled to another process.
        done = _cli([*step, "--scheduler", "processes"], env, tmp_path)
        assert done.returncode == 0, done.stderr
    _same_tables(tmp_path / "out", base / "local")
    keys = _keys(fs)
    assert f"{BUCKET}/lu.zarr/landuse/c/4/3" in keys and f"{BUCKET}/z.zarr/zarr.json" in keys
    assert not [k for k in keys if ".tmp-" in k], "staging objects left behind"
    # The stores read back equal the local ones, pixel for pixel, with the code counts recorded.
    local, there = open_store(base / "lu.zarr"), open_store(f"s3://{BUCKET}/lu.zarr")
    assert np.array_equal(local.data.compute(), there.data.compute())
    assert there.attrs["code_counts"] == local.attrs["code_counts"] and there.grid == local.grid
    # Ingest again: up to date (the ETag and size of the source), nothing rewritten.
    again = _cli(steps[0], env, tmp_path)
    assert again.returncode == 0 and "up to date" in again.stderr, again.stderr


def test_fraction_mode_zones_on_s3_keep_their_rings_there_and_equal_the_local_run(s3, region, tmp_path):
    """`zones --coverage fraction --out s3://…` crashed ('FsspecStore' has no 'root'): the chunks'
    county rings are objects of the store in the bucket, and supply reads them back."""
    env, fs = s3
    made, _, lu, base = region
    zones_local = rasterize_zones(made.counties, like=lu, id_field="county", out=base / "zf.zarr", coverage="fraction", scheduler="threads")
    supply(lu, zones_local, made.pools, out=tmp_path / "local", scheduler="threads")
    steps = [
        ["ingest", str(made.landuse), "--out", f"s3://{BUCKET}/luf.zarr", "--chunk", "128"],
        ["zones", str(made.counties), "--like", f"s3://{BUCKET}/luf.zarr", "--id-field", "county", "--coverage", "fraction",
         "--out", f"s3://{BUCKET}/zf.zarr"],
        ["supply", "--landuse", f"s3://{BUCKET}/luf.zarr", "--zones", f"s3://{BUCKET}/zf.zarr", "--pools", str(made.pools), "--out", "out"],
    ]
    for step in steps:
        done = _cli([*step, "--scheduler", "processes"], env, tmp_path)
        assert done.returncode == 0, done.stderr
    keys = _keys(fs, f"{BUCKET}/zf.zarr")
    assert any(k.endswith(".rings.npz") for k in keys), keys
    assert not [k for k in _keys(fs) if ".tmp-" in k]
    _same_tables(tmp_path / "out", tmp_path / "local")


def test_a_cog_over_http_is_read_by_range_requests_and_gives_the_same_tables(http, region, tmp_path):
    made, cog, lu, base = region
    url = f"{http}/{cog.name}"
    store = ingest(url, tmp_path / "lu.zarr", chunk=128, scheduler="threads")
    assert np.array_equal(open_store(store).data.compute(), open_store(lu).data.compute())
    assert _RangeHandler.ranges, "GDAL read the COG without range requests"
    zones = rasterize_zones(made.counties, like=store, id_field="county", out=tmp_path / "z.zarr", scheduler="threads")
    supply(store, zones, made.pools, out=tmp_path / "out", scheduler="threads")
    _same_tables(tmp_path / "out", base / "local")


def test_a_missing_http_raster_is_bad_input_naming_the_url(http, tmp_path):
    with pytest.raises(InputError, match=re.escape(f"{http}/nothing.tif")):
        ingest(f"{http}/nothing.tif", tmp_path / "lu.zarr", scheduler="threads")
    assert not (tmp_path / "lu.zarr").exists()


def test_unreachable_endpoint_is_an_infrastructure_error_naming_the_url(s3, region, tmp_path):
    env, _ = s3
    made, _, _, _ = region
    closed = {**env, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    done = _cli(["ingest", f"s3://{BUCKET}/in/landuse.tif", "--out", str(tmp_path / "lu.zarr")], closed, tmp_path)
    assert done.returncode == 1, done.stderr
    assert f"s3://{BUCKET}/in/landuse.tif: could not reach http://127.0.0.1:9" in done.stderr and "Traceback" not in done.stderr
    done = _cli(["ingest", str(made.landuse), "--out", f"s3://{BUCKET}/never.zarr"], closed, tmp_path)
    assert done.returncode == 1 and f"s3://{BUCKET}/never.zarr: could not reach" in done.stderr, done.stderr


def test_missing_credentials_are_bad_input_naming_the_url_and_the_variables(s3, region, tmp_path):
    env, fs = s3
    made, _, _, _ = region
    anonymous = {key: value for key, value in env.items() if not key.startswith("AWS_ACCESS_KEY") and not key.startswith("AWS_SECRET")}
    clean = {key: value for key, value in os.environ.items() if key not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    done = subprocess.run([*CLI, "ingest", str(made.landuse), "--out", f"s3://{BUCKET}/nocreds.zarr", "--no-progress"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path, env={**clean, **anonymous})
    assert done.returncode == 2, done.stderr
    assert f"s3://{BUCKET}/nocreds.zarr: no credentials" in done.stderr and "AWS_ACCESS_KEY_ID" in done.stderr
    assert not [k for k in _keys(fs) if "nocreds" in k]


def test_a_missing_bucket_is_bad_input_and_nothing_is_written(s3, region, tmp_path):
    env, fs = s3
    made, _, _, _ = region
    done = _cli(["ingest", "s3://no-such-bucket/lu.tif", "--out", str(tmp_path / "lu.zarr")], env, tmp_path)
    assert done.returncode == 2 and "s3://no-such-bucket/lu.tif: the bucket 'no-such-bucket' does not exist" in done.stderr, done.stderr
    assert not (tmp_path / "lu.zarr").exists()
    done = _cli(["ingest", str(made.landuse), "--out", "s3://no-such-bucket/lu.zarr"], env, tmp_path)
    assert done.returncode == 2 and "bucket 'no-such-bucket' does not exist" in done.stderr, done.stderr
    done = _cli(["supply", "--landuse", f"s3://{BUCKET}/absent.zarr", "--zones", f"s3://{BUCKET}/absent.zarr", "--pools", str(made.pools),
                 "--out", "out"], env, tmp_path)
    assert done.returncode == 2 and f"s3://{BUCKET}/absent.zarr: no such store" in done.stderr, done.stderr
    assert not (tmp_path / "out").exists()


def test_a_failed_write_leaves_no_store_and_keeps_the_old_one(s3, region, monkeypatch):
    _, fs = s3
    made, _, _, _ = region
    url = f"s3://{BUCKET}/kept.zarr"
    ingest(made.landuse, url, chunk=128, scheduler="synchronous")
    before = {k: fs.cat_file(k) for k in _keys(fs, f"{BUCKET}/kept.zarr")}
    real = remote.put_bytes
    calls = []

    def failing(target: str, payload: bytes) -> None:
        calls.append(target)
        if len(calls) == 7:
            raise OSError("disk on fire")
        real(target, payload)

    monkeypatch.setattr(remote, "put_bytes", failing)
    with pytest.raises(OSError, match="disk on fire"):
        ingest(made.landuse, url, chunk=128, force=True, scheduler="synchronous")
    calls.clear()
    with pytest.raises(OSError, match="disk on fire"):
        ingest(made.landuse, f"s3://{BUCKET}/fresh.zarr", chunk=128, scheduler="synchronous")
    keys = _keys(fs)
    assert not [k for k in keys if ".tmp-" in k or "fresh.zarr" in k], keys
    assert {k: fs.cat_file(k) for k in _keys(fs, f"{BUCKET}/kept.zarr")} == before


def test_a_chunk_put_after_an_interrupt_is_swept_when_the_executor_closes(s3, region, monkeypatch):
    """Ctrl-C mid-ingest: the staging prefix is removed at once, but a chunk task still running
    may put its chunk after that; the executor's close removes it again (a user found such
    ``.lu.zarr.tmp-…/landuse/c/0/0`` objects left in the bucket)."""
    _, fs = s3
    made, _, _, _ = region
    real = remote.put_bytes
    calls: list[str] = []

    def interrupted(target: str, payload: bytes) -> None:
        calls.append(target)
        if len(calls) == 5:
            raise KeyboardInterrupt
        real(target, payload)

    monkeypatch.setattr(remote, "put_bytes", interrupted)
    with executor("synchronous") as active:
        with pytest.raises(KeyboardInterrupt):
            ingest(made.landuse, f"s3://{BUCKET}/late.zarr", chunk=128, run=active)
        assert not [k for k in _keys(fs) if ".tmp-" in k]
        real(calls[0], b"a chunk that arrived late")  # a worker's task finishing after the interrupt
        fs.invalidate_cache()
        assert [k for k in _keys(fs) if ".tmp-" in k]
    fs.invalidate_cache()
    keys = _keys(fs)
    assert not [k for k in keys if ".tmp-" in k or "late.zarr" in k], keys


def test_a_failure_while_the_store_is_copied_into_place_leaves_no_rootless_store(s3, monkeypatch):
    """Ctrl-C during the copy from staging to the final prefix left chunks without a root
    zarr.json, which then blocked the next ingest ("holds other objects"). A connection lost
    after the first object is copied takes the same path."""
    _, fs = s3
    import s3fs

    url = f"s3://{BUCKET}/cut.zarr"
    real = s3fs.S3FileSystem._copy

    async def copy_then_fail(self, path1, path2, *args, **kwargs):
        await real(self, path1[:1], path2[:1], *args, **kwargs)
        raise OSError("connection dropped")

    # fsspec binds an instance's sync methods when it is made: patch before staged_store makes its own.
    monkeypatch.setattr(s3fs.S3FileSystem, "_copy", copy_then_fail)
    with pytest.raises(OSError, match="connection dropped"), executor("synchronous"):
        with remote.staged_store(url) as staging:
            for key in ("landuse/c/0/0", "landuse/c/0/1", "landuse/zarr.json", "zarr.json"):
                remote.put_bytes(f"{staging}/{key}", b"x")
    monkeypatch.undo()
    keys = _keys(fs)
    assert not [k for k in keys if "cut.zarr" in k], keys


def test_results_are_refused_an_object_storage_url(region, tmp_path):
    """`supply --out s3://…` wrote a local folder named `s3:`; results folders are local."""
    made, _, lu, base = region
    with pytest.raises(InputError, match="results .* are written to a local folder"):
        supply(lu, base / "z.zarr", made.pools, out=f"s3://{BUCKET}/res", scheduler="synchronous")
    assert not (tmp_path / "s3:").exists() and not Path("s3:").exists()


def test_an_http_server_that_does_not_answer_is_an_infrastructure_error(tmp_path):
    done = _cli(["ingest", "http://127.0.0.1:9/landuse.tif", "--out", str(tmp_path / "lu.zarr")], dict(os.environ), tmp_path)
    assert done.returncode == 1, done.stderr
    assert "http://127.0.0.1:9/landuse.tif: could not reach 127.0.0.1:9" in done.stderr and "no such object" not in done.stderr
    assert not (tmp_path / "lu.zarr").exists()


def test_a_prefix_of_other_objects_is_not_replaced(s3, region):
    _, fs = s3
    made, _, _, _ = region
    fs.pipe_file(f"{BUCKET}/folder/notes.txt", b"keep me")
    with pytest.raises(InputError, match="not a Zarr store; carbonscape will not replace it"):
        ingest(made.landuse, f"s3://{BUCKET}/folder", scheduler="synchronous")
    assert fs.cat_file(f"{BUCKET}/folder/notes.txt") == b"keep me"


def test_gdal_options_translate_the_aws_endpoint(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    assert remote.gdal_options() | {} == {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "AWS_S3_ENDPOINT": "127.0.0.1:9000",
                                          "AWS_HTTPS": "NO", "AWS_VIRTUAL_HOSTING": "FALSE"}
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "https://minio.example.org")
    assert remote.gdal_options()["AWS_S3_ENDPOINT"] == "minio.example.org" and remote.gdal_options()["AWS_HTTPS"] == "YES"
    assert isinstance(StorageError("x"), Exception)


STUDY = """
[study]
name = "remote study"

[landuse]
rasters = ["{where}/landuse.tif"]
chunk = 256

[counties]
path = "{where}/counties.gpkg"
id_field = "county"

[pools]
path = "{where}/pools.csv"

[demand]
table = "{where}/population.csv"
key = "county"
per_capita_t = 1.2

[zoning]
method = "jenks"
k = 3
scheme = "classes"

[outputs]
maps = false
report = false
{outputs}
"""
STUDY_TABLES = (*TABLES, "ratio_zones", "demand_by_county")


def _study_inputs(made, folder: Path) -> Path:
    """The region's inputs and a population table in ``folder`` (the local twin of the bucket)."""
    import geopandas as gpd
    import pandas as pd

    folder.mkdir(exist_ok=True)
    ids = gpd.read_file(made.counties)["county"]
    pd.DataFrame({"county": ids, "population": [10_000 * (i + 1) for i in range(len(ids))]}).to_csv(folder / "population.csv", index=False)
    for source in (made.landuse, made.counties, made.pools):
        (folder / source.name).write_bytes(source.read_bytes())
    return folder


def test_a_study_reads_its_inputs_from_s3_and_keeps_its_stores_there(s3, region, tmp_path):
    """A study whose inputs are all s3:// URLs and whose stores go to an s3:// prefix (what a cloud
    cluster with no shared disk needs): its tables equal the same study on local files byte for
    byte; run.json records each remote input by URL and ETag; `check` reads the URLs too."""
    env, fs = s3
    made, _, _, _ = region
    local = _study_inputs(made, tmp_path / "local")
    for name in ("landuse.tif", "counties.gpkg", "pools.csv", "population.csv"):
        fs.put(str(local / name), f"{BUCKET}/study-in/{name}")
    (local / "study.toml").write_text(STUDY.format(where=".", outputs=""), encoding="utf-8")
    remote_study = tmp_path / "remote.toml"
    remote_study.write_text(STUDY.format(where=f"s3://{BUCKET}/study-in", outputs=f'stores = "s3://{BUCKET}/study-stores"'),
                            encoding="utf-8")

    done = _cli(["check", str(remote_study)], env, tmp_path)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "landuse.tif" in done.stdout and "population.csv" in done.stdout
    for study, out in ((local / "study.toml", tmp_path / "out-local"), (remote_study, tmp_path / "out-s3")):
        done = _cli(["run", str(study), "--out", str(out), "--scheduler", "processes"], env, tmp_path)
        assert done.returncode == 0, done.stderr
    for table in STUDY_TABLES:
        assert (tmp_path / "out-s3" / f"{table}.csv").read_bytes() == (tmp_path / "out-local" / f"{table}.csv").read_bytes(), table
    keys = _keys(fs)
    assert f"{BUCKET}/study-stores/landuse.zarr/zarr.json" in keys
    # The counties' ids are burned inside the supply pass: a plain run writes no zone store.
    assert not any(key.startswith(f"{BUCKET}/study-stores/zones.zarr") for key in keys)
    assert not (tmp_path / "out-s3" / "stores").exists(), "the stores went to the bucket, not the results folder"
    import json

    inputs = {item["role"]: item for item in json.loads((tmp_path / "out-s3" / "run.json").read_text())["inputs"]}
    assert inputs["landuse"]["path"] == f"s3://{BUCKET}/study-in/landuse.tif" and inputs["landuse"]["etag"]
    assert inputs["demand"]["path"] == f"s3://{BUCKET}/study-in/population.csv"
    assert "carbonscape-input-" not in (tmp_path / "out-s3" / "run.json").read_text()


def test_a_study_input_missing_from_the_bucket_is_named_by_check(s3, region, tmp_path):
    env, fs = s3
    made, _, _, _ = region
    local = _study_inputs(made, tmp_path / "local")
    for name in ("landuse.tif", "counties.gpkg", "pools.csv"):  # no population.csv
        fs.put(str(local / name), f"{BUCKET}/half/{name}")
    study = tmp_path / "study.toml"
    study.write_text(STUDY.format(where=f"s3://{BUCKET}/half", outputs=""), encoding="utf-8")
    done = _cli(["check", str(study)], env, tmp_path)
    assert done.returncode == 2, done.stderr + done.stdout
    assert f"s3://{BUCKET}/half/population.csv: no such object" in done.stderr + done.stdout
    assert "carbonscape-input-" not in done.stderr + done.stdout and "Traceback" not in done.stderr
    done = _cli(["run", str(study), "--out", str(tmp_path / "out")], env, tmp_path)
    assert done.returncode == 2 and not (tmp_path / "out").exists(), done.stderr


def _population_tif(made, path: Path, *, cog: bool = False) -> Path:
    """People per pixel on a grid twice as coarse as the land use's (same CRS and origin), as a
    WorldPop-style float32 GeoTIFF with nodata; a COG when asked (for range requests)."""
    with rasterio.open(made.landuse) as src:
        crs, (a, _, c, _, e, f), height, width = src.crs, tuple(src.transform)[:6], src.height, src.width
    rng = np.random.default_rng(7)
    people = rng.uniform(0, 40, size=((height + 1) // 2, (width + 1) // 2)).astype(np.float32)
    people[:3, :3] = -99999.0  # nodata in a corner
    plain = path.with_suffix(".plain.tif") if cog else path
    with rasterio.open(plain, "w", driver="GTiff", width=people.shape[1], height=people.shape[0], count=1, dtype="float32", crs=crs,
                       transform=rasterio.Affine(2 * a, 0.0, c, 0.0, 2 * e, f), nodata=-99999.0) as dst:
        dst.write(people, 1)
    if cog:
        rasterio.shutil.copy(plain, path, driver="COG", BLOCKSIZE=128)
    return path


def test_a_population_raster_in_s3_gives_the_tables_of_the_local_file(s3, region, tmp_path):
    """`supply --population s3://…` and `run --population s3://…` (workers in other processes
    reading the bucket by range requests) equal the same commands on the local file, byte for byte;
    `check --population s3://…` reads it too."""
    env, fs = s3
    made, _, lu, base = region
    pop = _population_tif(made, tmp_path / "pop.tif")
    fs.put(str(pop), f"{BUCKET}/rasters/pop.tif")
    url = f"s3://{BUCKET}/rasters/pop.tif"
    for where, out in ((str(pop), "out-local"), (url, "out-s3")):
        done = _cli(["supply", "--landuse", str(lu), "--zones", str(base / "z.zarr"), "--pools", str(made.pools), "--out", out,
                     "--population", where, "--scheduler", "processes"], env, tmp_path)
        assert done.returncode == 0, done.stderr
    for table in (*TABLES, "continuous_by_county"):
        assert (tmp_path / "out-s3" / f"{table}.csv").read_bytes() == (tmp_path / "out-local" / f"{table}.csv").read_bytes(), table
    people = __import__("pandas").read_csv(tmp_path / "out-s3" / "continuous_by_county.csv")["sum"]
    assert people.sum() > 0

    local = _study_inputs(made, tmp_path / "study")
    study = local / "study.toml"
    study.write_text(STUDY.format(where=".", outputs=""), encoding="utf-8")
    done = _cli(["check", str(study), "--population", url], env, tmp_path)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "continuous pop.tif: people per pixel" in done.stdout
    for where, out in ((str(pop), tmp_path / "run-local"), (url, tmp_path / "run-s3")):
        done = _cli(["run", str(study), "--out", str(out), "--population", where, "--scheduler", "processes"], env, tmp_path)
        assert done.returncode == 0, done.stderr
    for table in (*STUDY_TABLES, "continuous_by_county"):
        assert (tmp_path / "run-s3" / f"{table}.csv").read_bytes() == (tmp_path / "run-local" / f"{table}.csv").read_bytes(), table
    import json

    run = json.loads((tmp_path / "run-s3" / "run.json").read_text())
    assert run["continuous"]["population"]["path"] == url
    inputs = {item["role"]: item for item in run["inputs"]}
    assert inputs["population"]["path"] == url and inputs["population"]["etag"]
    # A URL of nothing: check names it (exit 2), before any compute.
    done = _cli(["check", str(study), "--population", f"s3://{BUCKET}/rasters/none.tif"], env, tmp_path)
    assert done.returncode == 2 and f"s3://{BUCKET}/rasters/none.tif: no such object" in done.stderr, done.stderr


def test_a_population_cog_over_http_gives_the_tables_of_the_local_file(http, region, tmp_path):
    from carbonscape.continuous import supply_with_rasters

    made, cog, lu, base = region
    pop = _population_tif(made, cog.parent / "pop_cog.tif", cog=True)
    _RangeHandler.ranges = []
    there = supply_with_rasters(lu, base / "z.zarr", made.pools, out=tmp_path / "http", population=f"{http}/{pop.name}", scheduler="threads")
    assert _RangeHandler.ranges, "GDAL read the population COG without range requests"
    here = supply_with_rasters(lu, base / "z.zarr", made.pools, out=tmp_path / "local", population=pop, scheduler="threads")
    assert (tmp_path / "http" / "continuous_by_county.csv").read_bytes() == (tmp_path / "local" / "continuous_by_county.csv").read_bytes()
    assert there.provenance["population"]["path"] == f"{http}/{pop.name}" and here.values["population"]["sum_va"].sum() > 0
