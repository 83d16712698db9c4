"""The embedded figures of the README (its headline: the linear table) and of docs/results.md (every table),
read from the tables the README's first command writes.

    python benchmarks/experiments/embedded_figures.py record --tables results/tables --minutes 15.2 --commit REV  # after all_tables
    python benchmarks/experiments/embedded_figures.py readme                 # rewrite the blocks of README.md and docs/results.md

`record` reads our cells from results/tables/*.csv and writes benchmarks/results/embedded_<date>.json with its
provenance (the command, the commit measured, lscpu's model name, the synthetic generator's version and the
file it supersedes, which it removes); `readme` renders the README's block between the
`embedded-figures` markers from that file (and the block of docs/results.md). tests/test_readme.py checks that
both blocks are exactly what `readme` renders, so no page quotes a figure the recorded tables do not hold.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import subprocess
from pathlib import Path

from hacm.pages import HEADLINE, README, REPO, RESULTS_PAGE, latest, readme_block, render
from hacm.provenance import RESULTS, cpu_model

COMMAND = "python -m pip install torch==2.13.0 -c envs/constraints.txt -e . && python -m snakemake --cores 2 all_tables"
TABLES = ("linear", "finetune", "semi", "transfer", "ablations")


def read_cells(tables: Path) -> dict:
    """table -> row -> column -> {best, last, low, high, agreement}, our cells that ran."""
    cells: dict = {}
    for name in TABLES:
        with open(tables / f"{name}.csv", newline="") as handle:
            for row in csv.DictReader(handle):
                if row["source"] != "ours" or row["status"] != "ok":
                    continue
                cell = {"label": row["label"].removesuffix(" (ours, synthetic)"), "column_label": row["column_label"],
                        "best": round(float(row["best_mean"]), 1), "last": round(float(row["last_mean"]), 1)}
                if row.get("ci_low"):
                    cell["interval"] = [round(float(row["ci_low"]), 1), round(float(row["ci_high"]), 1)]
                agreement = [row.get(f"agreement_{g}") for g in ("temporal", "spatial", "all")]
                if any(agreement):
                    cell["agreement"] = [float(a) if a else None for a in agreement]
                cells.setdefault(name, {}).setdefault(row["row"], {})[row["column"]] = cell
    return cells


def read_differences(tables: Path) -> list[dict]:
    """The linear table's paired bootstrap differences (HA-CM minus another row, per benchmark)."""
    with open(tables / "linear_differences.csv", newline="") as handle:
        return [{"column_label": row["column_label"], "versus": row["row_b"], "diff": round(float(row["diff"]), 1),
                 "interval": [round(float(row["ci_low"]), 1), round(float(row["ci_high"]), 1)],
                 "excludes_zero": row["excludes_zero"] == "true"} for row in csv.DictReader(handle)]


def record(tables: Path, minutes: float | None, commit: str) -> None:
    from hacm.data.synthetic import GENERATOR_VERSION

    date = datetime.date.today().isoformat()
    machine = f"{cpu_model()}, {subprocess.check_output(['nproc']).decode().strip()} cores"
    previous = latest("embedded")
    path = RESULTS / f"embedded_{date}.json"
    document = {"provenance": {"command": f"{COMMAND}; python benchmarks/experiments/embedded_figures.py record", "commit": commit,
                               "date": date, "machine": machine, "generator_version": GENERATOR_VERSION,
                               "supersedes": previous.name if previous != path else None},
                "command": COMMAND, "machine": machine, "date": date, "workflow_minutes": minutes,
                "cells": read_cells(tables), "linear_differences": read_differences(tables)}
    path.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
    if previous != path:
        previous.unlink()  # git keeps it; INDEX.md names what the new one supersedes
    print(f"wrote {path}")


def update_readme() -> None:
    document = json.loads(latest("embedded").read_text())
    for page, tables in ((README, HEADLINE), (RESULTS_PAGE, None)):
        text = page.read_text()
        page.write_text(text.replace(readme_block(text), render(document, tables)))
        print(f"updated {page}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    recording = commands.add_parser("record", help="read the tables into benchmarks/results/embedded_<date>.json")
    recording.add_argument("--tables", type=Path, default=REPO / "results" / "tables")
    recording.add_argument("--minutes", type=float, help="wall time of the all_tables run")
    recording.add_argument("--commit", required=True, help="the commit of the clone whose run made the tables")
    commands.add_parser("readme", help="rewrite the README and docs/results.md blocks from the newest embedded_<date>.json")
    args = parser.parse_args()
    if args.command == "record":
        record(args.tables, args.minutes, args.commit)
    else:
        update_readme()


if __name__ == "__main__":
    main()
