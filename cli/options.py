"""Reusable click options (rasterio's `rio` style): one place for flags shared by commands."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

_scheduler = click.option(
    "--scheduler",
    metavar="ADDR",
    default=None,
    help="Dask scheduler: tcp://HOST:PORT, a scheduler file, synchronous/threads/processes, or a job queue "
    "(slurm, pbs, sge, lsf...: worker jobs through dask-jobqueue, sized by jobqueue.<queue>.* in the dask config). "
    "Default: $DASK_SCHEDULER_ADDRESS, else a LocalCluster sized to this machine.",
)
_jobs = click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="With --scheduler slurm (or pbs, sge...): the number of worker jobs to submit (default 1).",
)


def scheduler_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--scheduler`` and ``--jobs``; the command receives ``scheduler`` as one value (a string, or
    a :class:`carbonscape.cluster.JobQueue` for a queue) and no ``jobs``."""

    @functools.wraps(func)
    def wrapper(*args: Any, scheduler: str | None = None, jobs: int | None = None, **kwargs: Any) -> Any:
        from carbonscape.cluster import job_queue
        from carbonscape.errors import InputError

        try:
            combined = job_queue(scheduler, jobs)
        except InputError as exc:
            raise click.BadParameter(str(exc), param_hint="--jobs") from None
        return func(*args, scheduler=combined, **kwargs)

    return _scheduler(_jobs(wrapper))


bench_scheduler_option = click.option(
    "--scheduler",
    metavar="ADDR",
    default=None,
    help="Dask scheduler to benchmark on: tcp://HOST:PORT or a scheduler file (on an HPC cluster, start a "
    "scheduler and worker jobs with dask-jobqueue and give its scheduler file: each stage starting its own "
    "jobs would time the queue, not carbonscape), or synchronous/threads/processes. "
    "Default: $DASK_SCHEDULER_ADDRESS, else a LocalCluster sized to this machine.",
)


force_option = click.option("--force", is_flag=True, help="Rebuild even when the output is up to date.")
progress_option = click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress on stderr, never stdout: a bar on a terminal, else a log line per ~10% or 30 s. Default: auto (on; -q turns it off).",
)
overwrite_option = click.option(
    "--overwrite",
    is_flag=True,
    help="Replace an output folder that holds files carbonscape did not write or another study's results "
    "(a rerun of the same study always replaces its own results).",
)
# A study's results folder, for every command that takes a study file and the folder its run
# writes (`run` writes into it; `check` checks it as `run` would: another study's results there
# are refused, an up-to-date land-use store there is reused).
study_out_option = click.option(
    "--out",
    "-o",
    type=click.Path(file_okay=False),
    default=None,
    help="The study's results folder (default: [outputs] dir of the study file, else results/ beside it).",
)
