"""`python -m hacm.tables`: cells (mean ± std, "not run", "—"), the three formats, LaTeX escaping, the
published-numbers file, one-line errors for bad plans, and the figure, on real and hand-made results."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from hacm.evaluate.schema import validate_metrics
from hacm.evaluate.__main__ import main as evaluate_main
from hacm.tables import ReportError
from hacm.tables.figures import read_epoch_losses
from hacm.tables.layout import TABLE_COLUMNS
from hacm.tables.plan import PlanError, load_plan
from hacm.tables.published import SOURCE_FIELDS, PublishedError, format_published, load_published, validate_published
from hacm.tables.cells import Cell
from hacm.tables.report import encoder_mismatch, make_report
from hacm.tables.writers import latex_escape
from tests.conftest import REPO, TINY_ARCHITECTURE

PUBLISHED = REPO / "config" / "published.yaml"
COLUMNS = [{"key": "ntu60-xsub", "label": "NTU-60 x-sub"}, {"key": "ntu60-xview", "label": "NTU-60 x-view"},
           {"key": "pku2-xsub", "label": "PKU-MMD II"}]


# ------------------------------------------------------------------------------------------- helpers


LAST_BELOW_BEST = 0.05  # the hand-made runs end this far below their best epoch
TEST_SAMPLES = 40  # of the hand-made runs: every last-epoch top-1 below is a whole number of them


def metrics_document(best: float, *, seed: int = 0, top5: float | None = None, protocol: str = "linear",
                     num_test: int = TEST_SAMPLES) -> dict:
    """A metrics.json as hacm.evaluate writes it (METRICS_SCHEMA): best top-1 `best` at epoch 7, the last
    (epoch 10) LAST_BELOW_BEST lower."""
    top1 = best - LAST_BELOW_BEST
    document = {
        "protocol": protocol, "top1": top1, "top5": max(top1, 0.9) if top5 is None else top5,
        "best_top1": best, "best_epoch": 7, "last_epoch": 10,
        "optimisation": {"global_batch": 256, "lr_absolute": 0.1, "lr_per_256": 0.1, "min_lr_absolute": 0.0,
                         "steps_per_epoch": 3},
        "per_class_accuracy": {"0": top1, "1": top1}, "num_train": 10, "num_test": num_test, "num_classes": 2,
        "seed": seed, "encoder": {"path": None, "sha256": None, "method": "hacm"}, "config": {},
        "git_commit": "0" * 40, "seconds": 1.0, "mode": "cached-features",
        "dataset": {"dataset": "synthetic", "benchmark": "ntu60-xsub"},
    }
    validate_metrics(document)
    return document


def write_predictions_csv(folder: Path, hits, *, names: list[str] | None = None) -> Path:
    """A predictions.csv as hacm.evaluate writes it, two classes: sample i is right where hits[i]."""
    names = names or [f"S{index:03d}" for index in range(len(hits))]
    lines = ["name,label,prediction,top5,correct"]
    for index, (name, hit) in enumerate(zip(names, hits)):
        label = index % 2
        prediction = label if hit else 1 - label
        lines.append(f"{name},{label},{prediction},{prediction} {1 - prediction},{int(bool(hit))}")
    path = folder / "predictions.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_run(folder: Path, hits, *, best: float | None = None, seed: int = 0, names: list[str] | None = None) -> Path:
    """A run folder: its predictions.csv (sample i right where hits[i]) and a metrics.json of the same run, whose
    best top-1 is `best` (by default LAST_BELOW_BEST above the last)."""
    folder.mkdir(parents=True, exist_ok=True)
    write_predictions_csv(folder, hits, names=names)
    best = float(np.mean(hits)) + LAST_BELOW_BEST if best is None else best
    path = folder / "metrics.json"
    path.write_text(json.dumps(metrics_document(best, seed=seed, num_test=len(hits))))
    return path


def write_metrics(folder: Path, name: str, best: float, *, seed: int = 0) -> Path:
    """A run whose first round(last top-1 × TEST_SAMPLES) test samples are right."""
    hits = np.arange(TEST_SAMPLES) < round((best - LAST_BELOW_BEST) * TEST_SAMPLES)
    return write_run(folder / name, hits, best=best, seed=seed)


def write_log(path: Path, losses: list[float], *, agreements: dict[int, object] | None = None) -> Path:
    """A pretraining metrics.jsonl, one epoch per loss; `agreements`: masking_agreement at some epochs."""
    lines = []
    for epoch, loss in enumerate(losses, start=1):
        lines.append({"kind": "step", "epoch": epoch, "step": 0, "loss": loss + 0.1})
        record = {"kind": "epoch", "epoch": epoch, "loss": loss, "reconstruction": loss, "contrast": 0.0}
        if epoch in (agreements or {}):
            record["masking_agreement"] = agreements[epoch]
        lines.append(record)
    lines.append({"kind": "done", "seconds": 3})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


@pytest.fixture()
def handmade(tmp_path) -> dict:
    """Three seeds on NTU-60 x-sub (50 / 60 / 70 %), one on x-view, none on PKU-MMD II; a baseline row."""
    results = tmp_path / "results"
    seeds = [write_metrics(results, f"hacm/seed{seed}", top1, seed=seed) for seed, top1 in enumerate([0.5, 0.6, 0.7])]
    view = write_metrics(results, "hacm/xview", 0.8123)
    baseline = write_metrics(results, "scratch/seed0", 0.25)
    log = write_log(tmp_path / "pretrain.jsonl", [1.0, 0.8, 0.7])
    plan = {
        "dataset": "synthetic",
        "tables": [
            {"name": "linear", "title": "Linear evaluation (top-1 %)", "metric": "top1", "columns": COLUMNS,
             "rows": [{"key": "hacm", "label": "HA-CM", "cells": {"ntu60-xsub": [str(p) for p in seeds],
                                                                    "ntu60-xview": [str(view)], "pku2-xsub": []}},
                      {"key": "scratch", "label": "No pretraining & 100% of_labels #1",
                       "cells": {"ntu60-xsub": [str(baseline)]}}],
             "published": "linear"},
            {"name": "semi", "title": "Semi-supervised (top-1 %)", "metric": "top1",
             "columns": [{"key": "ntu60-xsub-1", "label": "NTU-60 x-sub 1 %"}],
             "rows": [{"key": "hacm", "label": "HA-CM", "cells": {}}], "published": None},
        ],
        "curves": [{"label": "HA-CM ntu60-xsub", "method": "hacm", "benchmark": "ntu60-xsub", "log": str(log)}],
        "accuracy_figure": "linear",
    }
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    return {"plan": path, "document": plan, "out": tmp_path / "report", "tmp": tmp_path}


def run_cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """`python -m hacm.tables render ARGS`."""
    return subprocess.run([sys.executable, "-m", "hacm.tables", "render", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def markdown_cells(path: Path) -> list[list[str]]:
    rows = []
    for line in path.read_text().splitlines():
        if line.startswith("| ") and not line.startswith("| Method") and not line.startswith("| ---"):
            parts = [part.strip().replace("\\|", "|") for part in re.split(r"(?<!\\)\|", line)[1:-1]]
            rows.append(parts)
    return rows


def latex_cells(path: Path) -> list[list[str]]:
    text = path.read_text()
    body = text.split("\\midrule\n", 1)[1].split("\\bottomrule", 1)[0]
    rows = []
    for line in body.splitlines():
        if line.strip() in ("", "\\midrule"):
            continue
        assert line.endswith(" \\\\"), line
        parts = [part.strip() for part in re.split(r"(?<!\\)&", line[:-3])]
        rows.append([re.sub(r"\{\\scriptsize (\[[^]]*\])\}", r"\1", part).replace("$\\pm$", "±").replace("---", "—")
                     for part in parts])
    return rows


def csv_cells(path: Path) -> list[dict]:
    return list(csv.DictReader(open(path, newline="", encoding="utf-8")))


def value_of(shown: str) -> str:
    """A shown cell without its bootstrap interval."""
    return shown.split(" [")[0]


def interval_of(row: dict) -> str:
    """The bracket a CSV line's shown text ends with, from its ci_low and ci_high."""
    return f"[{float(row['ci_low']):.1f}, {float(row['ci_high']):.1f}]"


