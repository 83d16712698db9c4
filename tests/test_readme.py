"""The README opens with exactly two set-up commands, and CI runs the second one verbatim."""

from __future__ import annotations

from tests.conftest import REPO


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_readme_opens_with_two_commands():
    text = (REPO / "README.md").read_text()
    assert text.index("```bash") < text.index("\n## "), "the commands come first"
    main, tests = readme_commands()
    assert "torch==2.13.0" in main and "torch==2.13.0" in tests
    assert "pytest" in tests
    assert "snakemake" in main and main.endswith("all_tables"), "the main command runs the workflow's default target"


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == readme_commands()[1]


def test_readme_embedded_figures_are_the_recorded_tables():
    """The embedded figures are rendered from the newest benchmarks/results/embedded_<date>.json, which `benchmarks/experiments/embedded_figures.py
    record` reads from the tables of the README's first command: the README shows the linear table, docs/results.md
    every table."""
    import json

    from hacm.pages import HEADLINE, latest, readme_block, render

    recorded = json.loads(latest("embedded").read_text())
    assert recorded["command"] == readme_commands()[0]
    assert readme_block((REPO / "README.md").read_text()) == render(recorded, HEADLINE)
    assert readme_block((REPO / "docs" / "results.md").read_text()) == render(recorded)


def test_the_seed_tables_are_the_recorded_benchmark():
    """docs/results.md's three-seed tables are those of the newest benchmarks/results/embedded-seeds_<date>.json (the summary.json
    that `benchmarks/experiments/bench_embedded_seeds.py` wrote), rendered by hacm.pages, as the benchmark prints them."""
    import json

    from hacm.pages import latest, render_seeds

    summary = json.loads(latest("embedded-seeds").read_text())
    text = (REPO / "docs" / "results.md").read_text()
    assert render_seeds(summary) in text
    assert f"{summary['met']} of {summary['checks']} goal checks met" in text


def test_the_readme_is_a_short_guide_that_links_only_what_a_clone_has():
    """Issue 28: at most 150 lines, the two commands, the smoke run and the cluster path on its first screens,
    and every link inside the repository (no docs/method.md)."""
    import re

    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    assert text.index("config/smoke.yaml") < text.index("## The real data on a SLURM cluster") < text.index("## Where")
    for link in re.findall(r"\]\(([^)#]+)", text):
        assert not link.startswith(("http", "..")) and (REPO / link).exists(), link
    assert "shared/" not in text and "this VM" not in text


def test_the_code_has_a_licence_and_a_citation_of_the_paper_it_implements():
    """Issue 28: a permissive licence for the code, the datasets' own terms named beside it, and CITATION.cff
    citing HA-CM (arXiv 2409.17951) and this software."""
    import yaml

    licence = (REPO / "LICENSE").read_text()
    assert licence.startswith("MIT License") and "research" in licence and "NTU RGB+D" in licence
    citation = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0" and citation["license"] == "MIT"
    assert citation["preferred-citation"]["identifiers"][0]["value"] == "arXiv:2409.17951"
    assert [a["family-names"] for a in citation["preferred-citation"]["authors"]] == ["Yin", "Cao"]
