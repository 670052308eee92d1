"""Where the chunks are computed: a local cluster, an existing scheduler, or a plain dask scheduler.

``scheduler`` accepts ``tcp://HOST:PORT`` (or any distributed address), the path of a scheduler
file, or one of dask's local schedulers ``synchronous``, ``threads``, ``processes``. With none,
dask's own ``scheduler-address`` setting (``DASK_SCHEDULER_ADDRESS``) is honoured, and otherwise
a :class:`distributed.LocalCluster` sized to the machine is started for the duration of the work.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dask
from carbonscape.errors import ClusterError
from dask.diagnostics import ProgressBar

log = logging.getLogger(__name__)

LOCAL_SCHEDULERS = ("synchronous", "threads", "processes")


@dataclass
class Executor:
    """An active place to compute: a distributed client, or one of dask's local schedulers."""

    description: str
    client: Any | None = None
    local_scheduler: str | None = None
    workers: int = 1

    def compute(self, *collections: Any, progress: bool = False, label: str = "") -> tuple[Any, ...]:
        """Compute dask collections here, with a progress bar on stderr when asked."""
        if self.client is not None:
            futures = self.client.compute(list(collections))
            if progress:
                from distributed import progress as distributed_progress

                if label:
                    print(label, file=sys.stderr)
                # The text bar polls the scheduler, so it works for a remote cluster as well.
                distributed_progress(futures, notebook=False, multi=False)
                print(file=sys.stderr)
            return tuple(self.client.gather(futures))
        with dask.config.set(scheduler=self.local_scheduler):
            if progress:
                if label:
                    print(label, file=sys.stderr)
                with ProgressBar(out=sys.stderr, minimum=0.5):
                    return dask.compute(*collections)
            return dask.compute(*collections)


def _local_cluster_size() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores)


@contextlib.contextmanager
def executor(scheduler: str | None = None, *, announce: bool = False) -> Iterator[Executor]:
    """Open the place to compute for the duration of a ``with`` block.

    Parameters
    ----------
    scheduler
        An address, a scheduler file, ``synchronous``/``threads``/``processes``, or None for
        dask's configured ``scheduler-address`` or else a new LocalCluster.
    announce
        Print the dashboard address when a local cluster starts.
    """
    if scheduler is None:
        configured = dask.config.get("scheduler-address", None) or dask.config.get("scheduler_address", None)
        if configured:
            scheduler = str(configured)
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
        try:
            with (
                contextlib.redirect_stdout(sys.stderr),
                LocalCluster(n_workers=1, threads_per_worker=threads, processes=False, dashboard_address=":0", silence_logs=logging.ERROR) as cluster,
                Client(cluster) as client,
            ):
                if announce:
                    print(f"dask dashboard: {client.dashboard_link}", file=sys.stderr)
                try:
                    yield Executor(description=f"LocalCluster({threads} threads)", client=client, workers=threads)
                finally:
                    # Closing our own cluster cancels the progress bar's scheduler feed, which
                    # distributed reports as an ERROR with a traceback; it is not one.
                    distributed_log.setLevel(logging.CRITICAL)
        finally:
            distributed_log.setLevel(level)
        return

    # dask's own connect timeout (DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT), 30 s by default.
    timeout = dask.config.get("distributed.comm.timeouts.connect", "30s")
    try:
        if os.path.exists(scheduler):
            client = Client(scheduler_file=scheduler, timeout=timeout)
        else:
            client = Client(scheduler, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise ClusterError(
            f"could not reach the dask scheduler {scheduler!r} ({exc}); check that `dask scheduler` "
            "is running there and that the address or scheduler file is right"
        ) from exc
    with client:
        n = len(client.scheduler_info().get("workers", {}))
        if n == 0:
            log.warning("the scheduler %s has no workers yet; work waits for them", scheduler)
        yield Executor(description=f"scheduler {scheduler} ({n} workers)", client=client, workers=max(n, 1))


@contextlib.contextmanager
def using(run: Executor | None, scheduler: str | None, *, announce: bool = False) -> Iterator[Executor]:
    """The caller's executor when it passes one (a study shares one cluster), else a new one."""
    if run is not None:
        yield run
        return
    with executor(scheduler, announce=announce) as active:
        yield active