# ---------------------------------------------------------------------------------------------- cells


def test_cell_mean_and_sample_std():
    cell = Cell.ours([20.0, 30.0, 40.0])
    assert cell.mean == pytest.approx(30.0) and cell.std == pytest.approx(10.0) and cell.n == 3
    assert cell.text() == "30.0 ± 10.0"
    single = Cell.ours([81.23])
    assert single.std is None and single.text() == "81.2" and single.n == 1
    assert Cell.ours([]).text() == "not run" == Cell.ours([]).text(for_csv=True)
    assert Cell.reported(None).text() == "—" and Cell.reported(None).text(for_csv=True) == "not reported"
    assert Cell.reported(85.0).text() == "85.0" and Cell.reported(53.25).text() == "53.25"
    assert format_published(84.9) == "84.9"


def test_tables_from_handmade_metrics(handmade):
    written = make_report(handmade["plan"], PUBLISHED, handmade["out"])
    out = handmade["out"]
    assert {path.name for path in written} == {"linear.csv", "linear.md", "linear.tex", "semi.csv", "semi.md",
                                               "semi.tex", "linear_differences.csv", "semi_differences.csv",
                                               "pretraining.png", "index.md"}
    rows = {(row["row"], row["column"]): row for row in csv_cells(out / "linear.csv")}
    xsub = rows[("hacm", "ntu60-xsub")]
    assert float(xsub["mean"]) == pytest.approx(60.0) and int(xsub["n"]) == 3
    assert float(xsub["std"]) == pytest.approx(np.std([50.0, 60.0, 70.0], ddof=1))
    assert xsub["shown"] == f"60.0 ± 10.0 {interval_of(xsub)}" and xsub["source"] == "ours" and xsub["status"] == "ok"
    assert xsub["test_samples"] == str(TEST_SAMPLES) and xsub["resamples"] == "2000"
    view = rows[("hacm", "ntu60-xview")]
    assert view["shown"] == f"81.2 {interval_of(view)}" and view["std"] == "" and view["n"] == "1"
    assert rows[("hacm", "pku2-xsub")]["ci_low"] == "" == rows[("mamp", "ntu60-xsub")]["ci_low"]
    # An empty file list and a column key left out of the cells are both "not run".
    assert rows[("hacm", "pku2-xsub")]["shown"] == "not run" == rows[("hacm", "pku2-xsub")]["status"]
    assert rows[("scratch", "ntu60-xview")]["shown"] == "not run"
    # Published rows follow ours; MacDiff gives no PKU-MMD number: "not reported" in the CSV, "—" in the tables.
    labels = [row["label"] for row in csv_cells(out / "linear.csv")]
    assert labels[0] == "HA-CM (ours, synthetic)" and labels.index("HA-CM [yin2024hacm]") > labels.index(
        "No pretraining & 100% of_labels #1 (ours, synthetic)")
    macdiff = [row for row in csv_cells(out / "linear.csv") if row["source"] == "wu2024macdiff"]
    assert {row["column"]: row["shown"] for row in macdiff}["pku2-xsub"] == "not reported"
    assert {row["column"]: row["status"] for row in macdiff}["pku2-xsub"] == "not reported"
    md = (out / "linear.md").read_text()
    assert "| MacDiff [wu2024macdiff] | 86.4 | 91.0 | — |" in md
    assert "ours: embedded synthetic dataset" in md.lower()
    # The footnote names every published row's source.
    for row in load_published(PUBLISHED).table("linear").rows:
        assert f"{row.method} [{row.citation}]: {row.source['authors']}" in md
    # A table without published numbers has only our rows.
    assert {row["source"] for row in csv_cells(out / "semi.csv")} == {"ours"}
    index = (out / "index.md").read_text()
    for name in ("linear.md", "linear.csv", "linear.tex", "linear_differences.csv", "semi.md", "pretraining.png"):
        assert f"({name})" in index


