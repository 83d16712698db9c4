"""Bootstrap intervals over test samples in `python -m hacm.tables`: each cell's interval, the paired
differences HA-CM − baseline, reproducibility, and one-line errors for predictions.csv files that do not fit."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from hacm.tables import ReportError
from hacm.tables.bootstrap import RESAMPLES, SEED, percentile_interval, resampled_means
from hacm.tables.report import compared_rows, make_report
from tests.test_tables import csv_cells, run_cli, write_predictions_csv, write_run

COLUMN = {"key": "ntu60-xsub", "label": "NTU-60 x-sub"}
LABELS = {"hacm": "HA-CM", "random": "random encoder (no pretraining)", "mae": "MAE", "mamp": "MAMP",
          "single": "single-group masking"}
SAMPLES = 200


def hits_at(accuracy: float, *, seed: int) -> np.ndarray:
    """SAMPLES hits, exactly round(accuracy × SAMPLES) of them right, at random places."""
    hits = np.arange(SAMPLES) < round(accuracy * SAMPLES)
    return np.random.default_rng(seed).permutation(hits)


def write_plan(tmp_path: Path, runs: dict[str, list[np.ndarray]], *, table: str = "linear") -> Path:
    """A one-column plan (no published numbers): per row key, one run folder per hits array."""
    rows = []
    for key, hits_of_runs in runs.items():
        files = [str(write_run(tmp_path / "results" / key / f"seed{seed}", hits, seed=seed))
                 for seed, hits in enumerate(hits_of_runs)]
        rows.append({"key": key, "label": LABELS[key], "cells": {COLUMN["key"]: files}})
    plan = {"dataset": "synthetic", "tables": [{"name": table, "title": "Linear evaluation (top-1 %)",
                                                "metric": "top1", "columns": [COLUMN], "rows": rows}]}
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    return path


def report(plan: Path, out: Path, table: str = "linear") -> tuple[dict[str, dict], list[dict]]:
    """make_report's cells of ours by row key, and its paired differences."""
    make_report(plan, None, out)
    cells = {row["row"]: row for row in csv_cells(out / f"{table}.csv")}
    return cells, csv_cells(out / f"{table}_differences.csv")


# ------------------------------------------------------------------------------------------ resampling


def test_resampled_means_are_means_over_resamples_with_replacement_the_same_for_every_row():
    values = np.random.default_rng(1).random((3, 50))
    means = resampled_means(values, resamples=300)
    # Small test sets draw every resample at once: the same stream, drawn here by hand.
    indices = np.random.default_rng(SEED).integers(0, 50, size=(300, 50))
    np.testing.assert_allclose(means, values[:, indices].mean(axis=2), rtol=1e-12)
    assert resampled_means(values[1:2], resamples=300)[0].tolist() == means[1].tolist()
    # Large test sets draw in chunks: still resamples of their own values.
    large = np.full((1, 70_000), 0.25)
    assert np.all(resampled_means(large, resamples=20) == 0.25)


def test_percentile_interval_is_the_central_95_percent():
    interval = percentile_interval(50.0, np.arange(1001, dtype=float), 40)
    assert (interval.low, interval.high) == pytest.approx((25.0, 975.0))
    assert interval.resamples == 1001 and interval.samples == 40
    assert interval.excludes_zero
    assert not percentile_interval(0.0, np.zeros(10), 40).excludes_zero


def test_compared_rows_are_hacm_against_baselines_and_in_ablations_against_every_variant():
    keys = ["hacm", "mae", "scratch", "random", "mamp"]
    assert compared_rows("linear", keys) == [("hacm", "mae"), ("hacm", "random"), ("hacm", "mamp")]
    assert compared_rows("ablations", ["hacm", "single", "minmax"]) == [("hacm", "single"), ("hacm", "minmax")]
    assert compared_rows("linear", ["mae", "random"]) == []


# ------------------------------------------------------------------------------------------- the tables


