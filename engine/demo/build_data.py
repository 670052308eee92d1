"""Build the Central Yunnan demo's data files (run once by a developer; the outputs are committed).

    pip install cnmaps && python -m carbonscape.demo.build_data

Writes into ``engine/demo/data/``: ``counties.gpkg`` (the 49 county boundaries from cnmaps,
simplified as a coverage so neighbours still share their edges), ``pools.csv`` (carbon densities),
``county_class_area.csv`` (hectares of each class in each county, fitted so that supply matches
the paper's Tables 1 and 2), ``counties.csv`` (populations back-computed from Table 3) and
``region.json``. See ``SOURCES.md`` for where every number comes from.
"""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

DATA = Path(__file__).resolve().parent / "data"
ALBERS = "+proj=aea +lat_0=0 +lon_0=105 +lat_1=25 +lat_2=47 +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs"
SIMPLIFY_M = 150.0

# The paper's short names that differ from cnmaps' official ones (autonomous counties; 禄丰县 became
# 禄丰市 in 2021). All other names are identical.
OFFICIAL_NAME = {
    "石林县": "石林彝族自治县",
    "寻甸县": "寻甸回族彝族自治县",
    "禄劝县": "禄劝彝族苗族自治县",
    "峨山县": "峨山彝族自治县",
    "新平县": "新平彝族傣族自治县",
    "元江县": "元江哈尼族彝族傣族自治县",
    "禄丰县": "禄丰市",
}
PINYIN = {
    "五华区": "Wuhua", "盘龙区": "Panlong", "官渡区": "Guandu", "西山区": "Xishan", "呈贡区": "Chenggong",
    "晋宁区": "Jinning", "东川区": "Dongchuan", "安宁市": "Anning", "嵩明县": "Songming", "富民县": "Fumin",
    "石林县": "Shilin", "宜良县": "Yiliang", "寻甸县": "Xundian", "禄劝县": "Luquan", "麒麟区": "Qilin",
    "沾益区": "Zhanyi", "马龙区": "Malong", "宣威市": "Xuanwei", "会泽县": "Huize", "陆良县": "Luliang",
    "富源县": "Fuyuan", "罗平县": "Luoping", "师宗县": "Shizong", "红塔区": "Hongta", "江川区": "Jiangchuan",
    "澄江市": "Chengjiang", "华宁县": "Huaning", "通海县": "Tonghai", "易门县": "Yimen", "峨山县": "Eshan",
    "新平县": "Xinping", "元江县": "Yuanjiang", "楚雄市": "Chuxiong", "双柏县": "Shuangbai", "禄丰县": "Lufeng",
    "武定县": "Wuding", "元谋县": "Yuanmou", "永仁县": "Yongren", "大姚县": "Dayao", "姚安县": "Yao'an",
    "牟定县": "Mouding", "南华县": "Nanhua", "蒙自市": "Mengzi", "个旧市": "Gejiu", "开远市": "Kaiyuan",
    "弥勒市": "Mile", "泸西县": "Luxi", "建水县": "Jianshui", "石屏县": "Shiping",
}
CITY_EN = {"昆明市": "Kunming", "曲靖市": "Qujing", "玉溪市": "Yuxi", "楚雄州": "Chuxiong", "红河州": "Honghe"}

