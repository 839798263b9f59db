"""The labelling loop shared by `pseudolabel` and `annotate`: tasks labelled in this process or in worker processes,
each finished record appended to the progress file before the next is reported done."""
from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, as_completed, wait
from pathlib import Path
from typing import Any, Protocol

from tqdm import tqdm

from unionpose.apps.labelling.progress import append_record
from unionpose.core.atomic import atomic_path


class TaskLabeller(Protocol):
    """Labels one task (one image) into one progress record; holds its sources, so one per process."""

    def __call__(self, task: Any) -> dict: ...

    def close(self) -> None: ...


_WORKER: TaskLabeller | None = None


def _start_worker(make_labeller: Callable[[], TaskLabeller]) -> None:
    """The worker processes' initializer: one labeller (one set of models or MediaPipe graphs) per process."""
    global _WORKER
    _WORKER = make_labeller()


def _label_in_worker(task: Any) -> dict:
    return _WORKER(task)


def label_tasks(tasks: Iterable[Any], make_labeller: Callable[[], TaskLabeller], workers: int = 1,
                total: int | None = None, initial: int = 0, progress: bool = True, desc: str = "labels"
                ) -> Iterator[dict]:
    """Records as tasks finish, in this process or in `workers` processes (then in any order).

    `make_labeller` must be picklable (a class, or a `functools.partial` of one) when `workers` > 1.
    """
    bar = tqdm(total=total, initial=initial, unit="image", disable=not progress, desc=desc)
    try:
        if workers == 1:
            labeller = make_labeller()
            try:
                for task in tasks:
                    yield labeller(task)
                    bar.update(1)
            finally:
                labeller.close()
            return
        # spawn, never fork: a process forked after MediaPipe ran aborts when it starts its own graph. A bounded
        # number of images is in flight, so video frames are written as they are labelled, not all up front.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, context, _start_worker, (make_labeller,)) as pool:
            pending: set = set()
            for task in tasks:
                pending.add(pool.submit(_label_in_worker, task))
                if len(pending) >= 2 * workers:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in finished:
                        yield future.result()
                        bar.update(1)
            for future in as_completed(pending):
                yield future.result()
                bar.update(1)
    finally:
        bar.close()


def record_progress(progress_file: Path, header: dict, records: Iterable[dict], done: dict[str, dict]) -> int:
    """Append each record to the progress file (the header first when the file is new) and to `done`, by file
    name; returns how many were added."""
    new = 0
    with progress_file.open("a") as file:
        if file.tell() == 0:
            append_record(file, {"header": header})
        for record in records:
            append_record(file, record)
            done[record["file_name"]] = record
            new += 1
    return new


def write_atomically(path: Path, data: bytes) -> None:
    """A reader never sees half a file; an interrupted write leaves the old one."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)
