"""Where the chunks are computed: a local cluster, an existing scheduler, or a plain dask scheduler.

``scheduler`` accepts ``tcp://HOST:PORT`` (or any distributed address), the path of a scheduler
file, one of dask's local schedulers ``synchronous``, ``threads``, ``processes``, or an HPC job
queue (``slurm``, ``pbs``, ``sge``, ``lsf``, ``htcondor``, ``oar``, ``moab``, or a :class:`JobQueue`)
from which worker jobs are requested through dask-jobqueue. With none,
dask's own ``scheduler-address`` setting (``DASK_SCHEDULER_ADDRESS``) is honoured, and otherwise
a :class:`distributed.LocalCluster` sized to the machine is started for the duration of the work.

Progress goes to stderr only, the same way wherever the work runs: the scheduler's task counts (or
dask's local callbacks) feed a :class:`ProgressReport`, a tqdm bar on a terminal and a log line
per ~10 % otherwise. stdout is left to the command's result.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

import dask
from carbonscape import leftovers
from carbonscape.errors import ClusterError, InputError
from dask.callbacks import Callback

log = logging.getLogger(__name__)

LOCAL_SCHEDULERS = ("synchronous", "threads", "processes")


def _format_seconds(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes < 120 else f"{minutes // 60} h {minutes % 60:02d} min"


class ProgressReport:
    """Progress of one computation, on stderr only: a tqdm bar when stderr is a terminal, else an
    INFO log line per ~10 % or ~30 s (a bar's carriage returns would fill a CI log).

    Parameters
    ----------
    label
        What is being computed, e.g. ``"supply: 4498×4147 pixels"``.
    bar
        Draw a bar (True), log lines (False), or choose from whether ``stream`` is a terminal (None).
    stream
        Where the bar goes (default ``sys.stderr``); log lines go through the ``logging`` module.
    step_pct, every_s
        A log line when the percentage crosses the next multiple of ``step_pct``, or ``every_s``
        seconds after the last line.
    quiet_s
        No intermediate log lines in the first ``quiet_s`` seconds, so a quick step logs only its
        final line.
    """

    def __init__(self, label: str, *, bar: bool | None = None, stream: TextIO | None = None, step_pct: int = 10, every_s: float = 30.0,
                 quiet_s: float = 1.0) -> None:
        self.label = label or "computing"
        self.stream = stream if stream is not None else sys.stderr
        if bar is None:
            isatty = getattr(self.stream, "isatty", None)
            try:
                bar = bool(isatty and isatty())
            except ValueError:  # a closed stream
                bar = False
        self.bar = bar
        self.step_pct, self.every_s, self.quiet_s = step_pct, every_s, quiet_s
        self.started = time.monotonic()
        self.done = self.total = 0
        self._last_line = self.started
        self._next_pct = step_pct
        self._logged_pct = -1
        self._tqdm: Any = None
        self._closed = False

    def update(self, done: int, total: int) -> None:
        """Record that ``done`` of ``total`` tasks have finished."""
        if self._closed:
            return
        self.done, self.total = done, total
        if self.bar:
            if self._tqdm is None:
                from tqdm import tqdm

                self._tqdm = tqdm(total=total, desc=self.label, unit="task", file=self.stream, mininterval=0.5, dynamic_ncols=True, leave=True)
            if self._tqdm.total != total:
                self._tqdm.total = total
            self._tqdm.update(done - self._tqdm.n)
            return
        pct = int(100 * done / total) if total else 100
        now = time.monotonic()
        # A line per step of the percentage, and a heartbeat when a step takes longer than every_s.
        due = pct >= self._next_pct or now - self._last_line >= self.every_s
        if due and now - self.started >= self.quiet_s:
            self._log(pct, now)

    def _log(self, pct: int, now: float) -> None:
        log.info("%s: %d%% (%d/%d tasks, %s)", self.label, pct, self.done, self.total, _format_seconds(now - self.started))
        self._logged_pct = pct
        self._last_line = now
        self._next_pct = (pct // self.step_pct + 1) * self.step_pct

    def close(self, *, failed: bool = False) -> None:
        """End the report: close the bar, or log the 100 % line if it is not out yet."""
        if self._closed:
            return
        self._closed = True
        if self._tqdm is not None:
            self._tqdm.close()
        elif not self.bar and not failed and self._logged_pct != 100:
            self.done = self.total = max(self.total, self.done)
            self._log(100, time.monotonic())


class _LocalProgress(Callback):
    """Feeds a :class:`ProgressReport` from dask's local schedulers (synchronous, threads,
    processes); their callbacks run in this process, so this never touches stdout."""

    def __init__(self, report: ProgressReport) -> None:
        super().__init__()
        self.report = report
        self.total = 0

    def _start_state(self, dsk: Any, state: dict[str, Any]) -> None:
        self.total = sum(len(state[k]) for k in ("ready", "waiting", "running", "finished"))
        self.report.update(len(state["finished"]), self.total)

    def _posttask(self, key: Any, result: Any, dsk: Any, state: dict[str, Any], worker_id: Any) -> None:
        self.report.update(len(state["finished"]), self.total)


@functools.cache
def _scheduler_feed_class() -> type:
    """A distributed progress feed that hands the scheduler's counts to a :class:`ProgressReport`
    instead of printing a bar to stdout (as ``distributed.progress`` does)."""
    from distributed.diagnostics.progressbar import ProgressBar

    class SchedulerFeed(ProgressBar):
        def __init__(self, futures: list[Any], report: ProgressReport) -> None:
            # The scheduler's Progress plugin counts every task the futures depend on, and its
            # feed polls over the client's own connection settings, so it works the same for a
            # LocalCluster and a remote scheduler.
            super().__init__(futures, scheduler=futures[0].client.scheduler.address, interval="500ms", complete=True)
            self.report = report

        def _draw_bar(self, remaining: int, all: int, **kwargs: Any) -> None:  # `all`: the feed's keyword
            self.report.update(all - remaining, all)

        def _draw_stop(self, **kwargs: Any) -> None:
            self.report.close(failed=kwargs.get("status") == "error")

    return SchedulerFeed


def in_order(collections: tuple[Any, ...]) -> tuple[Any, ...]:
    """``collections`` made safe to compute together, so that results come back in their order.

    dask 2026.8 returns the results of Delayed objects and other collections computed in one call
    grouped by kind, not in the order given: ``dask.compute(d1, x, d2, x2)`` gives
    ``(d1, d2, x, x2)``, and ``client.compute([...])`` does the same (reproduced in
    tests/test_cluster.py; dask/dask#12081 fixed a crash of the same mixing in
    ``_ExprSequence._simplify_down``, not the order). When both kinds are present, every dask array becomes the Delayed of
    its blocks, unoptimized so that chunk tasks shared with the other collections keep their keys
    and run once (each single-block table is its block's Delayed; larger arrays are put back
    together by :func:`dask.array.core.concatenate3`). Otherwise ``collections`` is returned as is.
    """
    from dask.delayed import Delayed, delayed

    kinds = {isinstance(c, Delayed) for c in collections if dask.is_dask_collection(c)}
    if len(kinds) < 2:
        return collections
    import dask.array as da
    from dask.array.core import concatenate3

    out = []
    for c in collections:
        if isinstance(c, da.Array):
            blocks = c.to_delayed(optimize_graph=False)
            out.append(blocks.flat[0] if blocks.size == 1 and c.ndim == blocks.ndim and all(len(k) == 1 for k in c.chunks)
                       else delayed(concatenate3)(blocks.tolist()) if c.ndim else blocks.item())
        else:
            out.append(c)
    return tuple(out)


@dataclass
class Executor:
    """An active place to compute: a distributed client, or one of dask's local schedulers."""

    description: str
    client: Any | None = None
    local_scheduler: str | None = None
    workers: int = 1

    def compute(self, *collections: Any, progress: bool | None = False, label: str = "") -> tuple[Any, ...]:
        """Compute dask collections here.

        Parameters
        ----------
        collections
            Dask collections.
        progress
            Report progress on stderr (True, or None for the same "auto" behaviour): a bar when
            stderr is a terminal, else an INFO log line per ~10 % or ~30 s. Never on stdout.
        label
            What is computed, shown with the progress.
        """
        report = ProgressReport(label) if progress is None or progress else None
        collections = in_order(collections)
        if self.client is not None:
            futures = self.client.compute(list(collections))
            if report is not None:
                self._follow(futures, report)
            return tuple(self.client.gather(futures))
        with dask.config.set(scheduler=self.local_scheduler):
            if report is None:
                return dask.compute(*collections)
            failed = True
            try:
                with _LocalProgress(report):
                    results = dask.compute(*collections)
                failed = False
            finally:
                report.close(failed=failed)
            return results

    def _follow(self, futures: list[Any], report: ProgressReport) -> None:
        """Block until the futures finish, feeding ``report`` from the scheduler."""
        try:
            feed = _scheduler_feed_class()(futures, report)
            self.client.sync(feed.listen)
        except Exception as exc:  # progress is a nicety: never fail a computation over it
            log.debug("no progress from the scheduler (%s); waiting without it", exc)
            from distributed import wait

            wait(futures)
        finally:
            # Not finished (an error, an interrupt): no "100 %" line.
            report.close(failed=not all(f.status == "finished" for f in futures))