# Classes (lucode, English, Chinese as in the paper's Table 1), the share of the region each is
# given, and how each class's total density splits over the four pools.
CLASSES = [
    # lucode, name, name_zh, area share, (above, below, soil, dead) fractions of the total density
    (1, "cropland", "耕地", 0.255, (0.05, 0.02, 0.92, 0.01)),
    (2, "arbor forest", "乔木林地", 0.435, (0.27, 0.07, 0.63, 0.03)),
    (3, "shrub forest", "灌木林地", 0.100, (0.12, 0.07, 0.79, 0.02)),
    (4, "bamboo forest", "竹林地", 0.002, (0.22, 0.08, 0.67, 0.03)),
    (5, "other forest", "其他林地", 0.025, (0.15, 0.05, 0.78, 0.02)),
    (6, "grassland", "草地", 0.070, (0.03, 0.08, 0.88, 0.01)),
    (7, "orchard", "园地", 0.030, (0.10, 0.04, 0.85, 0.01)),
    (8, "water", "水体", None, (0.0, 0.0, 0.0, 0.0)),
    (9, "built-up land", "建设用地", 0.045, (0.02, 0.01, 0.97, 0.0)),
    (10, "unused land", "未利用地", 0.010, (0.04, 0.03, 0.93, 0.0)),
]
WATER = 8
MIN_WATER_SHARE = 0.008  # every county keeps some water, so coarser grids still fit


def load_counties() -> gpd.GeoDataFrame:
    try:
        from cnmaps import get_adm_maps
    except ImportError:
        raise SystemExit("building the demo data needs cnmaps: pip install cnmaps") from None
    paper = pd.read_csv(DATA / "paper_tables2_3_by_county.csv")
    records = get_adm_maps(province="云南省", level="区县")
    by_name = {r["district"]: r for r in records}
    rows = []
    for city, county in zip(paper["city"], paper["county"]):
        official = OFFICIAL_NAME.get(county, county)
        if official not in by_name:
            raise SystemExit(f"cnmaps has no county {official!r} (the paper's {county!r})")
        record = by_name[official]
        rows.append({"county": county, "city": city, "name_official": official, "name_en": PINYIN[county], "city_en": CITY_EN[city], "geometry": record["geometry"]})
    gdf = gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:4326").to_crs(ALBERS)
    simplified = shapely.coverage_simplify(gdf.geometry.to_numpy(), SIMPLIFY_M)
    gdf["geometry"] = shapely.make_valid(simplified)
    return gdf


def fit_areas(gdf: gpd.GeoDataFrame, density: np.ndarray) -> pd.DataFrame:
    """Hectares of each class in each county: row area = county area, row supply = Table 2,
    column supply = Table 1 (water takes what is left), by maximum-entropy iterative fitting."""
    paper = pd.read_csv(DATA / "paper_tables2_3_by_county.csv").set_index("county")
    table1 = pd.read_csv(DATA / "paper_table1_supply_by_class.csv").set_index("land_use")
    area_ha = gdf.set_index("county").geometry.area / 1e4
    counties = list(gdf["county"])
    supply_c = paper.loc[counties, "supply_1e6_t"].to_numpy() * 1e6
    codes = [c[0] for c in CLASSES]
    supply_k = np.array([table1.loc[c[2], "supply_1e6_t"] * 1e6 for c in CLASSES])
    # Table 1 and Table 2 totals differ by rounding; scale the classes to the counties' total.
    supply_k *= supply_c.sum() / supply_k.sum()
    land = np.array([c[0] != WATER for c in CLASSES])
    area_k = np.where(land, supply_k / np.where(density > 0, density, 1), 0.0)
    area_k[~land] = area_ha.sum() - area_k.sum()
    A = area_ha.reindex(counties).to_numpy()
    # Prior: the regional mix tilted towards forest where a county stores more per hectare.
    mean_density = supply_c / A
    tilt = (mean_density / mean_density.mean())[:, None] ** (density[None, :] / density.max() * 3)
    a = A[:, None] * (area_k / area_k.sum())[None, :] * tilt
    for _ in range(5000):
        a *= (area_k / a.sum(axis=0))[None, :]
        for i in range(len(counties)):
            a[i] = _tilt_row(a[i], density, A[i], supply_c[i])
        water_floor = MIN_WATER_SHARE * A
        a[:, ~land] = np.maximum(a[:, ~land], water_floor[:, None])
        error = max(np.abs(a.sum(axis=0) / area_k - 1).max(), np.abs((a * density).sum(axis=1) / supply_c - 1).max(), np.abs(a.sum(axis=1) / A - 1).max())
        if error < 1e-9:
            break
    print(f"fit: max relative error {error:.2e}")
    frame = pd.DataFrame(a, index=pd.Index(counties, name="county"), columns=codes)
    return frame.stack().rename("area_ha").reset_index().rename(columns={"level_1": "lucode"})


