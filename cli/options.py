"""Reusable click options (rasterio's `rio` style): one place for flags shared by commands."""

from __future__ import annotations

import click

scheduler_option = click.option(
    "--scheduler",
    metavar="ADDR",
    default=None,
    help="Dask scheduler: tcp://HOST:PORT, a scheduler file, or synchronous/threads/processes. "
    "Default: $DASK_SCHEDULER_ADDRESS, else a LocalCluster sized to this machine.",
)
force_option = click.option("--force", is_flag=True, help="Rebuild even when the output is up to date.")
progress_option = click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress on stderr, never stdout: a bar on a terminal, else a log line per ~10% or 30 s. Default: auto (on; -q turns it off).",
)