def _local_cluster_size() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores)


@contextlib.contextmanager
def executor(scheduler: str | JobQueue | None = None) -> Iterator[Executor]:
    """Open the place to compute for the duration of a ``with`` block.

    When it closes (its workers stopped), staging areas given up by a failed or interrupted
    write are removed once more (:mod:`carbonscape.leftovers`): a chunk task still running when
    the write gave up may have written into one after it was first removed.

    Parameters
    ----------
    scheduler
        An address, a scheduler file, ``synchronous``/``threads``/``processes``, a job queue
        (``slurm``, ``pbs``... for one worker job, or a :class:`JobQueue`), or None for dask's
        configured ``scheduler-address`` or else a new LocalCluster, whose dashboard address is
        logged at INFO.

    Raises
    ------
    InputError
        A value that is no scheduler, or job settings missing or refused (exit 2).
    ClusterError
        A scheduler that cannot be reached, or a job queue that starts no worker in time (exit 1).
    """
    try:
        with _open_executor(scheduler) as active:
            yield active
    finally:
        leftovers.sweep()


@contextlib.contextmanager
def _open_executor(scheduler: str | JobQueue | None) -> Iterator[Executor]:
    if isinstance(scheduler, str) and scheduler.lower() in JOB_QUEUES:
        scheduler = JobQueue(scheduler.lower())
    if isinstance(scheduler, JobQueue):
        with _job_queue_executor(scheduler) as active:
            yield active
        return
    origin = ""
    if scheduler is None:
        configured = dask.config.get("scheduler-address", None) or dask.config.get("scheduler_address", None)
        if configured:
            scheduler = str(configured)
            origin = (" (this address comes from DASK_SCHEDULER_ADDRESS, dask's scheduler-address setting, as no --scheduler "
                      "was given; unset it to start a LocalCluster)")
    if scheduler in LOCAL_SCHEDULERS:
        workers = 1 if scheduler == "synchronous" else (os.cpu_count() or 1)
        yield Executor(description=scheduler, local_scheduler=scheduler, workers=workers)
        return

    from distributed import Client, LocalCluster

    if scheduler is None:
        # One in-process worker with a thread per core: the kernels, blosc decoding, GDAL and file
        # reads all release the GIL, and skipping worker processes saved a third of the supply
        # pass (no inter-process hops) and ~500 MiB of memory on the benchmark machine.
        threads = _local_cluster_size()
        distributed_log = logging.getLogger("distributed")
        level = distributed_log.level
        # Whatever the cluster prints while it starts belongs on stderr: stdout carries results.
        with contextlib.redirect_stdout(sys.stderr):
            cluster = LocalCluster(n_workers=1, threads_per_worker=threads, processes=False, dashboard_address=":0", silence_logs=logging.ERROR)
        try:
            with cluster, Client(cluster) as client:
                log.info("dask dashboard: %s", client.dashboard_link)
                try:
                    yield Executor(description=f"LocalCluster({threads} threads)", client=client, workers=threads)
                finally:
                    # Closing our own cluster cancels a progress feed still open after an error
                    # or an interrupt, which distributed reports as an ERROR with a traceback.
                    distributed_log.setLevel(logging.CRITICAL)
        finally:
            distributed_log.setLevel(level)
        return

    is_file = os.path.isfile(scheduler)
    if not is_file:
        try:
            _check_address(scheduler)
        except InputError as exc:
            raise InputError(f"{exc}{origin}") from None
    # dask's own connect timeout (DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT), 30 s by default.
    timeout = dask.config.get("distributed.comm.timeouts.connect", "30s")
    try:
        # Not the default client: every computation goes through Executor.compute, and a Client
        # that fails half-way through its start would otherwise leave dask's global scheduler
        # setting pointing at it.
        if is_file:
            client = Client(scheduler_file=scheduler, timeout=timeout, set_as_default=False)
        else:
            client = Client(scheduler, timeout=timeout, set_as_default=False)
    except (ValueError, KeyError, AssertionError, TypeError) as exc:  # what distributed raises for a file that is not a scheduler file
        raise InputError(
            f"{scheduler}: not a dask scheduler file ({type(exc).__name__}: {exc}); give the file that "
            f"`dask scheduler --scheduler-file FILE` wrote, or the address tcp://HOST:PORT{origin}"
        ) from exc
    except (OSError, TimeoutError) as exc:
        raise ClusterError(
            f"could not reach the dask scheduler {scheduler!r} ({exc}); check that `dask scheduler` "
            f"is running there and that the address or scheduler file is right{origin}"
        ) from exc
    with client:
        n = len(client.scheduler_info().get("workers", {}))
        if n == 0:
            log.warning("the scheduler %s has no workers yet; work waits for them", scheduler)
        yield Executor(description=f"scheduler {scheduler} ({n} workers)", client=client, workers=max(n, 1))


