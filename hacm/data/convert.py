"""Convert a folder of raw files into every benchmark's train / test stores, in parallel, with a report.

A bad file never stops a conversion and never disappears: each one becomes a problem line (stderr
and `report.json`), and the run fails only when the share of bad files passes a threshold. What was
changed or skipped without making a file bad (a linked folder walked once, an interval cut at the end of
its video) is a notice, listed the same way.
"""

from __future__ import annotations

import contextlib
import collections
import json
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from hacm.benchmarks import BENCHMARKS, DATASETS, benchmarks_of
from hacm.data.ntu import NTU_NAME, parse_ntu_name, parse_skeleton_texts, sample_from_skeleton, skeleton_bytes
from hacm.data.pku import PKU_NUM_CLASSES, PkuVideo, load_pku_video
from hacm.data.raw import SkeletonFormatError
from hacm.data.splits import assign_split, is_ntu60_sample, read_pku_split_file
from hacm.data.storage import SampleMeta, StoreWriter
from hacm.files import files_under, walk_files

SPLITS = ("train", "test")
NTU_BATCH = 16  # .skeleton files parsed per call of the C parser (its set-up cost is shared)
DEFAULT_MAX_BAD_FRACTION = 0.02
NOTICES_SHOWN = 20  # on stderr per part; report.json lists them all


class ConversionError(RuntimeError):
    """A conversion that cannot start or whose result is unusable; the message says why."""


@dataclass
class Problem:
    path: str
    reason: str


@dataclass
class ConversionReport:
    dataset: str
    raw: str
    out: str
    workers: int
    files_found: int = 0
    files_skipped_missing_list: int = 0
    files_out_of_scope: int = 0
    files_converted: int = 0
    problems: list[Problem] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # not problems: no file is bad for them
    stores: dict[str, dict[str, int]] = field(default_factory=dict)
    classes_present: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def files_bad(self) -> int:
        return len({p.path for p in self.problems})

    def to_json(self) -> dict:
        data = {k: v for k, v in self.__dict__.items() if k != "problems"}
        data["files_bad"] = self.files_bad
        data["files_per_second"] = round(self.files_converted / self.seconds, 1) if self.seconds else None
        data["problems"] = [p.__dict__ for p in self.problems]
        return data


def read_name_list(path: Path) -> set[str]:
    """Sample names in a list file; header sentences of the official lists are ignored."""
    text = path.read_text(encoding="utf-8", errors="replace")
    return {match.group(0) for match in NTU_NAME.finditer(text)}


def find_missing_list(raw: Path, dataset: str, explicit: Path | None) -> Path:
    if explicit is not None:
        if not explicit.is_file():
            raise ConversionError(f"missing-skeleton list {explicit} does not exist")
        return explicit
    name = DATASETS[dataset].missing_list
    found = files_under(raw, name)
    if not found:
        raise ConversionError(
            f"{name} not found under {raw}: run `python -m hacm.fetch {dataset}` (it places the official "
            "list, which ships with hacm), or pass --missing FILE, or --no-missing-list to convert every file"
        )
    return found[0]


# --- worker functions (module level so that they pickle) -------------------------------------


def _describe(error: Exception) -> str:
    # Format errors carry their own explanation; anything else is named by its type.
    return str(error) if isinstance(error, ValueError) else f"{type(error).__name__}: {error}"


def _convert_ntu_files(paths: list[str]) -> list[tuple[str, np.ndarray | None, str | None]]:
    """A batch of files, parsed together (`parse_skeleton_texts`); per file its frames or its problem."""
    texts, results = [], {}
    for path in paths:
        try:
            texts.append((skeleton_bytes(path), Path(path).name.removesuffix(".skeleton")))
        except SkeletonFormatError as error:
            results[path] = (path, None, _describe(error))
    readable = [path for path in paths if path not in results]
    for path, parsed in zip(readable, parse_skeleton_texts(texts)):
        try:
            if isinstance(parsed, Exception):
                raise parsed
            results[path] = (path, sample_from_skeleton(parsed), None)
        except Exception as error:  # one bad file must not stop the others
            results[path] = (path, None, _describe(error))
    return [results[path] for path in paths]


def _convert_pku_video(paths: tuple[str, str]) -> tuple[str, PkuVideo | None, str | None]:
    skeleton, labels = paths
    try:
        return skeleton, load_pku_video(skeleton, labels), None
    except Exception as error:  # one bad file must not stop the others
        return skeleton, None, _describe(error)