def test_the_three_formats_agree_on_every_number(handmade):
    make_report(handmade["plan"], PUBLISHED, handmade["out"])
    out = handmade["out"]
    for name, ncols in (("linear", 3), ("semi", 1)):
        md = markdown_cells(out / f"{name}.md")
        tex = latex_cells(out / f"{name}.tex")
        rows = csv_cells(out / f"{name}.csv")
        shown = [("—" if row["shown"] == "not reported" else row["shown"]) for row in rows]
        from_csv = [shown[i:i + ncols] for i in range(0, len(shown), ncols)]
        assert [row[1:] for row in md] == [row[1:] for row in tex] == from_csv
        assert len(md) == len({row["row"] for row in rows})
        # The CSV numbers round to what the tables show.
        for row in rows:
            if row["status"] != "ok":
                assert row["mean"] == ""
                continue
            if row["source"] == "ours":
                expected = (f"{float(row['mean']):.1f}" + (f" ± {float(row['std']):.1f}" if row["std"] else "")
                            + f" {interval_of(row)}")
            else:
                expected = format_published(float(row["mean"]))
            assert row["shown"] == expected


def test_tables_show_the_best_epoch_and_the_csv_gives_both(handmade):
    make_report(handmade["plan"], PUBLISHED, handmade["out"])
    out = handmade["out"]
    assert "top1 in %, best epoch (as the published rows)" in (out / "linear.md").read_text().splitlines()[2]
    assert r"\caption{Linear evaluation (top-1 \%). Ours: embedded synthetic dataset, top1 in \%, best epoch (as the " \
           r"published rows)" in (out / "linear.tex").read_text()
    rows = {(row["row"], row["column"]): row for row in csv_cells(out / "linear.csv")}
    xsub = rows[("hacm", "ntu60-xsub")]
    assert xsub["statistic"] == "best" and value_of(xsub["shown"]) == "60.0 ± 10.0" and float(xsub["best_mean"]) == 60.0
    assert float(xsub["last_mean"]) == pytest.approx(60.0 - 100 * LAST_BELOW_BEST)
    assert float(xsub["last_std"]) == pytest.approx(10.0) and xsub["best_std"] == xsub["std"]
    assert rows[("hacm", "pku2-xsub")]["last_mean"] == "" and rows[("hacm", "pku2-xsub")]["status"] == "not run"
    published = rows[("mamp", "ntu60-xsub")]
    assert published["statistic"] == "as published" and published["best_mean"] == published["last_mean"] == ""
    # The plan may ask for the last epoch instead; the caption then says so.
    document = json.loads(json.dumps(handmade["document"])) | {"statistic": "last"}
    handmade["plan"].write_text(json.dumps(document))
    make_report(handmade["plan"], PUBLISHED, out)
    rows = {(row["row"], row["column"]): row for row in csv_cells(out / "linear.csv")}
    xsub = rows[("hacm", "ntu60-xsub")]
    assert value_of(xsub["shown"]) == "55.0 ± 10.0" and xsub["statistic"] == "last" and float(xsub["best_mean"]) == 60.0
    assert "top1 in %, last epoch (the published rows give the best)" in (out / "linear.md").read_text()


