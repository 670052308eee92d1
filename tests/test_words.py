"""A user's own study speaks of what it computes, never of the 2025 Central Yunnan paper, and an
ordinary run puts no raw library warning on stderr (geopandas' area warning, pyogrio's layers)."""

import re
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely
from carbonscape.study import settings
from rasterio.transform import from_origin


def _console() -> list[str]:
    script = Path(sys.executable).with_name("carbonscape")
    return [str(script)] if script.exists() else [sys.executable, "-m", "carbonscape.cli.main"]


def geographic_study(folder: Path) -> Path:
    """Land use and counties in lon/lat (as MODIS land cover and most county files come)."""
    codes = (np.indices((120, 180)).sum(0) % 4 + 1).astype("uint8")
    with rasterio.open(folder / "lu.tif", "w", driver="GTiff", width=180, height=120, count=1, dtype="uint8", crs="EPSG:4326",
                       transform=from_origin(102, 25, 0.005, 0.005), nodata=255) as dst:
        dst.write(codes, 1)
    names = ["甲县", "乙县", "丙县"]
    counties = gpd.GeoDataFrame({"name": names}, geometry=[shapely.box(102 + i * 0.3, 24.4, 102.3 + i * 0.3, 25) for i in range(3)],
                                crs="EPSG:4326")
    counties.to_file(folder / "c.gpkg", layer="counties")
    counties.iloc[:1].to_file(folder / "c.gpkg", layer="outline")  # a second layer, named in the study
    (folder / "pools.csv").write_text("lucode,c_above,c_below,c_soil,c_dead\n1,50,10,100,5\n2,5,2,80,1\n3,10,3,60,2\n4,0,0,20,0\n")
    pd.DataFrame({"name": names, "population": [1000, 2000, 3000]}).to_csv(folder / "p.csv", index=False)
    study = folder / "s.toml"
    study.write_text('[landuse]\nrasters = ["lu.tif"]\n[counties]\npath = "c.gpkg"\nid_field = "name"\nlayer = "counties"\n'
                     '[pools]\npath = "pools.csv"\n[demand]\ntable = "p.csv"\nper_capita_t = 4.0\n'
                     '[zoning]\nmethod = "jenks"\nk = 2\nscheme = "classes"\n[outputs]\nreport = true\nmaps = true\n', encoding="utf-8")
    return study


def test_an_ordinary_run_in_lon_lat_has_no_library_warning_and_no_paper(tmp_path):
    study = geographic_study(tmp_path)
    check = subprocess.run([*_console(), "check", str(study)], capture_output=True, text=True, timeout=600)
    assert check.returncode == 0 and check.stderr == "", check.stderr
    assert "geographic (EPSG:4326)" in check.stdout
    done = subprocess.run([*_console(), "run", str(study), "--scheduler", "threads", "--no-progress"], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert "Results from 'area'" not in done.stderr and "More than one layer" not in done.stderr
    assert "Warning" not in done.stderr and "WARNING" not in done.stderr, done.stderr
    # run.json's input fingerprints are hex digests, which may hold "2025" by chance: left out.
    run_json = re.sub(r"\b[0-9a-f]{32,}\b", "<digest>", (tmp_path / "results" / "run.json").read_text(encoding="utf-8"))
    for text in (done.stdout, (tmp_path / "results" / "demand_totals.csv").read_text(encoding="utf-8"), run_json):
        assert "2025" not in text and "paper" not in text.lower(), text


def test_the_template_a_user_starts_from_does_not_name_the_paper():
    text = settings.template()
    assert "2025" not in text and "paper" not in text.lower()