def _ignore_interrupts() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def parallel_map(function: Callable, items: list, *, workers: int, description: str, batch: int = 0,
                 in_flight: int = 4) -> Iterator:
    """Results in input order, computed by `workers` processes, with a progress bar on stderr (in items).
    batch > 0: `function` takes a list of up to `batch` items and returns their results in order.

    At most `in_flight` items (batches) per worker are submitted and not yet taken: when the caller, which
    writes the stores, falls behind (a disk that throttles its writes), the workers go on only that far
    instead of piling results up in memory (a PKU-MMD video's samples are megabytes)."""
    bar = tqdm(total=len(items), desc=description, unit="file", mininterval=1.0, file=sys.stderr)
    if batch:
        items = [items[start : start + batch] for start in range(0, len(items), batch)]
    pool, completed = None, False
    try:
        if workers <= 1:
            results: Iterable = map(function, items)
        else:
            # Workers ignore SIGINT: a Ctrl-C reaches the whole process group, and a worker stopped in the
            # middle of sending a result leaves the pool's queue locked. While the pool is built, SIGINT
            # is blocked (no worker is interrupted before it can ignore it) and a Ctrl-C already on its
            # way is only noted: raised inside Pool() it would leave a half-built pool whose handler
            # keeps forking workers while the interpreter waits for them at exit. It is raised once
            # `pool` exists, so that the clean-up below stops it.
            noted: list[int] = []
            previous = signal.signal(signal.SIGINT, lambda signum, frame: noted.append(signum))
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
            try:
                pool = multiprocessing.get_context("fork").Pool(workers, initializer=_ignore_interrupts)
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
                signal.signal(signal.SIGINT, previous)
            if noted and previous is signal.default_int_handler:
                raise KeyboardInterrupt
            results = _bounded_results(pool, function, items, in_flight=workers * in_flight)
        for result in results:
            for one in result if batch else [result]:
                bar.update()
                yield one
        completed = True
    finally:
        bar.close()
        if pool is not None:
            if completed:
                pool.close()
                pool.join()
            else:
                _abandon(pool)


def _bounded_results(pool, function: Callable, items: list, *, in_flight: int) -> Iterator:
    """`function` over `items` in order, with at most `in_flight` items submitted and not yet taken."""
    pending: collections.deque = collections.deque()
    for item in items:
        pending.append(pool.apply_async(function, (item,)))
        if len(pending) >= in_flight:
            yield pending.popleft().get()
    while pending:
        yield pending.popleft().get()


def _abandon(pool) -> None:
    """Stop a pool at once, without waiting on its queues. Pool.terminate() SIGTERMs the workers and then
    joins the pool's handler threads; a worker stopped while it held a queue lock leaves a handler waiting
    on that lock forever (3 of ~155 Ctrl-Cs in the reliability probe). Instead: SIGKILL and reap every
    worker, and drop the pool's exit-time terminate (its handler threads are daemons and die with us)."""
    from multiprocessing.pool import TERMINATE

    pool._state = TERMINATE  # no handler may start replacement workers or send more tasks
    for handler in ("_worker_handler", "_task_handler", "_result_handler"):
        if hasattr(pool, handler):
            getattr(pool, handler)._state = TERMINATE
    for _ in range(2):  # twice: a replacement started just before the state changed is caught too
        workers = list(getattr(pool, "_pool", []))
        for worker in workers:
            try:
                os.kill(worker.pid, signal.SIGKILL)
            except (ProcessLookupError, TypeError):
                pass
        for worker in workers:
            worker.join(timeout=5)
    finalizer = getattr(pool, "_terminate", None)
    if finalizer is not None:
        finalizer.cancel()