@pytest.fixture()
def ablation_plan(tmp_path) -> dict:
    """An ablation table: full HA-CM (two seeds' logs), single-group masking, one row without agreement records."""
    logs = tmp_path / "logs"
    logs.mkdir()
    seed0 = write_log(logs / "hacm0.jsonl", [1.0, 0.9, 0.8], agreements={2: {"temporal": 0.5, "spatial": 0.5},
                                                                         3: {"temporal": 0.92, "spatial": 0.94}})
    seed1 = write_log(logs / "hacm1.jsonl", [1.0] * 5, agreements={4: {"temporal": 0.90, "spatial": 0.96}})
    single = write_log(logs / "single.jsonl", [1.0], agreements={1: {"all": 0.25}})
    silent = write_log(logs / "silent.jsonl", [1.0, 0.9])
    results = tmp_path / "results"
    cells = {name: [str(write_metrics(results, name, best))] for name, best in
             (("hacm", 0.6), ("single", 0.55), ("silent", 0.5), ("nolog", 0.45))}
    column = "ntu60-xsub"
    rows = [{"key": "hacm", "label": "HA-CM (full)", "cells": {column: cells["hacm"]},
             "pretrain_logs": [str(seed0), str(seed1)]},
            {"key": "single", "label": "single-group masking", "cells": {column: cells["single"]},
             "pretrain_logs": [str(single)]},
            {"key": "silent", "label": "no monitor", "cells": {column: cells["silent"]},
             "pretrain_logs": [str(silent)]},
            {"key": "nolog", "label": "no logs given", "cells": {column: cells["nolog"]}}]
    plan = {"dataset": "synthetic", "tables": [
        {"name": "ablations", "title": "Ablations", "metric": "top1", "columns": [COLUMNS[0]], "rows": rows,
         "published": "ablations"}]}
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    return {"plan": path, "document": plan, "out": tmp_path / "report", "seed0": seed0}


