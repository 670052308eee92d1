"""A whole study from one TOML file: ingest → counties → supply → demand → ratio → zoning → outputs.

Relative paths in the file resolve against the file's folder. Every setting is declared once in
:mod:`carbonscape.study.settings`; :func:`check_study` validates every setting and input without
computing and reports all problems at once; :func:`run_study` runs it, reusing the Zarr stores
that are already up to date, and writes every table, ``counties.gpkg`` and ``run.json``
(parameters, totals, input checksums, versions, timings).

Modules: ``settings`` (the table of settings), ``file`` (:class:`Study`), ``inputs`` (reading
and checking the input files), ``pipeline`` (:func:`run_study`), ``outputs`` (writers),
``provenance`` (checksums, versions, timings), ``result`` (:class:`StudyResult`).
"""

from carbonscape.study.file import DemandSpec, Study, ZoningSpec, load_study, read_study, write_study_template
from carbonscape.study.inputs import Inputs, check_report, check_study, load_inputs, scan_codes
from carbonscape.study.outputs import draw_outputs
from carbonscape.study.pipeline import run_study
from carbonscape.study.provenance import sha256
from carbonscape.study.read import read_outputs
from carbonscape.study.stages import demand_stage, statistics_stage, zoning_stage
from carbonscape.study.stages import cells_stage
from carbonscape.study.result import StudyResult
from carbonscape.study.settings import SETTINGS, Setting, template

__all__ = [
    "SETTINGS",
    "DemandSpec",
    "Inputs",
    "Setting",
    "Study",
    "StudyResult",
    "ZoningSpec",
    "check_report",
    "check_study",
    "demand_stage",
    "draw_outputs",
    "load_inputs",
    "load_study",
    "read_outputs",
    "read_study",
    "run_study",
    "scan_codes",
    "sha256",
    "statistics_stage",
    "cells_stage",
    "template",
    "write_study_template",
    "zoning_stage",
]


def __getattr__(name: str) -> object:
    if name == "STUDY_TEMPLATE":  # the template is rendered from the settings table
        return template()
    raise AttributeError(f"module 'carbonscape.study' has no attribute {name!r}")