# -- HPC job queues (dask-jobqueue) -----------------------------------------------------------
#: Job queue systems and their dask-jobqueue cluster classes; each reads its defaults from the
#: dask configuration ``jobqueue.<system>.*`` (environment ``DASK_JOBQUEUE__<SYSTEM>__*``).
JOB_QUEUES = {
    "slurm": "SLURMCluster", "pbs": "PBSCluster", "sge": "SGECluster", "lsf": "LSFCluster",
    "htcondor": "HTCondorCluster", "oar": "OARCluster", "moab": "MoabCluster",
}
#: Settings a study's ``[cluster]`` section (or a caller) may give per job, over the dask configuration.
JOB_SETTINGS = ("queue", "account", "cores", "memory", "walltime", "processes", "log_directory", "job_extra_directives")
#: How long to wait for the first workers when no timeout is given (``carbonscape.jobs-timeout``
#: in the dask configuration, environment ``DASK_CARBONSCAPE__JOBS_TIMEOUT``).
DEFAULT_JOBS_TIMEOUT = "300s"


@dataclass(frozen=True)
class JobQueue:
    """Workers requested as jobs from an HPC queue (SLURM, PBS, SGE, LSF...) by dask-jobqueue.

    Parameters
    ----------
    system
        One of :data:`JOB_QUEUES` (``"slurm"``, ``"pbs"``...).
    jobs
        Number of worker jobs to submit (each runs ``processes`` dask workers over ``cores`` cores).
    settings
        Per-job settings over the dask configuration ``jobqueue.<system>.*``: ``queue``
        (partition), ``account``, ``cores``, ``memory`` (e.g. ``"8GiB"``), ``walltime``
        (``"01:00:00"``), ``processes``, ``log_directory``, ``job_extra_directives``.
    timeout
        Seconds to wait for the workers to start; None reads ``carbonscape.jobs-timeout`` from
        the dask configuration (default 300 s). When the queue starts none in that time, the run
        stops with a :class:`~carbonscape.errors.ClusterError` (exit 1) naming the jobs and their state.
    """

    system: str
    jobs: int = 1
    settings: Mapping[str, Any] = field(default_factory=dict)
    timeout: float | None = None

    def __post_init__(self) -> None:
        if self.system not in JOB_QUEUES:
            raise InputError(f"job queue {self.system!r} is not known; use one of {', '.join(JOB_QUEUES)}")
        if not isinstance(self.jobs, int) or isinstance(self.jobs, bool) or self.jobs < 1:
            raise InputError(f"--jobs {self.jobs!r}: give the number of worker jobs to submit, 1 or more")
        unknown = sorted(set(self.settings) - set(JOB_SETTINGS))
        if unknown:
            raise InputError(f"[cluster] {', '.join(unknown)}: not a job setting; the settings are {', '.join(JOB_SETTINGS)}")
        if self.timeout is not None and not self.timeout > 0:
            raise InputError(f"[cluster] timeout {self.timeout!r}: give the seconds to wait for workers, more than 0")

    def options(self) -> dict[str, Any]:
        """Keyword arguments for the dask-jobqueue cluster: the dask configuration's
        ``jobqueue.<system>.*`` values, overridden by :attr:`settings`."""
        configured = dask.config.get(f"jobqueue.{self.system}", {}) or {}
        given = {key: value for key, value in self.settings.items() if value is not None}
        missing = [key for key in ("cores", "memory") if given.get(key) is None and configured.get(key) is None]
        if missing:
            env = " and ".join(f"DASK_JOBQUEUE__{self.system.upper()}__{key.upper()}" for key in missing)
            raise InputError(
                f"--scheduler {self.system}: the {' and '.join(missing)} of each worker job are not set; set {env} "
                f"(e.g. =4 and =16GiB), or jobqueue.{self.system}.{missing[0]} in a dask YAML file, or "
                f"{missing[0]} in the study file's [cluster] section"
            )
        return given

    def wait_seconds(self) -> float:
        if self.timeout is not None:
            return float(self.timeout)
        return float(dask.utils.parse_timedelta(dask.config.get("carbonscape.jobs-timeout", DEFAULT_JOBS_TIMEOUT)))


