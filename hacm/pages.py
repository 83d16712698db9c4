"""The recorded figures as the pages show them (torch-free): the embedded run's tables (the README shows the
linear one, docs/results.md all of them) and the three-seed benchmark's tables, rendered from their results
files in benchmarks/results/. The benchmark scripts that record them and tests/test_readme.py both use these,
so a page never quotes a figure its results file does not hold.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from hacm.provenance import RESULTS

REPO = RESULTS.parents[1]
README = REPO / "README.md"
RESULTS_PAGE = REPO / "docs" / "results.md"
HEADLINE = ("linear",)  # the README's table; docs/results.md has them all
START, END = "<!-- embedded-figures:start -->", "<!-- embedded-figures:end -->"


def latest(topic: str) -> Path:
    """The newest results file of a topic (<topic>_<date>.json; ISO dates sort as text)."""
    found = sorted(RESULTS.glob(f"{topic}_*.json"))
    if not found:
        raise FileNotFoundError(f"no {topic}_<date>.json in {RESULTS}")
    return found[-1]


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
               "`python benchmarks/experiments/embedded_figures.py record`). Top-1 %, best epoch (last epoch when different) "
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


def render_seeds(summary: dict) -> str:
    """The Markdown tables of a summary (also read back from summary.json, whose seed keys are strings): the
    docs/results.md quotes them verbatim, and tests/test_readme.py holds them to the newest embedded-seeds_<date>.json."""
    seeds = summary["seeds"]
    # A seed missing from either section is a KeyError, not an empty column.
    cells_by_seed = {str(seed): values for seed, values in summary["cells"].items()}
    goals_by_seed = {str(seed): values for seed, values in summary["goals"].items()}
    per_seed = {seed: cells_by_seed[str(seed)] for seed in seeds}
    verdicts = {seed: goals_by_seed[str(seed)] for seed in seeds}
    lines = [f"| cell (last-epoch top-1 %) | mean ± std over seeds {', '.join(map(str, seeds))} | per seed |", "|---|---|---|"]
    for key in sorted({key for values in per_seed.values() for key in values}):
        numbers = [per_seed[s][key] for s in seeds if key in per_seed[s]]
        spread = f" ± {statistics.stdev(numbers):.1f}" if len(numbers) > 1 else ""
        lines.append(f"| {key} | {statistics.mean(numbers):.1f}{spread} | {' / '.join(f'{n:.1f}' for n in numbers)} |")
    lines += ["", f"| goal | {' | '.join(f'seed {s}' for s in seeds)} |", "|---|" + "---|" * len(seeds)]
    for name in verdicts[seeds[0]]:
        marks = ["met" if verdicts[s][name] else "**missed**" for s in seeds]
        lines.append(f"| {name} | {' | '.join(marks)} |")
    return "\n".join(lines)
