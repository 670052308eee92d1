"""The fonts every map is drawn with, so Chinese county, class and zone names render on any machine.

Most Linux servers and clusters have no CJK font, and a map whose county names are boxes or
"???" is no map. carbonscape therefore depends on a CJK font shipped as a Python package and
registers it with matplotlib at draw time, so the same maps come out everywhere:

- **Noto Sans CJK SC** (Google and Adobe's Pan-CJK sans serif, the Simplified Chinese face of the
  collection ``NotoSansCJK-Regular.ttc``), from the PyPI package ``noto-cjk-sans-otc``, licensed
  under the **SIL Open Font License 1.1** (free to use, embed and redistribute with documents).

Latin text is drawn in matplotlib's own DejaVu Sans, whose glyphs (⁶, ₂, –, ∞, km²) the labels
use; every character DejaVu Sans lacks falls back to Noto Sans CJK SC, glyph by glyph
(matplotlib's per-glyph font fallback). The face is chosen by family name: matplotlib ≥ 3.11
registers every face of a TrueType/OpenType collection.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

CJK_FAMILY = "Noto Sans CJK SC"
LATIN_FAMILY = "DejaVu Sans"
FONT_PACKAGE = "noto-cjk-sans-otc"
FONT_LICENCE = "SIL Open Font License 1.1"
FONT_FAMILIES = [LATIN_FAMILY, CJK_FAMILY]


def cjk_font_path() -> Path:
    """The bundled font file (``NotoSansCJK-Regular.ttc`` inside the ``noto_cjk_sans_otc`` package).

    Raises
    ------
    carbonscape.errors.InputError
        The package is missing or damaged (it is a dependency of carbonscape: reinstall).
    """
    from carbonscape.errors import InputError

    try:
        import noto_cjk_sans_otc
    except ImportError as exc:
        raise InputError(f"the CJK font package {FONT_PACKAGE} is not installed; `pip install {FONT_PACKAGE}` "
                         "(a dependency of carbonscape) so Chinese names can be drawn") from exc
    path = Path(os.fspath(noto_cjk_sans_otc.FONT_PATH))
    if not path.is_file():
        raise InputError(f"{path}: the font file of {FONT_PACKAGE} is missing; `pip install --force-reinstall {FONT_PACKAGE}`")
    return path


def register_cjk_font() -> str:
    """Make the bundled CJK font known to matplotlib (once per font list) and return its family.

    Checked on every call rather than cached, so a font list that was rebuilt (a new
    ``FontManager``, or tests that hide the system's fonts) gets it again.
    """
    from matplotlib import font_manager

    path = cjk_font_path()
    manager = font_manager.fontManager
    if not any(entry.name == CJK_FAMILY and Path(os.fspath(entry.fname)) == path for entry in manager.ttflist):
        manager.addfont(path)
        log.debug("registered %s from %s", CJK_FAMILY, path)
    return CJK_FAMILY


def find_cjk_font() -> str:
    """The CJK family maps are drawn with (the bundled one, registered on first use)."""
    return register_cjk_font()


def has_cjk(text: str) -> bool:
    """Whether ``text`` holds a CJK ideograph (unified, extension A, or compatibility)."""
    return any("\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" for ch in str(text))


@functools.lru_cache(maxsize=16)
def _face(fname: str, face_index: int) -> tuple[str, frozenset[int]]:
    """Family name and covered code points of one face of a font file."""
    from matplotlib import ft2font

    font = ft2font.FT2Font(fname, face_index=face_index)
    return font.family_name, frozenset(font.get_charmap())


def glyph_fonts(text: str, families: Iterable[str] | None = None) -> dict[str, str | None]:
    """For each distinct character of ``text``: the family of the font matplotlib's per-glyph
    fallback draws it with, or None when no font in the list has it (it would be drawn as a box).

    Resolves ``families`` (default: :data:`FONT_FAMILIES`) through matplotlib's font manager, as
    drawing does, so it tells what a map really shows on this machine. Whitespace is skipped.
    """
    from matplotlib import font_manager

    prop = font_manager.FontProperties(family=list(families) if families is not None else FONT_FAMILIES)
    paths = font_manager.fontManager._find_fonts_by_props(prop, fallback_to_default=False)
    faces = [_face(os.fspath(path), int(getattr(path, "face_index", 0) or 0)) for path in paths]
    # matplotlib ≥ 3.11 ships "Last Resort", whose glyph for every code point is a box naming its
    # Unicode block: a placeholder, not the character.
    faces = [(name, cmap) for name, cmap in faces if not name.startswith("Last Resort")]
    return {ch: next((name for name, cmap in faces if ord(ch) in cmap), None) for ch in dict.fromkeys(str(text)) if not ch.isspace()}
