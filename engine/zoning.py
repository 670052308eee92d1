"""Ratio classes to functional zones (METHOD.md formula 5), with the 2025 study's scheme built in."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from carbonscape.breaks import (
    METHODS,
    classify,
    equal_interval_breaks,
    goodness_of_variance_fit,
    manual_breaks,
    natural_breaks,
    quantile_breaks,
)
from carbonscape.errors import InputError

log = logging.getLogger(__name__)
# Built-in scheme names: "four_zones" (k = 7 classes into 4 zones), and "classes" / "none" (one
# zone per class, any k). "paper" was the first name of "four_zones" and is still accepted.
SCHEME_NAMES = ("four_zones", "classes", "none")
SCHEME_ALIASES = {"paper": "four_zones"}


@dataclass(frozen=True)
class Zone:
    """A functional zone: the ratio classes (1 = lowest ratio) it gathers."""

    key: str
    name_en: str
    name_zh: str
    classes: tuple[int, ...]


@dataclass(frozen=True)
class ZoneScheme:
    """Classes 1..k mapped to named zones; every class belongs to exactly one zone."""

    name: str
    k: int
    zones: tuple[Zone, ...]

    def __post_init__(self) -> None:
        seen = [c for zone in self.zones for c in zone.classes]
        expected = list(range(1, self.k + 1))
        if sorted(seen) != expected:
            missing = sorted(set(expected) - set(seen))
            repeated = sorted({c for c in seen if seen.count(c) > 1})
            extra = sorted(set(seen) - set(expected))
            raise InputError(
                f"zone scheme {self.name!r} must put each class 1..{self.k} in exactly one zone "
                f"(missing {missing}, repeated {repeated}, out of range {extra})"
            )

    def zone_of(self, klass: int) -> Zone | None:
        for zone in self.zones:
            if klass in zone.classes:
                return zone
        return None


# The 2025 study (Landscape Architecture Academic Journal 42(1), Central Yunnan 2020), Table 4.
PAPER_SCHEME = ZoneScheme(
    name="four_zones",
    k=7,
    zones=(
        Zone("optimization", "carbon sequestration optimization zone", "固碳优化区", (7, 6, 5)),
        Zone("sink_development", "carbon sink development zone", "碳汇发展区", (4,)),
        Zone("coordinated", "coordinated development zone", "协调发展区", (3,)),
        Zone("low_carbon", "low-carbon maintenance zone", "低碳保持区", (2, 1)),
    ),
)
# Table 4's class bounds: class 1's lower bound, then each class's upper bound. Table 4 prints
# closed ranges at six decimals (class 2 is 0.013833–0.025549 after class 1's 0.005517–0.013832)
# and :func:`classify` is right-inclusive, (lo, hi], so the upper bounds are the edges that put
# every value of each printed range in its class.
PAPER_RATIO_BREAKS = (0.005517, 0.013832, 0.025549, 0.040932, 0.076898, 0.136217, 0.356339, 0.637277)


def scheme_from_dict(spec: Mapping[str, Any]) -> ZoneScheme:
    """A custom scheme from a TOML-like table ``{name, zones = [{key, name_en, name_zh, classes}]}``."""
    try:
        zones = tuple(
            Zone(str(z["key"]), str(z.get("name_en", z["key"])), str(z.get("name_zh", z.get("name_en", z["key"]))), tuple(int(c) for c in z["classes"]))
            for z in spec["zones"]
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"a zone scheme needs `zones = [{{key, name_en, name_zh, classes}}, ...]` ({exc})") from exc
    k = max((c for z in zones for c in z.classes), default=0)
    return ZoneScheme(name=str(spec.get("name", "custom")), k=int(spec.get("k", k)), zones=zones)


def get_scheme(scheme: str | Mapping[str, Any] | ZoneScheme, *, k: int) -> ZoneScheme:
    """The built-in ``"four_zones"`` scheme (old name ``"paper"``), a custom one, or a generic
    one-zone-per-class scheme."""
    if isinstance(scheme, ZoneScheme):
        chosen = scheme
    elif isinstance(scheme, Mapping):
        chosen = scheme_from_dict(scheme)
    elif SCHEME_ALIASES.get(scheme, scheme) == "four_zones":
        chosen = PAPER_SCHEME
    elif scheme in ("classes", "none"):
        chosen = ZoneScheme(name="classes", k=k, zones=tuple(Zone(f"class_{c}", f"class {c}", f"第{c}类", (c,)) for c in range(1, k + 1)))
    else:
        raise InputError(
            f"unknown zone scheme {scheme!r}; use \"four_zones\" (7 classes into 4 functional zones), \"classes\" "
            "(one zone per class, any k) or a table of zones"
        )
    if chosen.k != k:
        raise InputError(
            f"the zone scheme {chosen.name!r} is made for {chosen.k} classes, not k = {k}; set k = {chosen.k}, "
            f"or scheme = \"classes\" (one zone per class) or a table of zones for {k} classes"
        )
    return chosen


def zone_ratios(
    ratio: pd.Series,
    *,
    method: str = "jenks",
    k: int = 7,
    breaks: Sequence[float] | None = None,
    weights: pd.Series | Sequence[float] | None = None,
    scheme: str | Mapping[str, Any] | ZoneScheme = "four_zones",
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Classify ratios and name their zones.

    Parameters
    ----------
    ratio
        Supply–demand ratio per county.
    method
        ``"jenks"`` (exact natural breaks), ``"quantile"``, ``"equal"`` or ``"manual"``.
    k
        Number of classes.
    breaks
        The ``k + 1`` edges for ``"manual"``. Ratios outside them go to the outer classes (the
        paper's own counties fall just outside its Table 4 bounds), with a warning; they are
        listed in ``info["clipped"]``.
    weights
        Optional weight per county for jenks/quantile (e.g. area).
    scheme
        Zone scheme (``"four_zones"`` by default).

    Returns
    -------
    (pandas.DataFrame, dict)
        Columns ``class`` (1 = lowest ratio; 0 for NaN), ``zone`` (Chinese name), ``zone_en``,
        ``zone_key``; and ``{"method", "k", "edges", "gvf", "scheme", "clipped"}``, where
        ``clipped`` maps each county whose finite ratio lies outside the manual edges to its ratio
        (empty for the other methods, whose edges span the values). Infinite ratios (no supply)
        are left out of the breaks and put in the top class.
    """
    chosen = get_scheme(scheme, k=k)
    values = ratio.to_numpy(dtype=np.float64)
    finite = np.isfinite(values)
    w = None if weights is None else np.asarray(pd.Series(weights).reindex(ratio.index) if isinstance(weights, pd.Series) else weights, dtype=np.float64)
    if method == "manual":
        if breaks is None or len(breaks) != k + 1:
            raise InputError(f"manual zoning needs k + 1 = {k + 1} edges, got {None if breaks is None else len(breaks)}")
        edges = manual_breaks(breaks)
    elif method == "jenks":
        edges = natural_breaks(values[finite], k, weights=None if w is None else w[finite])
    elif method == "quantile":
        edges = quantile_breaks(values[finite], k, weights=None if w is None else w[finite])
    elif method == "equal":
        edges = equal_interval_breaks(values[finite], k)
    else:
        raise InputError(f"zoning method {method!r} is not one of {', '.join(METHODS)}")
    outside = finite & ((values < edges[0]) | (values > edges[-1]))
    clipped = {label: float(value) for label, value in zip(ratio.index[outside], values[outside])}
    if clipped:
        # Kept, not refused: the paper's own ratios fall just outside its Table 4 bounds.
        log.warning(
            "%d ratio(s) outside the manual class edges [%g, %g] are put in the outer classes: %s",
            len(clipped), edges[0], edges[-1], ", ".join(f"{k}: {v:.6g}" for k, v in list(clipped.items())[:20]),
        )
    classes = classify(np.where(np.isinf(values), np.nan, values), edges, clip=True)
    classes[np.isinf(values)] = k
    zones = [chosen.zone_of(int(c)) for c in classes]
    frame = pd.DataFrame(
        {
            "class": classes,
            "zone": [z.name_zh if z else "" for z in zones],
            "zone_en": [z.name_en if z else "" for z in zones],
            "zone_key": [z.key if z else "" for z in zones],
        },
        index=ratio.index,
    )
    gvf = goodness_of_variance_fit(values[finite], edges, weights=None if w is None else w[finite]) if finite.sum() else float("nan")
    info = {"method": method, "k": k, "edges": [float(e) for e in edges], "gvf": float(gvf), "scheme": chosen.name, "clipped": clipped}
    return frame, info