def test_ablation_rows_show_the_last_masking_agreement(ablation_plan):
    make_report(ablation_plan["plan"], PUBLISHED, ablation_plan["out"])
    out = ablation_plan["out"]
    expected = {"HA-CM (full) (ours, synthetic)": ["60.0", "0.91 / 0.95 / —"],
                "single-group masking (ours, synthetic)": ["55.0", "— / — / 0.25"],
                "no monitor (ours, synthetic)": ["50.0", "—"], "no logs given (ours, synthetic)": ["45.0", "—"]}
    md = (out / "ablations.md").read_text()
    assert "| Method | NTU-60 x-sub | masking agreement (temporal / spatial / all) |" in md
    assert {row[0]: [value_of(row[1]), row[2]] for row in markdown_cells(out / "ablations.md")} == expected
    tex = (out / "ablations.tex").read_text()
    assert r"\begin{tabular}{lcc}" in tex and "masking agreement (temporal / spatial / all)" in tex
    from_latex = {row[0].replace(r"\_", "_"): [value_of(row[1]), row[2]] for row in latex_cells(out / "ablations.tex")}
    assert from_latex == expected
    rows = {row["row"]: row for row in csv_cells(out / "ablations.csv")}
    assert float(rows["hacm"]["agreement_temporal"]) == pytest.approx(0.91)
    assert float(rows["hacm"]["agreement_spatial"]) == pytest.approx(0.95) and rows["hacm"]["agreement_all"] == ""
    assert float(rows["single"]["agreement_all"]) == 0.25 and rows["single"]["agreement_temporal"] == ""
    assert all(rows[key][f"agreement_{group}"] == "" for key in ("silent", "nolog")
               for group in ("temporal", "spatial", "all"))
    assert "over 2 pretraining log(s)" in md and "1 = the criterion changes nothing" in md
    # A table whose rows name no pretraining logs has no agreement column.
    document = ablation_plan["document"]
    for row in document["tables"][0]["rows"]:
        row.pop("pretrain_logs", None)
    ablation_plan["plan"].write_text(json.dumps(document))
    make_report(ablation_plan["plan"], PUBLISHED, out)
    assert "masking agreement" not in (out / "ablations.md").read_text()


@pytest.mark.parametrize("record, words", [
    ({"temporal": 1.5}, "masking_agreement['temporal'] must be a share in 0..1, got 1.5"),
    ({"joints": 0.5}, "masking_agreement: unknown group 'joints'"),
    ([0.5], "masking_agreement must be an object"),
])
def test_a_bad_masking_agreement_is_one_line(ablation_plan, record, words):
    write_log(ablation_plan["seed0"], [1.0, 0.9], agreements={1: {"temporal": 0.9}, 2: record})
    result = run_cli("--plan", str(ablation_plan["plan"]), "--published", str(PUBLISHED), "--out",
                     str(ablation_plan["out"]))
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1 and f"hacm0.jsonl:4: {words}" in lines[0], result.stderr
    assert "row 'hacm' pretrain_logs" in lines[0]


def test_latex_escaping(handmade):
    assert latex_escape("a & b_c 50% $x$ #1 {y} ~ ^ \\ 1 ± 2 — x") == (
        r"a \& b\_c 50\% \$x\$ \#1 \{y\} \textasciitilde{} \textasciicircum{} \textbackslash{} 1 $\pm$ 2 --- x")
    assert latex_escape("HA-CM − MAE, NTU-60 → PKU") == r"HA-CM $-$ MAE, NTU-60 $\rightarrow$ PKU"
    make_report(handmade["plan"], PUBLISHED, handmade["out"])
    tex = (handmade["out"] / "linear.tex").read_text()
    assert r"No pretraining \& 100\% of\_labels \#1 (ours, synthetic)" in tex
    assert r"\caption{Linear evaluation (top-1 \%)." in tex and r"\toprule" in tex and r"\bottomrule" in tex
    assert r"60.0 $\pm$ 10.0" in tex
    # No unescaped special character is left outside the commands we write.
    body = tex.split(r"\midrule", 1)[1].split(r"\bottomrule", 1)[0]
    assert not re.search(r"(?<!\\)[%#_]", body)
    assert tex.count("{") == tex.count("}")


# ------------------------------------------------------------------------------------ published numbers


