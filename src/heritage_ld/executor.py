"""Where the per-record work runs: in this process, in local worker processes, or on a Dask cluster.

The pipeline hands an executor a task (a top-level function), the project folder, one shared
value (e.g. the path of the run's work database) and an iterable of chunks. Each worker loads
and compiles the project once a version (``project()``) and runs the task on whole chunks. Results come
back lazily and in chunk order, with a bounded number of chunks in flight, so memory does not
grow with the number of records and the output is the same whatever runs it.
"""
from __future__ import annotations

import multiprocessing
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Protocol

Task = Callable[[str, Any, list], list]


class Executor(Protocol):
    workers: int   # processes on this machine, which also share the writing (a Dask run writes in one)

    def run(self, task: Task, root: Path, shared: Any, chunks: Iterable[list]) -> Iterator[list]: ...


class Serial:
    workers = 1

    def run(self, task: Task, root: Path, shared: Any, chunks: Iterable[list]) -> Iterator[list]:
        return (task(str(root), shared, c) for c in chunks)


def _windowed(submit: Callable[[list], Any], result: Callable[[Any], list], chunks: Iterable[list],
              window: int) -> Iterator[list]:
    """Submit chunks ahead, at most ``window`` in flight; yield their results in order."""
    pending: deque = deque()
    for chunk in chunks:
        pending.append(submit(chunk))
        if len(pending) >= window:
            yield result(pending.popleft())
    while pending:
        yield result(pending.popleft())


class Processes:
    """Local worker processes (fork), one chunk a task."""

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def run(self, task: Task, root: Path, shared: Any, chunks: Iterable[list]) -> Iterator[list]:
        with ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("fork")) as pool:
            yield from _windowed(lambda c: pool.submit(task, str(root), shared, c), lambda f: f.result(),
                                 chunks, 3 * self.workers)


class Dask:
    """A Dask distributed cluster: ``--executor dask --scheduler tcp://host:8786``.

    The project folder (with its ``.heritage-ld`` work database) must be readable at the same
    path on every worker (a shared volume)."""
    workers = 1  # on this machine: the coordinator writes the output in one process

    def __init__(self, scheduler: str) -> None:
        from distributed import Client
        self.client = Client(scheduler)

    def run(self, task: Task, root: Path, shared: Any, chunks: Iterable[list]) -> Iterator[list]:
        workers = max(1, sum(w.get("nthreads", 1) for w in self.client.scheduler_info()["workers"].values()))
        return _windowed(lambda c: self.client.submit(task, str(root), shared, c, pure=False),
                         lambda f: f.result(), chunks, 3 * workers)

    def close(self) -> None:
        self.client.close()


def make(workers: int = 1, executor: str = "local", scheduler: str | None = None) -> Executor:
    if executor == "dask":
        if not scheduler:
            raise ValueError("--executor dask needs --scheduler ADDRESS (e.g. tcp://127.0.0.1:8786)")
        return Dask(scheduler)
    return Processes(workers) if workers > 1 else Serial()


@lru_cache(maxsize=2)
def project(root: str, key: str):
    """(config, mappings, shapes) of a project, loaded once per process and ``key`` (the digest of
    its configuration, mappings, shapes and code: a long-lived Dask worker sees edits)."""
    from .pipeline import load_project
    return load_project(Path(root))
