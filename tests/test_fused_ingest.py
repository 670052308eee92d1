"""`run` ingests the land use in the supply pass itself (each chunk read from the GeoTIFF once,
written to the staged store and counted in one task): the store it leaves must be the one
`carbonscape ingest` writes, byte for byte, the tables those of ingest-then-supply, and a failed
pass must leave no store behind."""

import json

import numpy as np
import pandas as pd
import pytest
from carbonscape import ingest, run_study, supply
from carbonscape.accumulate import COUNTS, ClassIndex, Layout, accumulate
from carbonscape.carbon import UnknownCodesError, read_pools
from carbonscape.cluster import executor
from carbonscape.io import ingesting, source_fingerprint, store_is_current
from carbonscape.rasterize import lazy_zones
from carbonscape.study import pipeline
from carbonscape.synthetic import make_region
from conftest import REGION_INPUTS, demand_zoning

STUDY = """
[study]
name = "Fused ingest"
year = 2020
""" + REGION_INPUTS + demand_zoning(6.9) + """
[outputs]
maps = false
report = false
"""


def study_text(*, fraction: bool = False, pools: str = "region/pools.csv") -> str:
    """STUDY in centre or fraction coverage, with its pools table at ``pools``."""
    text = STUDY.replace('path = "region/pools.csv"', f'path = "{pools}"')
    return text.replace('id_field = "county"\n', 'id_field = "county"\ncoverage = "fraction"\n') if fraction else text

TABLES = ("supply_by_county", "supply_by_class", "supply_by_county_class", "supply_by_pool", "demand_by_county", "ratio_zones")


