"""Where a sweep's tasks run: this process, a local process pool, or a Dask distributed cluster.

Each engine offers ``submit(function, *args) -> future`` and
``completed(futures)``, which yields the futures as they finish (each
once), and is a context manager that, on leaving with an error or Ctrl-C,
cancels what has not run. The tasks are pure functions of their arguments;
the caller writes every result, so workers need no shared file system.

* :class:`SerialEngine`: one task after another, here (``--workers 1``).
* :class:`PoolEngine`: a :class:`~concurrent.futures.ProcessPoolExecutor`.
* :class:`DaskEngine`: a ``distributed.Client`` connected to a scheduler. A
  task whose worker dies is run again on another worker by the scheduler;
  the caller still sees its future complete once.

``lost_worker_errors`` are the exceptions a future raises when its worker
was lost for good (a pool process killed; a task that killed Dask workers
too often).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool

from deepopt_mip.formulation.errors import InputError

DISTRIBUTED_HINT = "pip install 'deepopt-mip[distributed]'"
CONNECT_TIMEOUT_S = 10


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class _Deferred:
    """A task of :class:`SerialEngine`: run when its turn comes in ``completed``."""

    def __init__(self, function, args) -> None:
        self.function, self.args = function, args
        self.value = None

    def run(self) -> None:
        self.value = self.function(*self.args)

    def result(self):
        return self.value


class SerialEngine:
    """Runs the tasks one after another, in this process, in the order they were submitted."""

    name = "serial"
    workers = 1
    lost_worker_errors: tuple = ()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def submit(self, function, *args) -> _Deferred:
        return _Deferred(function, args)

    def completed(self, futures):
        for task in futures:
            task.run()
            yield task


def _ignore_sigint() -> None:
    """Pool workers leave Ctrl-C to the parent, which stops them (no traceback from each child)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class PoolEngine:
    """A local pool of ``workers`` processes (forked on Linux, spawned elsewhere)."""

    name = "local pool"
    lost_worker_errors = (BrokenProcessPool,)

    def __init__(self, workers: int) -> None:
        self.workers = workers
        method = "fork" if sys.platform.startswith("linux") else "spawn"
        self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method),
                                        initializer=_ignore_sigint)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.pool.shutdown(wait=True)
            return
        # Stop now: cancel what has not started and end the pool's own processes, which may be mid-cell.
        processes = list(getattr(self.pool, "_processes", {}).values())
        self.pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        for process in processes:
            process.join()

    def submit(self, function, *args):
        return self.pool.submit(function, *args)

    def completed(self, futures):
        return as_completed(futures)


class DaskEngine:
    """Tasks on a Dask distributed cluster through the scheduler at ``address`` (or an existing Client)."""

    name = "dask"

    def __init__(self, address) -> None:
        try:
            import distributed
        except ImportError:
            raise InputError(f"--scheduler needs Dask distributed: {DISTRIBUTED_HINT}") from None
        self._distributed = distributed
        self.lost_worker_errors = (distributed.KilledWorker,)
        if isinstance(address, distributed.Client):
            self.client, self._own = address, False
        else:
            try:
                self.client = distributed.Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
            except (OSError, TimeoutError, ValueError, TypeError) as exc:
                reason = " ".join(str(exc).split()) or type(exc).__name__
                raise InputError(f"cannot reach the Dask scheduler at {address} ({reason[:200]})") from None
            self._own = True
        from deepopt_mip.sweeps.dask_worker import AllocatorPlugin
        self.client.register_plugin(AllocatorPlugin())
        self.futures: list = []
        self.workers = len(self.client.scheduler_info().get("workers", {}))

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None and self.futures:
            self.client.cancel(self.futures)
        if self._own:
            self.client.close()

    def submit(self, function, *args):
        future = self.client.submit(function, *args, pure=False)
        self.futures.append(future)
        return future

    def completed(self, futures):
        return self._distributed.as_completed(futures, loop=self.client.loop)


def make_engine(workers: int | None = None, scheduler=None):
    """The engine for ``--workers``/``--scheduler``: Dask if a scheduler is given, else a pool of
    ``workers`` processes (default: one per CPU), or this process for one worker."""
    if scheduler is not None:
        return DaskEngine(scheduler)
    workers = default_workers() if workers is None else workers
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InputError(f"--workers must be a positive integer, got {workers!r}")
    return SerialEngine() if workers == 1 else PoolEngine(workers)
