"""Finding a font that renders Chinese county and zone names."""

from __future__ import annotations

import functools
import logging

log = logging.getLogger(__name__)

# Families that carry CJK glyphs, most common first on Linux (Debian: fonts-wqy-microhei,
# fonts-noto-cjk), then macOS and Windows.
CJK_FAMILIES = (
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Noto Sans CJK SC",
    "Noto Sans CJK JP",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Droid Sans Fallback",
    "AR PL UMing CN",
    "PingFang SC",
    "Heiti SC",
    "Microsoft YaHei",
    "SimHei",
)
INSTALL_HINT = "install one, e.g. `apt-get install fonts-wqy-microhei` (Debian/Ubuntu) or Noto Sans CJK"


@functools.lru_cache(maxsize=1)
def find_cjk_font() -> str | None:
    """The family name of an installed CJK font, or None."""
    from matplotlib import font_manager

    available = {font.name for font in font_manager.fontManager.ttflist}
    for family in CJK_FAMILIES:
        if family in available:
            return family
    # A font installed after matplotlib built its cache is not in the cache yet: look at the
    # system's font files once and register the first CJK one.
    for path in font_manager.findSystemFonts():
        try:
            name = font_manager.FontProperties(fname=path).get_name()
        except (RuntimeError, OSError, ValueError):
            continue
        if name in CJK_FAMILIES:
            font_manager.fontManager.addfont(path)
            return name
    return None


def has_cjk(text: str) -> bool:
    return any("\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" for ch in str(text))
