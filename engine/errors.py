"""One exception hierarchy for carbonscape (rioxarray style).

Callers catch :class:`CarbonscapeError`; every message names the file or value at fault and
says what to do about it. :class:`InputError` and its children are the user's to fix (the CLI
exits with code 2 for them); anything else is a failure of the run (exit code 1).
"""

from __future__ import annotations

import os


class CarbonscapeError(RuntimeError):
    """Base class of every error carbonscape raises on purpose."""


class InputError(CarbonscapeError, ValueError):
    """Bad input: a file, a table or an option that the user must fix."""


class GridError(InputError):
    """A raster grid that carbonscape cannot use (no CRS units, rotated, empty)."""


class AlignmentError(GridError):
    """Two rasters or stores that should share one grid do not."""


class PoolTableError(InputError):
    """A carbon pools table with missing classes, columns or bad densities."""


class ZoneError(InputError):
    """County polygons that cannot be rasterized as asked (overlaps, missing id field...)."""


class TableError(InputError):
    """A county table (population, emissions) that does not match the polygons."""


class StudyError(InputError):
    """A study file (TOML) with missing or inconsistent settings."""

    def __init__(self, problems: list[str] | str, *, path: str | None = None) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        where = f"{path}: " if path else ""
        if len(self.problems) == 1:
            message = where + self.problems[0]
            # "study.toml, line 8: ..." already names the file: the path once, not "study.toml: study.toml, line 8: ...".
            name = os.path.basename(str(path)) if path else ""
            if name and self.problems[0].startswith((f"{name}:", f"{name},")):
                message = str(path) + self.problems[0][len(name):]
        else:
            message = where + f"{len(self.problems)} problems:\n" + "\n".join(
                f"  - {problem}" for problem in self.problems
            )
        super().__init__(message)


class ClusterError(CarbonscapeError):
    """The dask scheduler given could not be reached or used."""


class StorageError(CarbonscapeError):
    """Object storage or a remote raster could not be reached (exit 1; wrong credentials, a missing
    bucket or object are :class:`InputError`)."""
