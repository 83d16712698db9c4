"""Sweep of the embedded small-model recipe over several seeds: which setting is stable, not lucky.

    python benchmarks/experiments/sweep_embedded_recipe.py --data resources/data/synthetic --out benchmarks/out/sweep \
        --benchmarks ntu60-xsub pku2-xsub --seeds 0 1 2 --grid optim.lr=0.03,0.1 optim.epochs=12,20
    python benchmarks/experiments/sweep_embedded_recipe.py --out benchmarks/out/sweep --report-only

Each grid point (one combination of the --grid values, applied over config/config.yaml's `pretrain`
section) pretrains every --methods method on every benchmark for every seed and probes the encoder with
config/config.yaml's `evaluate` section (linear protocol); the random encoder is probed once per benchmark,
seed and architecture. Reported per point and method: pretraining seconds per run, the reconstruction
loss of the first and last epoch, linear top-1 mean ± std over seeds, and the smallest margin over the
random encoder of the same seed. Runs that finished are reused (delete OUT to start again); two jobs at
a time by default, one thread each. Writes OUT/sweep.json and prints (and writes OUT/sweep.md) a table.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from hacm.recipes import Recipes
from hacm.recipes.workflow_config import load_workflow_config

REPO = Path(__file__).resolve().parents[2]


def parse_grid(items: list[str]) -> list[dict[str, object]]:
    """['optim.lr=0.03,0.1', 'data.batch_size=16,32'] -> every combination as {key: value}."""
    axes = []
    for item in items:
        key, _, values = item.partition("=")
        if not key or not values:
            raise SystemExit(f"sweep: --grid wants KEY=V1,V2,..., got {item!r}")
        axes.append([(key, yaml.safe_load(value)) for value in values.split(",")])
    return [dict(point) for point in itertools.product(*axes)] or [{}]


def with_overrides(document: dict, overrides: dict[str, object]) -> dict:
    document = copy.deepcopy(document)
    for key, value in overrides.items():
        *parents, leaf = key.split(".")
        node = document
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return document


def point_name(point: dict[str, object]) -> str:
    return ",".join(f"{key}={value}" for key, value in point.items()) or "default"


def run(command: list[str], log: Path) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as handle:
        done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
    if done.returncode:
        raise RuntimeError(f"{' '.join(command[:4])} failed: see {log}")


def linear(data: Path, encoder: str, document: dict, out: Path) -> None:
    if not (out / "metrics.json").is_file():
        config = out.with_suffix(".yaml")
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(yaml.safe_dump(document, sort_keys=False))
        run([sys.executable, "-m", "hacm.evaluate", "--protocol", "linear", "--config", str(config), "--data",
             str(data), "--encoder", encoder, "--out", str(out), "--no-progress"], out.with_suffix(".log"))


def pretrain_and_probe(data: Path, pretrain_doc: dict, linear_doc: dict, out: Path) -> None:
    if not (out / "pretrain" / "encoder.pt").is_file():
        config = out / "pretrain.yaml"
        out.mkdir(parents=True, exist_ok=True)
        config.write_text(yaml.safe_dump(pretrain_doc, sort_keys=False))
        run([sys.executable, "-m", "hacm.pretrain", "--config", str(config), "--data", str(data), "--out",
             str(out / "pretrain"), "--no-progress", "--restart-on-change"], out / "pretrain.log")
    linear(data, str(out / "pretrain" / "encoder.pt"), linear_doc, out / "linear")


def documents(recipes: Recipes, benchmark: str, point: dict, method: str, seed: int) -> tuple[dict, dict]:
    """The workflow's own documents of the run (hacm.recipes: the config's overrides included, e.g. PKU-MMD's
    30 epochs) with the grid point laid over the pretraining; the probe reads that pretraining's model."""
    pretrain = with_overrides(recipes.pretrain_document(benchmark, method, seed), point)
    probe = recipes.evaluate_document(benchmark, method, "linear", seed)
    return pretrain, {**probe, "model": pretrain["model"]}


def model_key(point: dict) -> str:
    return point_name({key: value for key, value in point.items() if key.startswith("model.")})