def test_published_file_validates_and_every_row_has_a_source():
    published = load_published(PUBLISHED)
    assert set(published.tables) == set(TABLE_COLUMNS)
    methods = {row.method.split(" (")[0] for row in published.table("linear").rows}
    assert {"HA-CM", "MAMP", "S-JEPA", "MacDiff"} <= methods
    document = yaml.safe_load(PUBLISHED.read_text())
    for name, table in published.tables.items():
        assert len(table.rows) == len(document["tables"][name].get("rows") or [])
        for row in table.rows:
            assert set(row.source) == set(SOURCE_FIELDS)
            assert all(value.strip() for value in row.source.values())
            assert row.source["provenance"] in ("primary", "secondary")
            assert row.source["read_at"] and row.source["table"]
            assert row.values and set(row.values) <= set(TABLE_COLUMNS[name])
            assert all(0 <= value <= 100 for value in row.values.values())


def _document(**row_changes) -> dict:
    row = {"method": "X", "citation": "x2024", "values": {"ntu60-xsub": 80.1},
           "source": {field: "something" for field in SOURCE_FIELDS} | {"provenance": "primary", "year": 2024}}
    row.update(row_changes)
    return {"version": 1, "tables": {"linear": {"title": "Linear", "rows": [row]}}}


@pytest.mark.parametrize("document, message", [
    ({"version": 1, "tables": {"knn": {"title": "k", "rows": []}}}, "unknown table 'knn'"),
    (_document(values={"ntu60-xsubb": 80.0}), "unknown column key 'ntu60-xsubb'"),
    (_document(values={"ntu60-xsub": 123.0}), "outside 0..100"),
    (_document(values={"ntu60-xsub": "85"}), "must be a number"),
    (_document(source=None), "source: must be a mapping"),
    (_document(source={"authors": "A"}), "source: missing"),
    (_document(source={field: "s" for field in SOURCE_FIELDS}), "provenance: must be one of"),
    ({"version": 2, "tables": {}}, "'version' must be 1"),
])
def test_published_validation_errors(document, message):
    with pytest.raises(PublishedError, match=re.escape(message)) as error:
        validate_published(document, "published.yaml")
    assert "\n" not in str(error.value)
    assert _document()["tables"]["linear"]["rows"][0]["values"] == {"ntu60-xsub": 80.1}
    validate_published(_document())  # the base document itself is valid


def test_a_source_without_a_row_field_is_an_error(tmp_path):
    document = _document()
    del document["tables"]["linear"]["rows"][0]["source"]
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(PublishedError, match=r"rows\[0\]: missing 'source'"):
        load_published(path)


# ---------------------------------------------------------------------------------------------- errors


def _bad_plan(handmade, change) -> Path:
    document = json.loads(json.dumps(handmade["document"]))
    change(document)
    path = handmade["tmp"] / "bad.json"
    path.write_text(json.dumps(document))
    return path


def _add_missing_file(document):
    document["tables"][0]["rows"][0]["cells"]["ntu60-xsub"].append("results/does-not-exist/metrics.json")


def _old_metrics(document):
    """A metrics.json of a run evaluated before best-epoch recording."""
    old = metrics_document(0.5)
    for key in ("best_top1", "best_epoch", "last_epoch", "optimisation"):
        del old[key]
    path = Path(document["curves"][0]["log"]).with_name("old-metrics.json")
    path.write_text(json.dumps(old))
    document["tables"][0]["rows"][0]["cells"]["ntu60-xview"] = [str(path)]


def _not_metrics(document):
    path = Path(document["curves"][0]["log"])
    document["tables"][0]["rows"][0]["cells"]["ntu60-xview"] = [str(path.with_name("not-metrics.json"))]
    path.with_name("not-metrics.json").write_text(json.dumps({"top1": 0.5}))