def test_every_cell_interval_contains_its_estimate(tmp_path):
    plan = write_plan(tmp_path, {"hacm": [hits_at(0.6, seed=0), hits_at(0.7, seed=1), hits_at(0.65, seed=2)],
                                 "random": [hits_at(0.3, seed=3)]})
    cells, _ = report(plan, tmp_path / "out")
    for key, estimate in (("hacm", 65.0), ("random", 30.0)):
        row = cells[key]
        assert float(row["last_mean"]) == pytest.approx(estimate)
        assert float(row["ci_low"]) < estimate < float(row["ci_high"])
        assert row["test_samples"] == str(SAMPLES) and row["resamples"] == str(RESAMPLES)
        assert row["shown"].endswith(f" [{float(row['ci_low']):.1f}, {float(row['ci_high']):.1f}]")


def test_a_cell_averages_its_runs_on_the_same_resampled_samples(tmp_path):
    """Two runs right on complementary halves: 50 % on every sample, so no resample moves the cell's mean."""
    hits = hits_at(0.5, seed=0)
    cells, _ = report(write_plan(tmp_path, {"hacm": [hits, ~hits]}), tmp_path / "out")
    assert float(cells["hacm"]["ci_low"]) == 50.0 == float(cells["hacm"]["ci_high"])


def test_identical_predictions_differ_by_zero_with_a_zero_width_interval(tmp_path):
    hits = hits_at(0.6, seed=0)
    _, differences = report(write_plan(tmp_path, {"hacm": [hits], "random": [hits.copy()]}), tmp_path / "out")
    assert len(differences) == 1
    difference = differences[0]
    assert (difference["row_a"], difference["row_b"], difference["column"]) == ("hacm", "random", "ntu60-xsub")
    assert float(difference["diff"]) == float(difference["ci_low"]) == float(difference["ci_high"]) == 0.0
    assert difference["excludes_zero"] == "false" and difference["test_samples"] == str(SAMPLES)


def test_a_clearly_better_row_has_a_difference_interval_above_zero(tmp_path):
    plan = write_plan(tmp_path, {"hacm": [hits_at(0.85, seed=0), hits_at(0.8, seed=1)],
                                 "mae": [hits_at(0.8, seed=2)], "random": [hits_at(0.3, seed=3)]})
    out = tmp_path / "out"
    _, differences = report(plan, out)
    by_baseline = {row["row_b"]: row for row in differences}
    assert set(by_baseline) == {"mae", "random"}
    random = by_baseline["random"]
    assert float(random["diff"]) == pytest.approx(82.5 - 30.0)
    assert 0 < float(random["ci_low"]) < float(random["diff"]) < float(random["ci_high"])
    assert random["excludes_zero"] == "true" and random["resamples"] == str(RESAMPLES)
    low, high = float(random["ci_low"]), float(random["ci_high"])
    line = (f"HA-CM − random encoder (no pretraining), NTU-60 x-sub: +52.5 points, 95 % CI [{low:.1f}, {high:.1f}] "
            f"(paired bootstrap over {SAMPLES} test samples, {RESAMPLES} resamples; excludes 0).")
    assert f"- {line}" in (out / "linear.md").read_text()
    tex = (out / "linear.tex").read_text()
    assert "HA-CM $-$ random encoder (no pretraining), NTU-60 x-sub: +52.5 points, 95 \\% CI [" in tex
    assert re.search(r"& \d+\.\d \$\\pm\$ \d+\.\d \{\\scriptsize \[\d+\.\d, \d+\.\d\]\} \\\\", tex)


def test_the_ablation_table_pairs_every_variant_with_hacm(tmp_path):
    plan = write_plan(tmp_path, {"hacm": [hits_at(0.6, seed=0)], "single": [hits_at(0.5, seed=1)]},
                      table="ablations")
    _, differences = report(plan, tmp_path / "out", "ablations")
    assert [(row["row_a"], row["row_b"]) for row in differences] == [("hacm", "single")]


