"""Speed of `carbonscape check`'s land-use code scan (``carbonscape.study.scan_codes``).

Moved here from the unit tests (a timed assertion in a unit test fails on a loaded machine and
proves nothing on a fast one). Usage, from the repository root::

    python benchmarks/scan_codes.py --rows 4000 --cols 10000

It writes a tiled uint8 GeoTIFF of ``rows × cols`` pixels (512² blocks, codes 0..9 in equal
numbers), scans it, checks the counts are exact, and prints the time and the throughput. The
former unit test asked for 4·10^7 pixels in under 5 s; 10^8 took about 0.5 s on one core.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from carbonscape.study import scan_codes


def write_raster(path: Path, rows: int, cols: int) -> Path:
    profile = dict(driver="GTiff", width=cols, height=rows, count=1, dtype="uint8", crs="EPSG:32648",
                   transform=rasterio.transform.from_origin(0, 0, 30, 30), nodata=255, tiled=True, blockxsize=512, blockysize=512)
    band = np.tile(np.arange(10, dtype=np.uint8), (512, cols // 10))
    with rasterio.open(path, "w", **profile) as dst:
        for row in range(0, rows, 512):
            height = min(512, rows - row)
            dst.write(band[:height], 1, window=rasterio.windows.Window(0, row, cols, height))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--cols", type=int, default=10_000, help="a multiple of 10")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = write_raster(Path(tmp) / "big.tif", args.rows, args.cols)
        best = float("inf")
        for _ in range(args.repeats):
            started = time.perf_counter()
            found = scan_codes(path)
            best = min(best, time.perf_counter() - started)
        assert found == {code: args.rows * args.cols // 10 for code in range(10)}, found
    pixels = args.rows * args.cols
    print(json.dumps({"pixels": pixels, "best_s": round(best, 3), "mpx_per_s": round(pixels / best / 1e6, 1)}))


if __name__ == "__main__":
    main()