def job_queue(scheduler: str | JobQueue | None, jobs: int | None) -> str | JobQueue | None:
    """Combine ``--scheduler`` and ``--jobs``: a queue name becomes a :class:`JobQueue` of
    ``jobs`` worker jobs (1 when not given); ``--jobs`` without a queue is bad input."""
    if isinstance(scheduler, str) and scheduler.lower() in JOB_QUEUES:
        return JobQueue(scheduler.lower(), jobs=1 if jobs is None else jobs)
    if isinstance(scheduler, JobQueue):
        return scheduler if jobs is None else JobQueue(scheduler.system, jobs=jobs, settings=scheduler.settings, timeout=scheduler.timeout)
    if jobs is not None:
        raise InputError(
            f"--jobs {jobs} needs a job queue: add --scheduler {' or '.join(('slurm', 'pbs'))} (or another of "
            f"{', '.join(JOB_QUEUES)}); with a scheduler address the workers are already there"
        )
    return scheduler


def scheduler_from_settings(scheduler: str | JobQueue | None, cluster: Mapping[str, Any]) -> str | JobQueue | None:
    """The scheduler of a study: ``--scheduler`` when given, else the study file's ``[cluster]``
    (``scheduler``, ``jobs``, the per-job :data:`JOB_SETTINGS` and ``timeout``). A job queue given
    on the command line still takes the study's per-job settings."""
    settings = {key: cluster[key] for key in JOB_SETTINGS if cluster.get(key) is not None}
    timeout = cluster.get("timeout")
    if scheduler is None:
        scheduler = cluster.get("scheduler")
        if scheduler is None:
            return None
        if isinstance(scheduler, str) and scheduler.lower() in JOB_QUEUES:
            return JobQueue(scheduler.lower(), jobs=int(cluster.get("jobs") or 1), settings=settings, timeout=timeout)
        return scheduler
    if isinstance(scheduler, JobQueue) and (settings or timeout is not None):
        return JobQueue(scheduler.system, jobs=scheduler.jobs, settings={**settings, **scheduler.settings},
                        timeout=scheduler.timeout if scheduler.timeout is not None else timeout)
    return scheduler


