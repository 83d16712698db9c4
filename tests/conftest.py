"""Shared fixtures: the real NTU / PKU samples in ../shared/data (research-only, never copied here)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
# The tiny encoder the evaluation and table tests share (seconds to pretrain, any accuracy).
TINY_ARCHITECTURE = {"frames": 24, "t_patch": 3, "dim": 32, "depth": 1, "heads": 4, "decoder_dim": 32,
                     "decoder_depth": 1, "decoder_heads": 4}


def recipe_file(folder: Path, *arguments: str) -> Path:
    """A run's document written as a user writes it, `python -m hacm.recipes ARGUMENTS > FILE`: the --config of
    hacm.pretrain / hacm.evaluate (the embedded recipe, config/config.yaml, unless --configfile says otherwise)."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "hacm.recipes", *arguments], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    path = folder / ("_".join(arguments).replace("/", "_") + ".yaml")
    path.write_text(result.stdout)
    return path


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
    from hacm.prepare.__main__ import main as prepare_main

    out = tmp_path_factory.mktemp("synthetic_stores")
    assert prepare_main(["synthetic", "--raw", str(synthetic_raw), "--out", str(out), "--workers", "2"]) == 0
    return out


@pytest.fixture(scope="session")
def tiny_pretraining(synthetic_stores, tmp_path_factory) -> Path:
    """A two-epoch pretraining of TINY_ARCHITECTURE on synthetic NTU-60 x-sub (with the kNN monitor):
    its run folder, holding encoder.pt and metrics.jsonl."""
    import yaml

    from hacm.pretrain.__main__ import main as pretrain_main

    folder = tmp_path_factory.mktemp("tiny_pretraining")
    config = folder / "pretrain.yaml"
    config.write_text(yaml.safe_dump({"model": TINY_ARCHITECTURE, "data": {"batch_size": 32},
                                      "optim": {"epochs": 2, "warmup_epochs": 1, "lr": 2e-3},
                                      "monitor": {"knn_every": 1}}))
    assert pretrain_main(["--config", str(config), "--data", str(synthetic_stores / "ntu60-xsub"), "--out",
                          str(folder / "run"), "--no-progress"]) == 0
    return folder / "run"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A real single-node SLURM cluster (tests/slurm/start_cluster.sh) for one test module, stopped after it;
    skipped where its prerequisites (root, munge, slurmctld) are missing."""
    from tests.slurm_cluster import SlurmStartError, local_slurm, require_slurm_prerequisites

    require_slurm_prerequisites()
    try:
        with local_slurm(tmp_path_factory.mktemp("cluster")) as started:
            yield started
    except SlurmStartError as error:
        pytest.fail(f"the local SLURM cluster did not start: {error}")


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "slurm: runs a workflow through a real single-node SLURM cluster (tests/slurm/start_cluster.sh); needs root",
    )


def default_sigint() -> None:
    """preexec_fn for a child that a test interrupts: SIGINT back to its default, as in a terminal.
    A shell without job control starts background commands with SIGINT ignored, and an ignored signal
    stays ignored across exec, so without this the child would never see the test's Ctrl-C."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