class StoreSet:
    """The train and test writers of several benchmarks."""

    def __init__(self, out: Path, benchmarks: Iterable[str], info: dict) -> None:
        self.writers = {
            (benchmark, split): StoreWriter(
                out / benchmark / split, info={**info, "benchmark": benchmark, "split": split}
            )
            for benchmark in benchmarks
            for split in SPLITS
        }
        self.labels: dict[str, set[int]] = {benchmark: set() for benchmark in benchmarks}

    def add(self, benchmark: str, split: str, frames: np.ndarray, meta: SampleMeta) -> None:
        self.writers[benchmark, split].add(frames, meta)
        self.labels[benchmark].add(meta.label)

    def close(self, report: ConversionReport) -> None:
        for (benchmark, split), writer in self.writers.items():
            if len(writer) == 0:
                writer.abort()
                raise ConversionError(f"{benchmark} {split} split would be empty: no usable sample")
            report.stores.setdefault(benchmark, {})[split] = len(writer)
            writer.close()
        report.classes_present = {b: len(labels) for b, labels in self.labels.items()}

    def abort(self) -> None:
        for writer in self.writers.values():
            writer.abort()

    @contextlib.contextmanager
    def committed(self, report: ConversionReport):
        """The one store transaction: write inside the block; when it ends the stores are closed (their sizes
        into `report`), and when it raises (a bad file, Ctrl-C, an empty split) every store is removed."""
        try:
            yield self
            self.close(report)
        except BaseException:
            self.abort()
            raise


def convert_ntu(
    raw: Path,
    out: Path,
    *,
    dataset: str,
    workers: int,
    report: ConversionReport,
    missing_list: Path | None,
    use_missing_list: bool = True,
    benchmarks: tuple[str, ...] | None = None,
    num_classes: int | None = None,
    dataset_label: str | None = None,
) -> None:
    """NTU-format `.skeleton` files under `raw` -> stores of the dataset's benchmarks."""
    benchmarks = benchmarks or benchmarks_of(dataset)
    walk = walk_files(raw, "*.skeleton")
    report.notices.extend(walk.skipped)
    paths = sorted(walk.files, key=lambda p: (p.name, str(p)))
    report.files_found = len(paths)
    if not paths:
        raise ConversionError(f"no .skeleton file under {raw}")
    skip = read_name_list(find_missing_list(raw, dataset, missing_list)) if use_missing_list else set()
    wanted, seen = [], set()
    for path in paths:
        name = path.name.removesuffix(".skeleton")
        if NTU_NAME.fullmatch(name) is None:
            report.problems.append(Problem(str(path), "not an NTU sample name (SsssCcccPpppRrrrAaaa)"))
        elif name in seen:
            report.problems.append(Problem(str(path), "duplicate sample name; the first copy was used"))
        elif name in skip:
            report.files_skipped_missing_list += 1
        elif dataset == "ntu60" and not is_ntu60_sample(name):
            report.files_out_of_scope += 1
        else:
            seen.add(name)
            wanted.append(str(path))
    info = {"dataset": dataset_label or dataset, "num_classes": num_classes or DATASETS[dataset].num_classes}
    with StoreSet(out, benchmarks, info).committed(report) as stores:
        for path, frames, error in parallel_map(
            _convert_ntu_files, wanted, workers=workers, description=f"{dataset} skeletons", batch=NTU_BATCH,
            in_flight=32,  # batches of ~50 KB samples: up to 512 files (~30 MB) ahead per worker
        ):
            if error is not None:
                report.problems.append(Problem(path, error))
                continue
            name = Path(path).name.removesuffix(".skeleton")
            codes = parse_ntu_name(name)
            if codes.action > info["num_classes"]:
                report.problems.append(Problem(path, f"action A{codes.action:03d} beyond the "
                                                     f"{info['num_classes']} classes of {dataset}"))
                continue
            meta = SampleMeta(name=name, label=codes.action - 1, setup=codes.setup, camera=codes.camera,
                              performer=codes.performer, replication=codes.replication)
            for benchmark in benchmarks:
                stores.add(benchmark, assign_split(name, benchmark), frames, meta)
            report.files_converted += 1


def _pku_files(raw: Path, paths: list[Path], folder_word: str) -> dict[str, Path]:
    """Video id -> .txt file for the `paths` under a folder of `raw` whose name contains `folder_word`."""
    files = {}
    for path in paths:
        if any(folder_word in part.lower() for part in path.relative_to(raw).parts[:-1]):
            files.setdefault(path.stem, path)
    return files


def find_pku_split_file(raw: Path, benchmark: str) -> Path:
    for name in BENCHMARKS[benchmark].split_files:
        found = files_under(raw, name)
        if found:
            return found[0]
    raise ConversionError(
        f"split file for {benchmark} not found under {raw} (expected one of "
        f"{', '.join(BENCHMARKS[benchmark].split_files)})"
    )