@contextlib.contextmanager
def _job_queue_executor(queue: JobQueue) -> Iterator[Executor]:
    """Start a dask-jobqueue cluster, submit ``queue.jobs`` worker jobs, wait for them, and cancel
    the jobs when the block ends (also after an error or an interrupt)."""
    import shutil

    options = queue.options()
    import dask_jobqueue

    cls = getattr(dask_jobqueue, JOB_QUEUES[queue.system])
    submit = cls.job_cls.submit_command
    if submit and shutil.which(submit.split()[0]) is None:
        raise ClusterError(
            f"--scheduler {queue.system}: `{submit.split()[0]}` is not on this machine's PATH, so no worker job can be "
            f"submitted; run carbonscape on a login node of the {queue.system.upper()} cluster"
        )
    timeout = queue.wait_seconds()
    if not dask.config.get(f"jobqueue.{queue.system}.scheduler-options", {}) and "scheduler_options" not in options:
        options["scheduler_options"] = {"dashboard_address": ":0"}  # a fixed port collides with another run's
    with contextlib.redirect_stdout(sys.stderr):
        try:
            cluster = cls(**options)
        except (TypeError, ValueError) as exc:  # dask-jobqueue's errors for bad per-job settings
            raise InputError(f"--scheduler {queue.system}: the job settings were refused ({exc}); check jobqueue.{queue.system}.* "
                             "in the dask configuration and the study's [cluster] section") from exc
    distributed_log = logging.getLogger("distributed")
    level = distributed_log.level
    try:
        with cluster:
            from distributed import Client

            log.debug("worker job script:\n%s", cluster.job_script())
            if queue.system == "slurm":
                _test_submit(cluster.job_script(), {**(dask.config.get("jobqueue.slurm", {}) or {}), **options})
            cluster.scale(jobs=queue.jobs)
            with Client(cluster, set_as_default=False) as client:
                log.info("submitted %d %s worker job(s); waiting up to %s for them (dashboard %s)",
                         queue.jobs, queue.system.upper(), _format_seconds(timeout), client.dashboard_link)
                expected = queue.jobs * int(cluster._dummy_job.worker_processes)  # workers per job × jobs
                try:
                    client.wait_for_workers(1, timeout=timeout)
                except TimeoutError:
                    raise ClusterError(
                        f"--scheduler {queue.system}: the queue started none of the {queue.jobs} worker job(s) in "
                        f"{_format_seconds(timeout)} ({_job_states(queue.system, cluster)}); check the queue/partition "
                        f"({options.get('queue') or dask.config.get(f'jobqueue.{queue.system}.queue', None) or 'default'}), "
                        "the account and the per-job cores, memory and walltime against the queue's limits, or wait longer "
                        "(DASK_CARBONSCAPE__JOBS_TIMEOUT or [cluster] timeout)"
                    ) from None
                try:  # the rest of the jobs, briefly: the work starts on the first and spreads as they come
                    client.wait_for_workers(expected, timeout=min(timeout, 60.0))
                except TimeoutError:
                    pass
                n = len(client.scheduler_info().get("workers", {}))
                if n < expected:
                    log.warning("%d of %d %s workers have started; the work begins on them and spreads as the rest arrive",
                                n, expected, queue.system.upper())
                try:
                    yield Executor(description=f"{queue.system.upper()} ({queue.jobs} jobs, {n} workers at start)", client=client,
                                   workers=max(n, 1))
                finally:
                    distributed_log.setLevel(logging.CRITICAL)  # closing cancels the jobs: their workers' farewells are noise
    finally:
        distributed_log.setLevel(level)


