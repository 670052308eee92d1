"""Build the small inputs of tests/test_change_invest.py (run once; outputs are committed).

A 60 × 80 synthetic region (30 m, UTM 48N) from carbonscape.synthetic, the demo's Central Yunnan
pools table, and a later map with conversions (cropland → arbor forest in diagonal stripes,
cropland and grassland → built-up near the built-up patches) and a nodata mask that differs from
the base map's (some pixels nodata in one map only, some in both).
"""

from pathlib import Path

import numpy as np
import rasterio
from carbonscape.synthetic import make_region

here = Path(__file__).parent
region = make_region(here / "_region", shape=(60, 80), pixel_size=30.0, n_counties=3, seed=11, nodata_fraction=0.0)
with rasterio.open(region.landuse) as src:
    base = src.read(1)
    profile = src.profile
profile.update(nodata=255, tiled=False, compress="deflate")
rng = np.random.default_rng(11)
rows, cols = np.mgrid[0 : base.shape[0], 0 : base.shape[1]]
alt = base.copy()
alt[(base == 1) & (((rows // 7) + (cols // 7)) % 3 == 0)] = 2
near_built = np.zeros_like(base, dtype=bool)
built = base == 9
near_built[1:, :] |= built[:-1, :]
near_built[:, 1:] |= built[:, :-1]
alt[near_built & np.isin(base, [1, 6]) & (rng.random(base.shape) < 0.5)] = 9
base = base.astype(np.uint8)
alt = alt.astype(np.uint8)
base[rng.random(base.shape) < 0.01] = 255
alt[rng.random(base.shape) < 0.01] = 255
alt[5:8, 10:14] = 255  # a block nodata in the later map only
for name, array in (("lulc_bas.tif", base), ("lulc_alt.tif", alt)):
    with rasterio.open(here / name, "w", **profile) as dst:
        dst.write(array, 1)
print("changed pixels", int(((base != alt) & (base != 255) & (alt != 255)).sum()), "of", base.size)