@pytest.mark.parametrize("change, names", [
    (_add_missing_file, "results/does-not-exist/metrics.json"),
    (lambda d: d["tables"][0].update(published="linaer"), "unknown table 'linaer'"),
    (lambda d: d.update(accuracy_figure="nope"), "unknown table 'nope'"),
    (lambda d: d["tables"][0]["rows"][0]["cells"].update({"ntu120-xset": []}), "'ntu120-xset'"),
    (lambda d: d.update(dataset="imaginary"), "dataset"),
    (lambda d: d["tables"].append(dict(d["tables"][1])), "'semi' appears twice"),
    (lambda d: d["curves"][0].update(log="missing.jsonl"), "missing.jsonl"),
    (_not_metrics, "not-metrics.json"),
    (_old_metrics, "old-metrics.json: written before hacm.evaluate recorded the best epoch"),
    (lambda d: d.update(statistic="median"), "statistic: must be one of best, last"),
    (lambda d: d["tables"][0].update(metric="top5"), "has no 'best_top5'"),
    (lambda d: d["tables"][0]["rows"][0].update(pretrain_logs=["absent.jsonl"]), "pretrain_logs[0]"),
    (lambda d: d["tables"][0].update(metric="top3"), "'top3'"),
    (lambda d: d.pop("tables"), "'tables'"),
    # A metrics.json of another protocol or benchmark in a cell (reliability probe, case 69).
    (lambda d: d["tables"][0].update(protocol="finetune"), "is a protocol 'linear' result, but this cell is protocol 'finetune'"),
    (lambda d: d["tables"][0]["columns"][0].update(benchmark="pku1-xsub"), "is a benchmark 'ntu60-xsub' result"),
    # A random encoder's metrics.json in the HA-CM folder (reliability probe 2, S10): the hand-made runs are random.
    (lambda d: d["tables"][0]["rows"][0].update(method="hacm"),
     "is the result of a randomly initialised encoder ('hacm'), but this row is 'hacm'"),
])
def test_a_bad_plan_is_one_line_on_stderr(handmade, change, names):
    plan = _bad_plan(handmade, change)
    result = run_cli("--plan", str(plan), "--published", str(PUBLISHED), "--out", str(handmade["out"]))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hacm.tables:"), result.stderr
    assert names in lines[0] and "Traceback" not in result.stderr


PRETRAINED = {"path": "/x/results/ntu60_xsub/hacm/pretrain/seed0/encoder.pt", "sha256": "ab" * 32, "method": "hacm"}


@pytest.mark.parametrize("encoder, method, wrong", [
    (PRETRAINED, "hacm", None),
    (PRETRAINED, "random", "is the result of a pretrained 'hacm' encoder"),
    ({"path": None, "sha256": None, "method": "hacm (random init)"}, "random", None),
    ({"path": None, "sha256": None, "method": "hacm (random init)"}, "hacm", "randomly initialised"),
    ({**PRETRAINED, "method": "mae"}, "hacm", "a 'mae' encoder, but this row is 'hacm'"),
    (PRETRAINED, "hacm-euclidean", "(run 'hacm'), but this row is 'hacm-euclidean'"),
    ({**PRETRAINED, "path": "results/ntu60_xsub/hacm-euclidean/pretrain/seed2/encoder.pt"}, "hacm-euclidean", None),
    ({**PRETRAINED, "path": "/home/me/weights/encoder.pt"}, "hacm", None),  # an encoder given by hand: no folder
])
def test_a_cell_takes_only_its_rows_encoder(encoder, method, wrong):
    found = encoder_mismatch(encoder, method)
    assert found is None if wrong is None else wrong in found