def test_submission(queue: JobQueue) -> None:
    """Ask the job queue, without submitting anything, whether it would accept the worker job
    `run` would submit: ``sbatch --test-only`` for SLURM (what `check` does for a study's
    ``[cluster]``). Other queues have no such dry run; nothing is asked of them.

    Raises
    ------
    InputError
        The job settings are missing (cores, memory) or SLURM refuses the job (a partition,
        account, memory or walltime it does not have), naming the settings.
    ClusterError
        ``sbatch`` cannot reach the SLURM controller (not the settings' fault).
    """
    import shutil

    options = queue.options()
    if queue.system != "slurm" or shutil.which("sbatch") is None:
        return
    import dask_jobqueue

    cls = getattr(dask_jobqueue, JOB_QUEUES[queue.system])
    job_options = {key: value for key, value in options.items() if key not in ("scheduler_options", "n_workers")}
    try:  # the job script alone: a placeholder scheduler address, as dask-jobqueue's own dummy job has
        script = cls.job_cls(scheduler="tcp://127.0.0.1:8786", name="carbonscape-check", **job_options).job_script()
    except (TypeError, ValueError) as exc:
        raise InputError(f"--scheduler {queue.system}: the job settings were refused ({exc}); check jobqueue.{queue.system}.* "
                         "in the dask configuration and the study's [cluster] section") from exc
    _test_submit(script, {**(dask.config.get("jobqueue.slurm", {}) or {}), **options})


