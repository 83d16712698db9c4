"""Shared fixtures: the real NTU / PKU samples in ../shared/data (research-only, never copied here)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real dataset samples not found at {SHARED_DATA} (the ../shared/data folder beside the repository)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def ntu_samples(shared_data: Path) -> list[Path]:
    return sorted((shared_data / "ntu_raw_samples").glob("*.skeleton"))


@pytest.fixture(scope="session")
def synthetic_raw(tmp_path_factory) -> Path:
    """The embedded synthetic dataset's raw files (seed 0), written once per test session."""
    from hacm.data.synthetic import write_synthetic_raw

    out = tmp_path_factory.mktemp("synthetic_raw")
    write_synthetic_raw(out, seed=0, progress=False)
    return out


@pytest.fixture(scope="session")
def synthetic_stores(synthetic_raw, tmp_path_factory) -> Path:
    """Every benchmark's train/test stores converted from the synthetic raw files."""
    from hacm.prepare import main as prepare_main

    out = tmp_path_factory.mktemp("synthetic_stores")
    assert prepare_main(["synthetic", "--raw", str(synthetic_raw), "--out", str(out), "--workers", "2"]) == 0
    return out


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "slurm: runs a workflow through a real single-node SLURM cluster (tests/slurm/start_cluster.sh); needs root",
    )
