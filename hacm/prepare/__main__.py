"""`python -m hacm.prepare DATASET --raw DIR --out DIR`: raw files -> memory-mapped train/test stores.

`python -m hacm.prepare import --from FILE --out DIR [--benchmark KEY]` turns a MAMP / CTR-GCN `.npz` or a
pyskl `.pkl` file into the same stores (hacm.data.imported says what each format already did).

Writes OUT/<benchmark>/{train,test}/ for every benchmark of the dataset and OUT/report.json listing
every file that could not be used and why (also one line each on stderr). Exits 1 when the share of
bad files passes --max-bad-fraction, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from hacm.cli import interrupts_raise, quiet_interrupts_while_starting

if __name__ == "__main__":  # before the imports below (numpy, pandas): a Ctrl-C while they load is one line
    quiet_interrupts_while_starting("hacm.prepare")

from hacm.benchmarks import DATASETS as REGISTRY  # noqa: E402  (after the start-up guard above)
from hacm.data.convert import (  # noqa: E402
    DEFAULT_MAX_BAD_FRACTION,
    ConversionError,
    ConversionReport,
    convert_ntu,
    convert_pku,
    default_workers,
    finish_report,
)
from hacm.locks import OutputLock, OutputLockError  # noqa: E402

IMPORT = "import"
DATASETS = (*REGISTRY, "synthetic", IMPORT)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hacm.prepare", description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=DATASETS)
    parser.add_argument("--raw", type=Path, help="folder of raw files (synthetic: written here if absent)")
    parser.add_argument("--from", dest="from_file", type=Path, metavar="FILE",
                        help="import: a MAMP / CTR-GCN .npz or a pyskl .pkl file")
    parser.add_argument("--benchmark", help="import: the benchmark of a .npz whose name does not say it "
                        "(ntu60-xsub, ...), or the dataset of a .pkl")
    parser.add_argument("--out", type=Path, required=True, help="folder for the stores and report.json")
    parser.add_argument("--workers", type=int, default=default_workers(), help="parallel processes (default: all cores)")
    parser.add_argument("--max-bad-fraction", type=float, default=DEFAULT_MAX_BAD_FRACTION,
                        help="fail when a larger share of files is bad (default %(default)s)")
    parser.add_argument("--missing", type=Path, help="NTU missing-skeleton list (default: found under --raw)")
    parser.add_argument("--no-missing-list", action="store_true", help="NTU: convert every file, skip no list")
    parser.add_argument("--seed", type=int, default=0, help="synthetic: generator seed")
    return parser


def conversion_parts(args: argparse.Namespace, out: Path) -> list[tuple[str, Path, Callable[[ConversionReport], None]]]:
    """(name, raw folder, conversion into `out`) for each part of the dataset: one, or three for synthetic."""
    raw, workers = args.raw, args.workers
    if args.dataset == IMPORT:
        from hacm.data.imported import import_file

        return [(IMPORT, args.from_file, lambda report: import_file(args.from_file, out, report=report,
                                                                    benchmark=args.benchmark))]
    family = REGISTRY[args.dataset].family if args.dataset in REGISTRY else None
    if family == "ntu":
        return [(args.dataset, raw, lambda report: convert_ntu(
            raw, out, dataset=args.dataset, workers=workers, report=report,
            missing_list=args.missing, use_missing_list=not args.no_missing_list))]
    if family == "pku":
        phase = int(args.dataset[-1])
        return [(args.dataset, raw, lambda report: convert_pku(
            raw, out, phase=phase, workers=workers, report=report))]
    from hacm.data.synthetic import NTU60_NUM_CLASSES, NUM_CLASSES, write_synthetic_raw

    write_synthetic_raw(raw, seed=args.seed)
    # The synthetic NTU files are converted twice, like the real downloads: NTU-60 (its setups and
    # classes) and NTU-120 (every file), each with its own missing-skeleton list.
    parts = [(f"synthetic-{dataset}", raw / "ntu", lambda report, d=dataset, n=classes: convert_ntu(
        raw / "ntu", out, dataset=d, workers=workers, report=report, missing_list=None, num_classes=n,
        dataset_label="synthetic")) for dataset, classes in (("ntu60", NTU60_NUM_CLASSES), ("ntu120", NUM_CLASSES))]
    for phase in (1, 2):
        parts.append((f"synthetic-pku{phase}", raw / f"pku{phase}", lambda report, p=phase: convert_pku(
            raw / f"pku{p}", out, phase=p, workers=workers, report=report, num_classes=NTU60_NUM_CLASSES,
            dataset_label="synthetic")))
    return parts


def prepare(args: argparse.Namespace, *, into: Path) -> list[ConversionReport]:
    """Run the conversion(s) of one dataset into `into` (the staging folder of args.out); one timed report
    per part, naming args.out, where the stores will be."""
    reports = []
    for name, raw, convert in conversion_parts(args, into):
        report = ConversionReport(dataset=name, raw=str(raw), out=str(args.out), workers=args.workers)
        start = time.perf_counter()
        convert(report)
        report.seconds = time.perf_counter() - start
        reports.append(report)
    return reports


def main(argv: list[str] | None = None) -> int:
    interrupts_raise()  # from here on, the handlers below keep the previous output whole
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if not 0 <= args.max_bad_fraction <= 1:
        parser.error("--max-bad-fraction must lie in [0, 1]")
    if args.dataset == IMPORT:
        if args.from_file is None or args.raw is not None:
            parser.error("import takes --from FILE (a .npz or .pkl file), not --raw")
    elif args.raw is None:
        parser.error(f"{args.dataset} needs --raw DIR")
    elif args.dataset != "synthetic" and not args.raw.is_dir():
        parser.error(f"--raw {args.raw} is not a folder (run `python -m hacm.fetch {args.dataset}` first)")
    out = args.out
    if out.exists() and not out.is_dir():
        parser.error(f"--out {out} is a file, not a folder for the stores")
    try:
        with OutputLock(out.with_name(out.name + ".lock"), output=out, hint="wait for it to finish"):
            return _prepare_into(args, out)
    except (OutputLockError, OSError) as error:
        print(f"hacm.prepare: error: {error}", file=sys.stderr)
        return 1


def _prepare_into(args: argparse.Namespace, out: Path) -> int:
    """Convert into a staging folder, check, and swap it in as `out` (the caller holds out's lock)."""
    staging = out.with_name(out.name + ".staging")
    rejected = out.with_name(out.name + ".rejected-report.json")
    replaced = out.with_name(out.name + ".replaced")
    try:
        if staging.exists():  # a run killed with kill -9 (nothing could remove it then)
            print(f"hacm.prepare: removing {staging}, left by an interrupted run", file=sys.stderr)
        _remove(staging)
        # Everything is written into a staging folder and replaces `out` in one step once every check
        # passed: a failed or interrupted run leaves the previous complete output as it was.
        reports = prepare(args, into=staging)
        status = finish_report(reports, staging, max_bad_fraction=args.max_bad_fraction, shown_report=rejected)
        if status:
            os.replace(staging / "report.json", rejected)
            _remove(staging)
            print(f"hacm.prepare: {_unchanged(out)}", file=sys.stderr)
            return status
        rejected.unlink(missing_ok=True)
        _remove(replaced)  # what an earlier run interrupted after its swap left behind
    except (ConversionError, OSError, ValueError) as error:
        _remove(staging)
        print(f"hacm.prepare: error: {error}; {_unchanged(out)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        _remove(staging)
        print(f"hacm.prepare: interrupted; {_unchanged(out)}", file=sys.stderr)
        return 130
    # A Ctrl-C between the two renames would leave neither output in place: it waits until both are done.
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        if out.exists():
            os.replace(out, replaced)
        os.replace(staging, out)
    finally:
        signal.signal(signal.SIGINT, handler)
    try:
        _remove(replaced)
    except KeyboardInterrupt:  # the new output is complete; the old copy goes at the next run
        print(f"hacm.prepare: interrupted after {out} was complete; {replaced} is removed by the next run",
              file=sys.stderr)
        return 130
    return 0


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def _unchanged(out: Path) -> str:
    return (f"{out} was left as it was (its previous complete output)" if out.exists()
            else f"nothing was written to {out}")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # in the instants around main(): its own handlers cover the work itself
        print("hacm.prepare: interrupted", file=sys.stderr)
        sys.exit(130)
