"""A workflow config read as the workflow reads it (needs Snakemake, which the tables environment lacks: hence
apart from the resolver)."""

from __future__ import annotations

from pathlib import Path


def load_workflow_config(path: Path) -> dict:
    """A workflow config as the workflow sees it: validated against its schema, defaults filled in."""
    import yaml
    from snakemake.utils import validate

    config = yaml.safe_load(Path(path).read_text()) or {}
    validate(config, str(Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"),
             set_default=True)
    return config
