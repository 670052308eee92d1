"""Vector files as people have them: shapefiles whose DBF text is GBK with no ``.cpg``, files with
several layers.

GDAL decodes a shapefile's DBF text by its ``.cpg`` file, else by the DBF's language-driver byte,
else as ISO-8859-1: Chinese county names saved in GBK (the usual code page of Chinese GIS
software) without a ``.cpg`` come back as ``Îå»ªÇø`` (geopandas/pyogrio#380). When neither says
the encoding, :func:`dbf_encoding` looks at the text bytes themselves: UTF-8 if they decode as
UTF-8, else GB18030 (a superset of GBK and GB2312) if they decode as that.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path

import geopandas as gpd
import pandas as pd
from carbonscape.errors import InputError, ZoneError

__all__ = ["dbf_encoding", "looks_misdecoded", "read_vector"]

log = logging.getLogger(__name__)

# Latin-1 letters that mis-decoded GBK or UTF-8 text is made of (Ã, Î, Ç, ¿...).
_MOJIBAKE = re.compile(r"[\u00c0-\u00ff][\u0080-\u00ff]")


def dbf_encoding(shp: str | os.PathLike[str]) -> str | None:
    """The encoding of a shapefile's DBF text when neither a ``.cpg`` file nor the DBF's
    language-driver byte gives it and the text is not plain ASCII: ``"UTF-8"`` or
    ``"GB18030"``; None when GDAL's own rule applies or nothing decodes."""
    path = Path(shp)
    if path.suffix.lower() != ".shp":
        return None
    if any(path.with_suffix(s).exists() for s in (".cpg", ".CPG")):
        return None
    dbf = next((p for p in (path.with_suffix(".dbf"), path.with_suffix(".DBF")) if p.exists()), None)
    if dbf is None:
        return None
    data = dbf.read_bytes()
    if len(data) < 32 or data[29] != 0:  # a language driver id: GDAL reads it
        return None
    records = int.from_bytes(data[4:8], "little")
    header = int.from_bytes(data[8:10], "little")
    length = int.from_bytes(data[10:12], "little")
    fields: list[tuple[int, int]] = []  # (offset in the record, width) of each text field
    offset, at = 1, 32  # a record starts with its deletion flag
    while at + 32 <= min(header, len(data)) and data[at] != 0x0D:
        kind, width = chr(data[at + 11]), data[at + 16]
        if kind in "CM":
            fields.append((offset, width))
        offset += width
        at += 32
    text = bytearray()
    for record in range(records):
        start = header + record * length
        for field_offset, width in fields:
            text += data[start + field_offset:start + field_offset + width].rstrip(b" \x00") + b" "
    if not any(byte > 0x7F for byte in text):
        return None
    for encoding in ("UTF-8", "GB18030"):
        try:
            bytes(text).decode(encoding)
        except UnicodeDecodeError:
            continue
        return encoding
    return None


def looks_misdecoded(values: list[str]) -> str | None:
    """The first value that looks like text decoded with the wrong code page, or None."""
    for value in values:
        if isinstance(value, str) and _MOJIBAKE.search(value):
            raw = value.encode("latin-1", errors="ignore")
            for encoding in ("utf-8", "gb18030"):
                try:
                    decoded = raw.decode(encoding)
                except UnicodeDecodeError:
                    continue
                if re.search(r"[\u4e00-\u9fff]", decoded):
                    return value
    return None


def read_vector(
    path: str | os.PathLike[str],
    *,
    layer: str | None = None,
    encoding: str | None = None,
    names: Mapping[str, str] | None = None,
) -> gpd.GeoDataFrame:
    """Read a vector file's features, refusing what would silently read the wrong thing.

    Parameters
    ----------
    path
        GeoPackage, Shapefile, GeoJSON… (anything pyogrio reads); a path, or an ``s3://`` or
        ``http(s)://`` URL (copied locally first: polygons are small).
    layer
        The layer; required when the file has several (they are listed in the error).
    encoding
        The attribute text's encoding (e.g. ``"GBK"``), overriding ``.cpg`` and detection.
    names
        How messages name the options: ``{"layer": "--layer", "encoding": "--encoding"}`` (the
        default) or study keys.

    Raises
    ------
    InputError
        A missing or unreadable file, several layers and none chosen, a layer that is not there.
    ZoneError
        Attribute text that still looks mis-decoded (``Îå»ªÇø``).
    """
    import pyogrio

    from carbonscape import remote

    if remote.is_url(path):  # a GeoPackage/GeoJSON/Shapefile on object storage or the web: a local copy
        with remote.as_local(path) as local:
            return read_vector(local, layer=layer, encoding=encoding, names=names)
    option = {"layer": "--layer", "encoding": "--encoding", **(names or {})}
    source = os.fspath(path)
    if not os.path.exists(source):
        raise InputError(f"{source}: no such file")
    try:
        layers = [str(name) for name, _ in pyogrio.list_layers(source)]
    except Exception as exc:  # pyogrio raises its own DataSourceError types
        raise InputError(f"{source}: cannot be read as a vector file ({exc})") from exc
    if layer is None and len(layers) > 1:
        raise InputError(f"{source} has {len(layers)} layers ({', '.join(layers)}); set {option['layer']} to the one with the counties")
    if layer is not None and layer not in layers:
        raise InputError(f"{source}: no layer {layer!r}; the layers are {', '.join(layers)}: set {option['layer']} to one of them")
    detected = None if encoding else dbf_encoding(source)
    chosen = encoding or detected
    try:
        with warnings.catch_warnings():
            # Our own message says what was read; GDAL's recoding notes are not for the user.
            warnings.simplefilter("ignore", RuntimeWarning)
            gdf = gpd.read_file(source, layer=layer, engine="pyogrio", **({"encoding": chosen} if chosen else {}))
    except LookupError as exc:
        raise InputError(f"{source}: unknown encoding {encoding!r} ({exc}); set {option['encoding']} to e.g. \"GBK\" or \"UTF-8\"") from exc
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"{source}: cannot be read as a vector file ({exc})") from exc
    if detected and detected != "UTF-8":
        log.info("%s: no .cpg file; its text decodes as %s (GBK), so it is read as %s (set %s to override)",
                 source, detected, detected, option["encoding"])
    texts = [v for column in gdf.columns if column != gdf.geometry.name
             and (pd.api.types.is_object_dtype(gdf[column]) or pd.api.types.is_string_dtype(gdf[column]))
             for v in gdf[column].dropna().astype(str).head(1000)]
    garbled = looks_misdecoded(texts)
    if garbled is not None:
        raise ZoneError(
            f"{source}: its text looks mis-decoded (e.g. {garbled!r}); set {option['encoding']} to the file's code page "
            f"(e.g. \"GBK\" for Chinese names), or put a .cpg file holding it beside the .shp"
        )
    gdf.attrs["encoding"] = chosen or ""
    return gdf
