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