def _tilt_row(row: np.ndarray, density: np.ndarray, area: float, supply: float) -> np.ndarray:
    """Scale a row by exp(α + β·density) so that it has the given area and supply (Newton)."""
    x = density / density.max()
    alpha = beta = 0.0
    for _ in range(100):
        w = row * np.exp(alpha + beta * x)
        f1, f2 = w.sum() - area, (w * density).sum() - supply
        if abs(f1) < 1e-9 * area and abs(f2) < 1e-9 * supply:
            break
        j11, j12 = w.sum(), (w * x).sum()
        j21, j22 = (w * density).sum(), (w * density * x).sum()
        det = j11 * j22 - j12 * j21
        d_alpha = (f1 * j22 - f2 * j12) / det
        d_beta = (j11 * f2 - j21 * f1) / det
        step = 1.0
        while step > 1e-4 and abs(beta - step * d_beta) > 60:
            step /= 2
        alpha -= step * d_alpha
        beta -= step * d_beta
    return row * np.exp(alpha + beta * x)


def main() -> None:
    gdf = load_counties()
    area_ha = gdf.geometry.area.sum() / 1e4
    table1 = pd.read_csv(DATA / "paper_table1_supply_by_class.csv").set_index("land_use")
    rows, density = [], []
    for code, name, name_zh, share, fractions in CLASSES:
        total = 0.0 if share is None else table1.loc[name_zh, "supply_1e6_t"] * 1e6 / (share * area_ha)
        pools = [round(total * f, 2) for f in fractions]
        density.append(sum(pools))
        rows.append({"lucode": code, "LULC_name": name, "LULC_name_zh": name_zh, "c_above": pools[0], "c_below": pools[1], "c_soil": pools[2], "c_dead": pools[3]})
    pools = pd.DataFrame(rows)
    pools.to_csv(DATA / "pools.csv", index=False)
    areas = fit_areas(gdf, np.array(density))
    areas.to_csv(DATA / "county_class_area.csv", index=False, float_format="%.3f")
    paper = pd.read_csv(DATA / "paper_tables2_3_by_county.csv").set_index("county")
    region = json.loads((DATA / "region.json").read_text()) if (DATA / "region.json").exists() else {}
    region.update({
        "total_population": 48_580_000,
        "total_emissions_t": 190_000_000,
        "crs": ALBERS,
        "resolution_m": 100,
        "year": 2020,
        "cnmaps": version("cnmaps"),
    })
    per_capita = region["total_emissions_t"] / region["total_population"]
    area_km2 = gdf.set_index("county").geometry.area / 1e6
    counties = pd.DataFrame({
        "county": gdf["county"], "city": gdf["city"], "name_en": gdf["name_en"],
        "population": np.round(paper.loc[gdf["county"], "demand_t_per_km2"].to_numpy() * area_km2.reindex(gdf["county"]).to_numpy() / per_capita).astype(int),
        "supply_1e6_t_paper": paper.loc[gdf["county"], "supply_1e6_t"].to_numpy(),
        "demand_t_per_km2_paper": paper.loc[gdf["county"], "demand_t_per_km2"].to_numpy(),
        "area_km2": area_km2.reindex(gdf["county"]).round(3).to_numpy(),
    })
    counties.to_csv(DATA / "counties.csv", index=False)
    gdf.to_file(DATA / "counties.gpkg", layer="counties", driver="GPKG", engine="pyogrio")
    (DATA / "region.json").write_text(json.dumps(region, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(pools.assign(total=density))
    print(f"{len(gdf)} counties, {area_km2.sum():,.0f} km²")


if __name__ == "__main__":
    main()
