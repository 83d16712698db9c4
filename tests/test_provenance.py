"""Every results file of benchmarks/results/ says where it came from, and INDEX.md is generated from them
(issue 28: 8 of 16 results files carried no date, machine, command or commit)."""

from __future__ import annotations

import json
import re

import pytest

from hacm.provenance import INDEX, KEYS, RESULTS, ProvenanceError, provenance, render_index, results_files


@pytest.mark.parametrize("path", results_files(), ids=lambda path: path.name)
def test_every_results_file_has_its_provenance_and_a_name_by_topic_and_date(path):
    record = provenance(path)
    assert re.fullmatch(r"[a-z0-9-]+_(\d{4}-\d{2}-\d{2})\.json", path.name), path.name
    assert path.name.endswith(f"_{record['date']}.json"), (path.name, record["date"])
    assert record["command"] and record["machine"] and re.fullmatch(r"[0-9a-f]{7,40}", record["commit"])
    assert record["supersedes"] is None or isinstance(record["supersedes"], str)


def test_the_index_is_the_generated_one():
    assert (RESULTS / INDEX).read_text() == render_index(), "run `python -m hacm.provenance`"


def test_a_file_without_provenance_is_named(tmp_path):
    (tmp_path / "x_2026-01-01.json").write_text(json.dumps({"provenance": {key: None for key in KEYS[:-1]}}))
    with pytest.raises(ProvenanceError, match="x_2026-01-01.json: provenance lacks supersedes"):
        render_index(tmp_path)


def test_tests_run_benchmark_scripts_as_commands_and_never_import_them():
    """Issue 28: what the tests and the scripts share lives in the package (hacm.pages, hacm.compare,
    hacm.provenance); a benchmark script is tested as the command it is."""
    tests = RESULTS.parents[1] / "tests"
    for path in tests.glob("*.py"):
        text = path.read_text()
        assert not re.search(r"^\s*(from|import) benchmarks\b", text, re.M), path.name
    folders = {p.name for p in (RESULTS.parent).iterdir() if p.is_dir() and not p.name.startswith((".", "_"))}
    assert {"speed", "experiments", "drills", "results"} <= folders