def test_the_same_files_give_the_same_bytes(tmp_path):
    plan = write_plan(tmp_path, {"hacm": [hits_at(0.6, seed=0), hits_at(0.62, seed=1)],
                                 "mamp": [hits_at(0.55, seed=2)], "random": [hits_at(0.3, seed=3)]})
    first, second = tmp_path / "first", tmp_path / "second"
    make_report(plan, None, first)
    make_report(plan, None, second)
    for name in ("linear.csv", "linear_differences.csv", "linear.md", "linear.tex"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


# ---------------------------------------------------------------------------------------------- errors


def _other_names(run: Path) -> None:
    write_predictions_csv(run.parent, hits_at(0.3, seed=3), names=[f"T{index:03d}" for index in range(SAMPLES)])


def _other_order(run: Path) -> None:
    names = [f"S{index:03d}" for index in range(SAMPLES)]
    write_predictions_csv(run.parent, hits_at(0.3, seed=3), names=names[1:] + names[:1])


def _fewer_samples(run: Path) -> None:
    write_predictions_csv(run.parent, hits_at(0.3, seed=3)[:-1])


def _replace_line(run: Path, line: int, text: str) -> None:
    path = run.parent / "predictions.csv"
    lines = path.read_text().splitlines()
    lines[line] = text
    path.write_text("\n".join(lines) + "\n")


def _another_runs_predictions(run: Path) -> None:
    write_predictions_csv(run.parent, hits_at(0.9, seed=3))


@pytest.mark.parametrize("spoil, words", [
    (_other_names, "are not of the same test samples in the same order (sample 1 is 'S000' vs 'T000')"),
    (_other_order, "are not of the same test samples in the same order (sample 1 is 'S000' vs 'S001')"),
    (lambda run: (run.parent / "predictions.csv").unlink(), "predictions.csv: not found"),
    (lambda run: _replace_line(run, 0, "name,label,guess,top5,correct"), "no column prediction"),
    (lambda run: _replace_line(run, 5, "S004,zero,1,1 0,0"), "predictions.csv:6: label must be a class number"),
    (lambda run: _replace_line(run, 5, "S004,0"), "predictions.csv:6: 2 fields, the header has 5"),
    (lambda run: (run.parent / "predictions.csv").write_text(""), "predictions.csv: empty"),
    (_fewer_samples, "199 test samples but"),
    (_another_runs_predictions, "top1 0.9000 but"),
])
def test_predictions_that_do_not_fit_are_one_line_naming_the_file(tmp_path, spoil, words):
    plan = write_plan(tmp_path, {"hacm": [hits_at(0.6, seed=0)], "random": [hits_at(0.3, seed=3)]})
    random_run = tmp_path / "results" / "random" / "seed0" / "metrics.json"
    spoil(random_run)
    with pytest.raises(ReportError) as error:
        make_report(plan, None, tmp_path / "out")
    message = str(error.value)
    assert "\n" not in message and words in message, message
    assert str(random_run.parent / "predictions.csv") in message and "row 'random'" in message


def test_runs_of_one_cell_on_different_test_sets_are_an_error(tmp_path):
    plan = write_plan(tmp_path, {"hacm": [hits_at(0.6, seed=0), hits_at(0.6, seed=1)]})
    write_run(tmp_path / "results" / "hacm" / "seed1", hits_at(0.6, seed=1)[:-1], seed=1)  # a whole run, one short
    with pytest.raises(ReportError, match="seed0/predictions.csv and .*seed1/predictions.csv are not of the same"):
        make_report(plan, None, tmp_path / "out")


def test_a_missing_predictions_file_is_one_line_on_stderr(tmp_path):
    plan = write_plan(tmp_path, {"hacm": [hits_at(0.6, seed=0)]})
    (tmp_path / "results" / "hacm" / "seed0" / "predictions.csv").unlink()
    result = run_cli("--plan", str(plan), "--out", str(tmp_path / "out"))
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("hacm.tables:") and "seed0/predictions.csv: not found" in lines[0]