def convert_pku(
    raw: Path,
    out: Path,
    *,
    phase: int,
    workers: int,
    report: ConversionReport,
    num_classes: int = PKU_NUM_CLASSES,
    dataset_label: str | None = None,
) -> None:
    """PKU-MMD skeleton + label files under `raw` -> x-sub and x-view stores of one phase."""
    benchmarks = benchmarks_of(f"pku{phase}")
    splits = {b: read_pku_split_file(find_pku_split_file(raw, b)) for b in benchmarks}
    walk = walk_files(raw, "*.txt")
    report.notices.extend(walk.skipped)
    skeletons = _pku_files(raw, walk.files, "skeleton")
    labels = _pku_files(raw, walk.files, "label")
    report.files_found = len(skeletons)
    if not skeletons:
        raise ConversionError(f"no skeleton .txt file under a 'skeleton' folder in {raw}")
    for video in sorted(set(labels) - set(skeletons)):
        report.problems.append(Problem(str(labels[video]), "label file without a skeleton file"))
    tasks = []
    for video, path in skeletons.items():
        if video in labels:
            tasks.append((str(path), str(labels[video])))
        else:
            report.problems.append(Problem(str(path), "skeleton file without a label file"))
    info = {"dataset": dataset_label or f"pku{phase}", "num_classes": num_classes}
    with StoreSet(out, benchmarks, info).committed(report) as stores:
        for path, video, error in parallel_map(
            _convert_pku_video, tasks, workers=workers, description=f"pku{phase} videos"
        ):
            if error is not None:
                report.problems.append(Problem(path, error))
                continue
            report.problems.extend(Problem(file, reason) for file, reason in video.problems)
            report.notices.extend(f"{file}: {what}" for file, what in video.notices)
            for sample in video.samples:
                meta = SampleMeta(name=sample.name, label=sample.label)
                for benchmark in benchmarks:
                    train, test = splits[benchmark]
                    try:
                        split = assign_split(sample.video, benchmark, pku_train=train, pku_test=test)
                    except ValueError as unlisted:
                        report.problems.append(Problem(path, str(unlisted)))
                        break
                    stores.add(benchmark, split, sample.frames, meta)
            report.files_converted += 1


def bad_fraction(report: ConversionReport) -> float:
    """Share of the files in scope that could not be used."""
    considered = report.files_found - report.files_skipped_missing_list - report.files_out_of_scope
    return report.files_bad / max(considered, 1)


def finish_report(reports: list[ConversionReport], out: Path, *, max_bad_fraction: float,
                  shown_report: Path | None = None) -> int:
    """Write report.json, print one stderr line per problem and a summary per part; the exit status.
    `shown_report`: where the report will be when the user reads the error (default out/report.json)."""
    out.mkdir(parents=True, exist_ok=True)
    document = {"max_bad_fraction": max_bad_fraction, "parts": [r.to_json() for r in reports]}
    (out / "report.json").write_text(json.dumps(document, indent=2) + "\n")
    status = 0
    failing = any(bad_fraction(report) > max_bad_fraction for report in reports)
    for report in reports:
        for problem in report.problems:
            print(f"hacm.prepare: skipped {problem.path}: {problem.reason}", file=sys.stderr)
        for notice in report.notices[:NOTICES_SHOWN]:
            print(f"hacm.prepare: note: {notice}", file=sys.stderr)
        if len(report.notices) > NOTICES_SHOWN:
            listed = (shown_report or out / "report.json") if failing else Path(report.out) / "report.json"
            print(f"hacm.prepare: note: and {len(report.notices) - NOTICES_SHOWN} more on {report.dataset}, "
                  f"listed under \"notices\" in {listed}", file=sys.stderr)
        share = bad_fraction(report)
        stores = ", ".join(f"{b} {s['train']}/{s['test']}" for b, s in report.stores.items())
        print(
            f"hacm.prepare: {report.dataset}: {report.files_converted} files converted in "
            f"{report.seconds:.1f} s with {report.workers} workers; {report.files_bad} bad "
            f"({share:.1%}), {report.files_skipped_missing_list} on the missing list"
            f"{_notes(len(report.notices))}; train/test {stores}"
        )
        if share > max_bad_fraction:
            print(
                f"hacm.prepare: error: {share:.1%} of the {report.dataset} files are bad, more than "
                f"the allowed {max_bad_fraction:.1%} (--max-bad-fraction); see {shown_report or out / 'report.json'}",
                file=sys.stderr,
            )
            status = 1
    return status


def _notes(count: int) -> str:
    return "" if not count else ", 1 note" if count == 1 else f", {count} notes"


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
