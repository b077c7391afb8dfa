"""Where the per-record work runs: in this process, in local worker processes, or on a Dask cluster.

The pipeline hands an executor a task (a top-level function), the project folder, one shared
value (e.g. the ids of every record, for link checks) and a list of chunks. Each worker loads and
compiles the project once (``project()``) and runs the task on whole chunks; results come back in
chunk order, so the output is the same whatever runs it.
"""
from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any, Callable, Protocol

Task = Callable[[str, Any, list], list]


class Executor(Protocol):
    def run(self, task: Task, root: Path, shared: Any, chunks: list[list]) -> list[list]: ...


class Serial:
    def run(self, task: Task, root: Path, shared: Any, chunks: list[list]) -> list[list]:
        return [task(str(root), shared, c) for c in chunks]


_FORKED: dict[str, Any] = {}


class _Inherited:
    """Stands for the shared value in a forked worker: it is inherited, never pickled."""


class Processes:
    """Local worker processes (fork), one chunk a task."""

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def run(self, task: Task, root: Path, shared: Any, chunks: list[list]) -> list[list]:
        if len(chunks) < 2:
            return Serial().run(task, root, shared, chunks)
        _FORKED["shared"] = shared
        try:
            with ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("fork")) as pool:
                return list(pool.map(_call, [task] * len(chunks), [str(root)] * len(chunks),
                                     [_Inherited()] * len(chunks), chunks))
        finally:
            _FORKED.clear()


def _call(task: Task, root: str, shared: Any, chunk: list) -> list:
    return task(root, _FORKED["shared"] if isinstance(shared, _Inherited) else shared, chunk)


class Dask:
    """A Dask distributed cluster: ``--executor dask --scheduler tcp://host:8786``.

    The project folder must be readable at the same path on every worker (a shared volume)."""

    def __init__(self, scheduler: str) -> None:
        from distributed import Client
        self.client = Client(scheduler)

    def run(self, task: Task, root: Path, shared: Any, chunks: list[list]) -> list[list]:
        shared_future = self.client.scatter(shared, broadcast=True) if shared is not None else None
        futures = self.client.map(task, [str(root)] * len(chunks), [shared_future] * len(chunks), chunks,
                                  pure=False)
        return self.client.gather(futures)

    def close(self) -> None:
        self.client.close()


def make(workers: int = 1, executor: str = "local", scheduler: str | None = None) -> Executor:
    if executor == "dask":
        if not scheduler:
            raise ValueError("--executor dask needs --scheduler ADDRESS (e.g. tcp://127.0.0.1:8786)")
        return Dask(scheduler)
    return Processes(workers) if workers > 1 else Serial()


@cache
def project(root: str):
    """(config, mappings, shapes) of a project, loaded once per process."""
    from .pipeline import load_project
    return load_project(Path(root))