def sweep(args: argparse.Namespace) -> None:
    recipes = Recipes(load_workflow_config(REPO / "config" / "config.yaml"))
    tasks = []
    for point in parse_grid(args.grid):
        for benchmark, seed in itertools.product(args.benchmarks, args.seeds):
            data = args.data / benchmark
            for method in args.methods:
                pretrain_doc, probe_doc = documents(recipes, benchmark, point, method, seed)
                out = args.out / point_name(point) / benchmark / method / f"seed{seed}"
                tasks.append((pretrain_and_probe, data, pretrain_doc, probe_doc, out))
            _, probe_doc = documents(recipes, benchmark, point, "hacm", seed)
            out = args.out / "random" / model_key(point) / benchmark / f"seed{seed}"
            tasks.append((linear, data, "none", probe_doc, out))
    unique = list({str(task[-1]): task for task in tasks}.values())
    (args.out).mkdir(parents=True, exist_ok=True)
    (args.out / "sweep_args.json").write_text(json.dumps(
        {"grid": args.grid, "benchmarks": args.benchmarks, "seeds": args.seeds, "methods": args.methods}, indent=1))
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(task[0], *task[1:]) for task in unique]
        for number, future in enumerate(futures, 1):
            future.result()
            print(f"sweep: {number}/{len(futures)} runs done", flush=True)


def epoch_losses(run_dir: Path) -> list[float]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [record["reconstruction"] for record in map(json.loads, lines) if record.get("kind") == "epoch"]


def pretrain_seconds(run_dir: Path) -> float:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return sum(record["seconds"] for record in map(json.loads, lines) if record.get("kind") == "epoch")


def top1(run_dir: Path) -> float:
    return 100 * json.loads((run_dir / "metrics.json").read_text())["top1"]


def report(out: Path) -> str:
    spec = json.loads((out / "sweep_args.json").read_text())
    rows, results = [], []
    for point in parse_grid(spec["grid"]):
        for benchmark in spec["benchmarks"]:
            random = {seed: top1(out / "random" / model_key(point) / benchmark / f"seed{seed}")
                      for seed in spec["seeds"]}
            for method in spec["methods"]:
                runs = [out / point_name(point) / benchmark / method / f"seed{seed}" for seed in spec["seeds"]]
                scores = [top1(run / "linear") for run in runs]
                losses = [epoch_losses(run / "pretrain") for run in runs]
                entry = {
                    "point": point, "benchmark": benchmark, "method": method, "seeds": spec["seeds"],
                    "linear_top1": scores, "random_top1": [random[seed] for seed in spec["seeds"]],
                    "reconstruction_first_last": [[loss[0], loss[-1]] for loss in losses],
                    "pretrain_seconds": [pretrain_seconds(run / "pretrain") for run in runs],
                }
                results.append(entry)
                margins = [score - random[seed] for score, seed in zip(scores, spec["seeds"])]
                spread = statistics.stdev(scores) if len(scores) > 1 else 0.0
                rows.append(
                    f"| {point_name(point)} | {benchmark} | {method} | {statistics.mean(scores):.1f} ± {spread:.1f} | "
                    f"{statistics.mean(random.values()):.1f} | {min(margins):+.1f} | "
                    f"{statistics.mean(l[0] for l in losses):.3f} → {statistics.mean(l[-1] for l in losses):.3f} | "
                    f"{statistics.mean(entry['pretrain_seconds']):.0f} |")
    (out / "sweep.json").write_text(json.dumps(results, indent=1) + "\n")
    table = "\n".join([
        f"Linear top-1 % (last epoch), seeds {', '.join(map(str, spec['seeds']))}; random = random encoder, same "
        "seeds; worst margin = the smallest (method - random) over seeds.",
        "",
        "| setting | benchmark | method | linear top-1 | random | worst margin | reconstruction (epoch 1 → last) | s / run |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
    ]) + "\n"
    (out / "sweep.md").write_text(table)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO / "resources" / "data" / "synthetic",
                        help="prepared synthetic stores (python -m hacm.prepare synthetic)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--benchmarks", nargs="+", default=["ntu60-xsub"])
    parser.add_argument("--methods", nargs="+", default=["hacm"], choices=["hacm", "mae", "mamp"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--grid", nargs="*", default=[], help="KEY=V1,V2,... over the pretrain section")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    if not args.report_only:
        sweep(args)
    print(report(args.out))


if __name__ == "__main__":
    main()