def test_invalid_json_and_usage_errors_are_one_line(handmade, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"dataset": "synthetic", ')
    for args in (["--plan", str(broken), "--published", str(PUBLISHED), "--out", str(tmp_path / "o")],
                 ["--plan", str(tmp_path / "absent.json"), "--out", str(tmp_path / "o")],
                 ["--plan", str(handmade["plan"]), "--published", str(tmp_path / "absent.yaml"), "--out",
                  str(tmp_path / "o")],
                 ["--plan", str(handmade["plan"]), "--out", str(tmp_path / "o")],  # asks for published numbers
                 ["--plan", str(handmade["plan"])]):
        result = run_cli(*args)
        lines = result.stderr.strip().splitlines()
        assert result.returncode != 0 and len(lines) == 1 and lines[0].startswith("hacm.tables:"), result.stderr


def test_relative_files_are_found_from_the_plan_folder(handmade, tmp_path):
    document = json.loads(json.dumps(handmade["document"]))
    results = handmade["tmp"]
    document["tables"][0]["rows"][0]["cells"] = {
        "ntu60-xsub": [str(Path(p).relative_to(results)) for p in document["tables"][0]["rows"][0]["cells"]["ntu60-xsub"]]}
    document["curves"][0]["log"] = "pretrain.jsonl"
    plan = results / "relative.json"
    plan.write_text(json.dumps(document))
    loaded = load_plan(plan, load_published(PUBLISHED))
    assert all(path.is_file() for path in loaded.tables[0].rows[0].cells["ntu60-xsub"])
    with pytest.raises(PlanError, match="file not found"):
        document["curves"][0]["log"] = "nowhere.jsonl"
        plan.write_text(json.dumps(document))
        load_plan(plan)


def test_log_reader_keeps_epoch_records_and_the_last_of_a_repeated_epoch(tmp_path):
    log = tmp_path / "metrics.jsonl"
    records = [{"kind": "step", "epoch": 1, "loss": 9.0}, {"kind": "epoch", "epoch": 1, "loss": 1.0},
               {"kind": "epoch", "epoch": 2, "loss": 0.9}, {"kind": "epoch", "epoch": 2, "loss": 0.8},
               {"kind": "knn", "epoch": 2, "knn_top1": 0.5}, {"kind": "epoch", "epoch": 3, "loss": 0.7}]
    log.write_text("\n".join(json.dumps(record) for record in records) + "\n\n")
    assert read_epoch_losses(log) == ([1, 2, 3], [1.0, 0.8, 0.7])
    log.write_text(json.dumps(records[1]) + "\n{not json\n")
    with pytest.raises(ReportError, match=r"metrics.jsonl:2: not a JSON line"):
        read_epoch_losses(log)


# ------------------------------------------------------------------------- real pretraining and evaluation


@pytest.fixture(scope="module")
def real_runs(tiny_pretraining, synthetic_stores, tmp_path_factory) -> dict:
    """The shared two-epoch pretraining and two linear evaluations (seeds 0 and 1) on synthetic NTU-60 x-sub."""
    folder = tmp_path_factory.mktemp("tables_runs")
    data = synthetic_stores / "ntu60-xsub"
    eval_config = folder / "eval.yaml"
    eval_config.write_text(yaml.safe_dump({"model": TINY_ARCHITECTURE, "data": {"batch_size": 64},
                                           "linear": {"epochs": 2}}))
    metrics = []
    for seed in (0, 1):
        out = folder / f"linear-seed{seed}"
        assert evaluate_main(["--protocol", "linear", "--config", str(eval_config), "--data", str(data), "--encoder",
                              str(tiny_pretraining / "encoder.pt"), "--out", str(out), "--set", f"seed={seed}",
                              "--no-progress"]) == 0
        metrics.append(out / "metrics.json")
    return {"folder": folder, "log": tiny_pretraining / "metrics.jsonl", "metrics": metrics}


def test_end_to_end_on_real_runs(real_runs, tmp_path):
    plan = {
        "dataset": "synthetic",
        "tables": [{"name": "linear", "title": "Linear evaluation (top-1 %)", "metric": "top1", "columns": COLUMNS,
                    "rows": [{"key": "hacm", "label": "HA-CM",
                              "cells": {"ntu60-xsub": [str(path) for path in real_runs["metrics"]]}}],
                    "published": "linear"}],
        "curves": [{"label": "HA-CM ntu60-xsub", "method": "hacm", "benchmark": "ntu60-xsub",
                    "log": str(real_runs["log"])}],
        "accuracy_figure": "linear",
    }
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps(plan))
    out = tmp_path / "report"
    result = run_cli("--plan", str(plan_path), "--published", "config/published.yaml", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "" or "Traceback" not in result.stderr
    best = [100 * json.loads(path.read_text())["best_top1"] for path in real_runs["metrics"]]
    last = [100 * json.loads(path.read_text())["top1"] for path in real_runs["metrics"]]
    row = next(row for row in csv_cells(out / "linear.csv") if row["row"] == "hacm" and row["column"] == "ntu60-xsub")
    assert float(row["mean"]) == pytest.approx(np.mean(best), abs=1e-5)
    assert float(row["std"]) == pytest.approx(np.std(best, ddof=1), abs=1e-5) and row["n"] == "2"
    assert float(row["last_mean"]) == pytest.approx(np.mean(last), abs=1e-5)
    assert row["shown"] in (out / "linear.md").read_text()
    figure = out / "pretraining.png"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(figure) as image:
        assert image.format == "PNG" and image.size[0] > 800 and image.size[1] > 300
    epochs, losses = read_epoch_losses(real_runs["log"])
    assert epochs == [1, 2] and all(np.isfinite(losses))
