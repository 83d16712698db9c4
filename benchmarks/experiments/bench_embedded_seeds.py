"""The embedded protocol over several pretraining seeds: mean ± std per cell and the robustness goals.

    python benchmarks/experiments/bench_embedded_seeds.py --out benchmarks/out/seeds [--seeds 0 1 2] [--cores 2]
    python benchmarks/experiments/bench_embedded_seeds.py --out benchmarks/out/seeds --report-only

Runs the README's main workflow (config/config.yaml, `all_tables`) with `seeds` replaced, in its own
working directory, then reads every run's metrics.json and checks, seed by seed, the goals of the
embedded demonstration: HA-CM linear >= random encoder + 10 points on each NTU benchmark and + 5 on each
PKU-MMD benchmark; MAE and MAMP above random; fine-tune above linear above random; transfer above
fine-tuning from scratch on the target. Prints a Markdown table (last-epoch top-1, the statistic of a
single run's final model; the tables show best epochs) and writes it, with the per-seed numbers, to
OUT/summary.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

from hacm.pages import render_seeds
from hacm.runs import Protocol, bench_folder

REPO = Path(__file__).resolve().parents[2]
NTU = ("ntu60-xsub", "ntu60-xview", "ntu120-xsub", "ntu120-xset")
PKU = ("pku1-xsub", "pku2-xsub")


def run_workflow(out: Path, seeds: list[int], cores: int) -> float:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["seeds"] = seeds
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(out),
                    "--cores", str(cores), "all_tables", "--configfile", str(out / "config.yaml")], check=True)
    return time.perf_counter() - started


def top1(out: Path, benchmark: str, method: str, protocol: str, seed: int) -> float | None:
    path = out / "results" / bench_folder(benchmark) / method / protocol / f"seed{seed}" / "metrics.json"
    return 100 * json.loads(path.read_text())["top1"] if path.is_file() else None


def cells(out: Path, seed: int) -> dict[str, float]:
    """Every number the goals read, for one seed: 'protocol method benchmark' -> top-1 %."""
    found = {}
    for benchmark in (*NTU, *PKU):
        for method in ("hacm", "mae", "mamp", "random"):
            for protocol in ("linear", "finetune"):
                value = top1(out, benchmark, method, protocol, seed)
                if value is not None:
                    found[f"{protocol} {method} {benchmark}"] = value
    for source in ("ntu60-xsub", "ntu120-xsub"):
        value = top1(out, "pku2-xsub", "hacm", Protocol("transfer", source=source).folder, seed)
        if value is not None:
            found[f"transfer hacm {source}->pku2-xsub"] = value
    return found


def goals(values: dict[str, float]) -> list[tuple[str, bool]]:
    """(goal, met) for one seed's numbers; goals whose cells were not run are left out."""
    checks = []

    def need(name: str, left: str, right: str, margin: float = 0.0) -> None:
        if left in values and right in values:
            checks.append((name, values[left] >= values[right] + margin if margin else values[left] > values[right]))

    for benchmark in NTU:
        need(f"HA-CM linear >= random + 10 ({benchmark})", f"linear hacm {benchmark}", f"linear random {benchmark}", 10)
    for benchmark in PKU:
        need(f"HA-CM linear >= random + 5 ({benchmark})", f"linear hacm {benchmark}", f"linear random {benchmark}", 5)
    for method in ("mae", "mamp"):
        need(f"{method.upper()} linear > random (ntu60-xsub)", f"linear {method} ntu60-xsub", "linear random ntu60-xsub")
    for benchmark in (*NTU, *PKU):
        need(f"fine-tune > linear ({benchmark})", f"finetune hacm {benchmark}", f"linear hacm {benchmark}")
        need(f"fine-tune > from scratch ({benchmark})", f"finetune hacm {benchmark}", f"finetune random {benchmark}")
    for source in ("ntu60-xsub", "ntu120-xsub"):
        need(f"transfer from {source} > from scratch (pku2-xsub)", f"transfer hacm {source}->pku2-xsub",
             "finetune random pku2-xsub")
    return checks


def summarise(out: Path, seeds: list[int], seconds: float | None) -> dict:
    """Every seed's cells and goal verdicts (goal -> met, in the order of `goals`), as OUT/summary.json keeps them."""
    per_seed = {seed: cells(out, seed) for seed in seeds}
    verdicts = {seed: dict(goals(per_seed[seed])) for seed in seeds}
    met = sum(ok for seed in seeds for ok in verdicts[seed].values())
    return {"seeds": seeds, "cells": per_seed, "goals": verdicts, "met": met,
            "checks": sum(len(verdicts[seed]) for seed in seeds), "workflow_seconds": seconds}


def report(out: Path, seeds: list[int], seconds: float | None) -> dict:
    summary = summarise(out, seeds, seconds)
    print(render_seeds(summary))
    minutes = f"; workflow {seconds / 60:.1f} min" if seconds else ""
    print(f"\n{summary['met']} of {summary['checks']} goal checks met{minutes}")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="working directory of the workflow run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--report-only", action="store_true", help="read an earlier run's results")
    args = parser.parse_args()
    seconds = None if args.report_only else run_workflow(args.out, args.seeds, args.cores)
    report(args.out, args.seeds, seconds)


if __name__ == "__main__":
    main()