def _test_submit(script: str, options: Mapping[str, Any]) -> None:
    """Ask SLURM whether it would accept the worker job (``sbatch --test-only``), so a wrong
    partition, account, memory or walltime is named now rather than after the wait."""
    import subprocess
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".sh") as handle:
        handle.write(script)
        handle.flush()
        try:
            done = subprocess.run(["sbatch", "--test-only", handle.name], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.SubprocessError) as exc:
            raise ClusterError(f"--scheduler slurm: sbatch did not answer ({exc}); is slurmctld up (try `sinfo`)?") from exc
    if done.returncode != 0:
        said = " ".join(line.removeprefix("sbatch: error: ").strip() for line in done.stderr.splitlines() if line.strip())
        settings = ", ".join(f"{key}={options[key]!r}" for key in ("queue", "account", "cores", "memory", "walltime") if options.get(key))
        infrastructure = "unable to contact" in said.lower() or "connection" in said.lower()
        if infrastructure:
            raise ClusterError(
                f"--scheduler slurm: sbatch cannot reach the SLURM controller ({said}); the job settings are not at fault. "
                "Check that slurmctld is up (`scontrol ping`, `sinfo`) and that this machine may submit jobs"
            )
        raise InputError(
            f"--scheduler slurm: SLURM refuses the worker job: {said or 'sbatch failed'}"
            + (f" (job settings {settings})" if settings else "")
            + "; fix jobqueue.slurm.* in the dask configuration (DASK_JOBQUEUE__SLURM__QUEUE, __ACCOUNT, __CORES, __MEMORY, "
            "__WALLTIME) or the study's [cluster] section; `sinfo` lists the partitions and their limits"
        )


def _job_states(system: str, cluster: Any) -> str:
    """Each submitted job's id and, where the queue tells (SLURM's squeue), its state and reason."""
    ids = [job.job_id for job in list(cluster.workers.values()) if getattr(job, "job_id", None)]
    if not ids:
        return "no job was accepted by the queue; see the log with -vv"
    if system == "slurm":
        import subprocess

        try:
            done = subprocess.run(["squeue", "-h", "-j", ",".join(ids), "-o", "%i %T %r"], capture_output=True, text=True, timeout=20)
            states = [line.strip() for line in done.stdout.splitlines() if line.strip()]
            if states:
                return "jobs " + "; ".join(states)
        except (OSError, subprocess.SubprocessError):
            pass
    return "jobs " + ", ".join(ids)


def _check_address(scheduler: str) -> None:
    """Refuse, before any connection attempt, a value that is neither a known scheduler, an
    existing file nor an address (dask's own error for "thread" is "missing port number")."""
    if "://" in scheduler or re.fullmatch(r"[\w.\-]+:\d+|\[[0-9a-fA-F:]+\]:\d+", scheduler):
        return
    looks_like_a_file = os.sep in scheduler or scheduler.endswith((".json", ".yaml", ".yml"))
    raise InputError(
        (f"--scheduler {scheduler}: no such scheduler file. " if looks_like_a_file else f"--scheduler {scheduler!r} is not a scheduler. ")
        + f"Give a scheduler address (tcp://HOST:PORT), a scheduler file written by `dask scheduler --scheduler-file`, "
        f"one of {', '.join(LOCAL_SCHEDULERS)}, or a job queue ({', '.join(JOB_QUEUES)}: worker jobs through dask-jobqueue, "
        f"e.g. --scheduler slurm --jobs 4); with no --scheduler a LocalCluster is started"
    )


@contextlib.contextmanager
def using(run: Executor | None, scheduler: str | JobQueue | None) -> Iterator[Executor]:
    """The caller's executor when it passes one (a study shares one cluster), else a new one."""
    if run is not None:
        yield run
        return
    with executor(scheduler) as active:
        yield active