def _store_files(store):
    """Every file of a store (metadata and chunks) by its path inside the store."""
    return {str(p.relative_to(store)): p.read_bytes() for p in sorted(store.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def study_dir(small_study):
    # 700 × 600 pixels in 256² chunks: 3 × 3 chunks, edge chunks, counties crossing chunk edges, some nodata.
    base = small_study("fused-ingest", shape=(700, 600), n_counties=11, seed=5, population=lambda n: np.arange(1, n + 1) * 7_000).base
    for name, fraction in (("study.toml", False), ("fraction.toml", True)):
        (base / name).write_text(study_text(fraction=fraction), encoding="utf-8")
    return base


@pytest.mark.parametrize("study", ["study.toml", "fraction.toml"])
def test_a_run_ingesting_in_the_supply_pass_equals_ingest_then_supply(study_dir, monkeypatch, study):
    """The same store files (chunks, metadata, code counts, fingerprint) and the same table bytes as
    the two-pass run, centre and fraction coverage, on a LocalCluster."""
    calls = []
    real = pipeline.ingest
    monkeypatch.setattr(pipeline, "ingest", lambda *a, **k: calls.append(1) or real(*a, **k))
    fused = study_dir / f"fused-{study}"
    run_study(study_dir / study, out=fused)
    assert not calls, "a plain run must not run ingest's own pass"
    assert not (fused / "stores" / "zones.zarr").exists()
    monkeypatch.setattr(pipeline, "_fuses_ingest", lambda s: False)
    apart = study_dir / f"apart-{study}"
    run_study(study_dir / study, out=apart)
    assert calls
    store_fused, store_apart = _store_files(fused / "stores" / "landuse.zarr"), _store_files(apart / "stores" / "landuse.zarr")
    assert len([k for k in store_fused if k.startswith("landuse/c/")]) == 9
    assert store_fused == store_apart  # chunks, zarr.json, code_counts and fingerprint: byte for byte
    attrs = json.loads(store_fused["zarr.json"])["attributes"]
    assert attrs["code_counts"] and attrs["carbonscape_kind"] == "landuse"
    fingerprint = source_fingerprint([str(study_dir / "region" / "landuse.tif")], 256)
    assert store_is_current(fused / "stores" / "landuse.zarr", fingerprint, "carbonscape_source")
    for table in TABLES:
        assert (fused / f"{table}.csv").read_bytes() == (apart / f"{table}.csv").read_bytes(), table
    assert not [p.name for p in (fused / "stores").iterdir() if p.name.startswith(".")], "staging left behind"


def test_a_rerun_reads_the_current_store_and_writes_nothing_into_it(study_dir):
    out = study_dir / "rerun"
    run_study(study_dir / "study.toml", out=out, scheduler="threads")
    store = out / "stores" / "landuse.zarr"
    before = {p: p.stat().st_mtime_ns for p in store.rglob("*")}
    tables = {t: (out / f"{t}.csv").read_bytes() for t in TABLES}
    run_study(study_dir / "study.toml", out=out, scheduler="threads")
    assert {p: p.stat().st_mtime_ns for p in store.rglob("*")} == before
    for table in TABLES:
        assert (out / f"{table}.csv").read_bytes() == tables[table], table


def test_codes_missing_from_the_pools_table_fail_the_run_and_leave_no_store(study_dir, tmp_path):
    """The fused run names the unknown codes and their pixels as supply after ingest does (from the
    pass's own histogram), and leaves no store, staged or final."""
    pools = pd.read_csv(study_dir / "region" / "pools.csv")
    dropped = pools.iloc[:2]
    pools.iloc[2:].to_csv(tmp_path / "pools.csv", index=False)
    study = tmp_path / "study.toml"
    study.write_text(study_text(pools=(tmp_path / "pools.csv").as_posix()).replace('"region/', f'"{study_dir.as_posix()}/region/')
                     .replace('"population.csv"', f'"{(study_dir / "population.csv").as_posix()}"'), encoding="utf-8")
    stores = tmp_path / "stores"
    study.write_text(study.read_text() + f'stores = "{stores.as_posix()}"\n', encoding="utf-8")
    with pytest.raises(UnknownCodesError) as fused:
        run_study(study, out=tmp_path / "out", scheduler="threads")
    message = str(fused.value)
    for code in dropped["lucode"]:
        assert f" {code} (" in message
    assert not stores.exists() or not any(stores.iterdir()), sorted(p.name for p in stores.iterdir())
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    # The two-pass run's message names the same codes and pixel counts.
    ingest([study_dir / "region" / "landuse.tif"], tmp_path / "lu.zarr", chunk=256, scheduler="threads")
    lazy = lazy_zones(study_dir / "region" / "counties.gpkg", like=tmp_path / "lu.zarr", id_field="county")
    with pytest.raises(UnknownCodesError) as apart:
        supply(tmp_path / "lu.zarr", lazy, tmp_path / "pools.csv", scheduler="threads")
    assert message.split(": ", 1)[1] == str(apart.value).split(": ", 1)[1]


def test_a_pass_that_fails_or_never_finishes_leaves_no_store(study_dir, tmp_path):
    source = [study_dir / "region" / "landuse.tif"]
    with pytest.raises(ZeroDivisionError):
        with ingesting(source, tmp_path / "a.zarr", chunk=256) as staged:
            np.asarray(staged.store.data[:300, :300])  # some chunks written to the staging
            raise ZeroDivisionError
    with pytest.raises(RuntimeError, match="without finish"):
        with ingesting(source, tmp_path / "b.zarr", chunk=256) as staged:
            np.asarray(staged.store.data)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_the_pass_writes_each_chunk_inside_its_counting_task(study_dir, tmp_path):
    """The chunk reads-and-writes are root tasks the runner inlines: no task of their own."""
    region = study_dir / "region"
    with ingesting([region / "landuse.tif"], tmp_path / "lu.zarr", chunk=256) as staged:
        land = staged.store
        lazy = lazy_zones(region / "counties.gpkg", like=land, id_field="county")
        layout = Layout(n_counties=len(lazy.attrs["ids"]) + 1, classes=ClassIndex.build(read_pools(region / "pools.csv").codes, nodata=land.nodata),
                        codes=staged.histogram)
        from carbonscape.accumulate import CODE_HISTOGRAM

        tables = accumulate([COUNTS, CODE_HISTOGRAM], lazy.data, {"landuse": land.data}, layout=layout)
        graph = dict(tables["counts"].__dask_graph__())
        assert not [k for k in graph if isinstance(k, tuple) and str(k[0]).startswith("ingest-write-")]
        with executor("threads") as run:
            counts, hist = run.compute(tables["counts"], tables["code_histogram"])
        staged.finish(hist)
    assert counts.sum() == 700 * 600 == hist.sum()
    ingest([region / "landuse.tif"], tmp_path / "apart.zarr", chunk=256, scheduler="threads")
    assert _store_files(tmp_path / "lu.zarr") == _store_files(tmp_path / "apart.zarr")


@pytest.mark.parametrize("coverage", ["centre", "fraction"])
def test_on_a_grid_of_unequal_pixel_areas_the_store_and_tables_are_ingest_then_supply_s(tmp_path, coverage):
    """Web Mercator: counts and true areas in one kernel (COUNTS_AREAS), whose rounded counts give
    the code counts in centre mode; fraction mode counts the histogram in the pass."""
    region = make_region(tmp_path / "region", shape=(520, 600), n_counties=9, seed=11, crs="EPSG:3857")
    with executor(None) as run:  # a LocalCluster
        with ingesting([region.landuse], tmp_path / "fused.zarr", chunk=200) as staged:
            zones = lazy_zones(region.counties, like=staged.store, id_field="county", coverage=coverage)
            fused = supply(staged.store, zones, region.pools, out=tmp_path / "fused", run=run, code_histogram=staged.histogram)
            staged.finish(fused.tables["code_histogram"])
        landuse = ingest([region.landuse], tmp_path / "apart.zarr", chunk=200, run=run)
        supply(landuse, lazy_zones(region.counties, like=landuse, id_field="county", coverage=coverage), region.pools,
               out=tmp_path / "apart", run=run)
    fused_files, apart_files = _store_files(tmp_path / "fused.zarr"), _store_files(tmp_path / "apart.zarr")
    # The fingerprint names the same source; only the store's own name differs nowhere inside it.
    assert fused_files == apart_files
    for table in ("supply_by_county", "supply_by_class", "supply_by_county_class", "supply_by_pool"):
        assert (tmp_path / "fused" / f"{table}.csv").read_bytes() == (tmp_path / "apart" / f"{table}.csv").read_bytes(), table
