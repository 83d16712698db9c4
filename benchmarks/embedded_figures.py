"""The embedded figures of the README (its headline: the linear table) and of docs/results.md (every table),
read from the tables the README's first command writes.

    python benchmarks/embedded_figures.py record --tables results/tables --minutes 15.2 --commit REV  # after all_tables
    python benchmarks/embedded_figures.py readme                 # rewrite the blocks of README.md and docs/results.md

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

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
README = REPO / "README.md"
RESULTS_PAGE = REPO / "docs" / "results.md"
HEADLINE = ("linear",)  # the README's table; docs/results.md has them all
START, END = "<!-- embedded-figures:start -->", "<!-- embedded-figures:end -->"
COMMAND = "python -m pip install torch==2.13.0 -c envs/constraints.txt -e . && python -m snakemake --cores 2 all_tables"
TABLES = ("linear", "finetune", "semi", "transfer", "ablations")


def cpu_model() -> str:
    for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


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


def latest_record() -> Path:
    """The newest embedded_<date>.json (ISO dates sort as text)."""
    return max(RESULTS.glob("embedded_*.json"))


def record(tables: Path, minutes: float | None, commit: str) -> None:
    from hacm.data.synthetic import GENERATOR_VERSION

    date = datetime.date.today().isoformat()
    machine = f"{cpu_model()}, {subprocess.check_output(['nproc']).decode().strip()} cores"
    previous = latest_record()
    path = RESULTS / f"embedded_{date}.json"
    document = {"provenance": {"command": f"{COMMAND}; python benchmarks/embedded_figures.py record", "commit": commit,
                               "date": date, "machine": machine, "generator_version": GENERATOR_VERSION,
                               "supersedes": previous.name if previous != path else None},
                "command": COMMAND, "machine": machine, "date": date, "workflow_minutes": minutes,
                "cells": read_cells(tables), "linear_differences": read_differences(tables)}
    path.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
    if previous != path:
        previous.unlink()  # git keeps it; INDEX.md names what the new one supersedes
    print(f"wrote {path}")


def _cell_text(cell: dict) -> str:
    text = f"{cell['best']:.1f}"
    if cell["last"] != cell["best"]:
        text += f" (last {cell['last']:.1f})"
    if "interval" in cell:
        text += f" [{cell['interval'][0]:.1f}, {cell['interval'][1]:.1f}]"
    return text


def render(document: dict, tables: tuple[str, ...] | None = None) -> str:
    """The block of docs/results.md: one Markdown table per paper table, our cells only; `tables` (the README's
    headline: the linear table) keeps those and leaves out the paired differences."""
    minutes = document.get("workflow_minutes")
    lines = [START,
             f"Recorded {document['date']} on {document['machine']}"
             + (f", `all_tables` took {minutes:.1f} min" if minutes else "")
             + f" (`{document['command']}`; `benchmarks/results/embedded_{document['date']}.json`, written by "
               "`python benchmarks/embedded_figures.py record`). Top-1 %, best epoch (last epoch when different) "
               "[95 % bootstrap interval over test samples of the last epoch]:", ""]
    for name, rows in document["cells"].items():
        if tables is not None and name not in tables:
            continue
        columns = list(dict.fromkeys(column for row in rows.values() for column in row))  # table order
        labels = {column: cell["column_label"] for row in rows.values() for column, cell in row.items()}
        agreement = name == "ablations"
        header = ["", *(labels[c] for c in columns)] + (["masking agreement (temporal / spatial / single)"] if agreement else [])
        lines += [f"**{name}**", "", "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
        for row in rows.values():
            first = next(iter(row.values()))
            values = [_cell_text(row[c]) if c in row else "—" for c in columns]
            if agreement:
                values.append(" / ".join("—" if a is None else f"{a:.2f}" for a in first.get("agreement", [None] * 3)))
            lines.append("| " + " | ".join([first["label"], *values]) + " |")
        lines.append("")
    if tables is not None:
        return "\n".join([*lines, END])
    lines.append("Linear, HA-CM minus another row (paired bootstrap over test samples, last epoch, 95 % interval):")
    lines.append("")
    for entry in document["linear_differences"]:
        verdict = "excludes 0" if entry["excludes_zero"] else "includes 0"
        lines.append(f"- {entry['column_label']}, versus {entry['versus']}: {entry['diff']:+.1f} points "
                     f"[{entry['interval'][0]:+.1f}, {entry['interval'][1]:+.1f}], {verdict}")
    lines += ["", END]
    return "\n".join(lines)


def readme_block(text: str) -> str:
    start, end = text.index(START), text.index(END) + len(END)
    return text[start:end]


def update_readme() -> None:
    document = json.loads(latest_record().read_text())
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