@dataclass(frozen=True)
class ZoneGroup:
    """One functional zone of a run: its names, rank in the scheme and counties."""

    key: str
    zone: str
    zone_en: str
    counties: tuple[str, ...]
    top_class: float


def zone_groups(frame: pd.DataFrame) -> list[ZoneGroup]:
    """The run's zones in the scheme's order, highest ratio class first.

    For the paper's scheme that is Table 4's order: optimization (classes 7–5), sink development
    (4), coordinated (3), low carbon (2–1). Zones are ranked by their highest class, then their
    mean class; without a ``class`` column, by their median ratio.

    Parameters
    ----------
    frame
        Rows per county with ``zone`` (and ``zone_key``, ``zone_en``, ``class``, ``ratio``,
        ``county`` when present), e.g. ``ratio_zones.csv`` or ``counties.gpkg``.
    """
    if "zone" not in frame.columns:
        return []
    zone = frame["zone"].fillna("").astype(str)
    keys = zone_keys(frame)
    keep = keys != ""
    if not keep.any():
        return []
    names = frame["county"].astype(str) if "county" in frame.columns else pd.Series(frame.index.astype(str), index=frame.index)
    if "class" in frame.columns:
        rank_values = pd.to_numeric(frame["class"], errors="coerce")
    elif "ratio" in frame.columns:
        rank_values = pd.to_numeric(frame["ratio"], errors="coerce").replace(np.inf, np.nan)
    else:
        rank_values = pd.Series(0.0, index=frame.index)
    groups = []
    for key in dict.fromkeys(keys[keep]):
        member = keys == key
        ranks = rank_values[member]
        if "class" in frame.columns:
            order = (float(ranks.max()), float(ranks.mean()))
        else:
            order = (float(ranks.median()), 0.0)
        english = frame.loc[member, "zone_en"].fillna("").astype(str).iloc[0] if "zone_en" in frame.columns else ""
        groups.append((order, ZoneGroup(key=key, zone=zone[member].iloc[0], zone_en=english, counties=tuple(names[member]),
                                         top_class=order[0])))
    groups.sort(key=lambda pair: tuple(-np.nan_to_num(v, nan=-np.inf) for v in pair[0]))
    return [group for _, group in groups]


def zone_keys(frame: pd.DataFrame) -> pd.Series:
    """Each county's zone key (``zone_key``, else the zone's name; "" for none)."""
    zone = frame["zone"].fillna("").astype(str)
    if "zone_key" not in frame.columns:
        return zone
    return frame["zone_key"].fillna("").astype(str).where(lambda k: k != "", zone)
