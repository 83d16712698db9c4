"""`python -m hacm.visualize masks`: the figure and GIF are written, the masks are the criteria's, bad inputs exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from hacm.data.storage import SkeletonStore
from hacm.model.config import ModelConfig
from hacm.model.pretrainer import HACMPretrainer
from hacm.visualize.__main__ import main
from hacm.visualize.panels import panel_criteria, plan_criterion_masks
from hacm.visualize.inputs import initial_state, read_checkpoint, read_sample, resize_to_frames, resolve_model_config

REPO = Path(__file__).resolve().parents[1]
SAMPLE_NAME = "S017C003P020R002A054"
SMALL_MODEL = dict(dim=64, depth=1, heads=4, decoder_dim=64, decoder_depth=1, decoder_heads=4)


@pytest.fixture(scope="module")
def raw_sample(shared_data: Path) -> Path:
    path = shared_data / "ntu_raw_samples" / f"{SAMPLE_NAME}.skeleton"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    # Passed as the path relative to the repository root, as a user beside the checkout would type it.
    return Path("..") / path.relative_to(REPO.parent)


@pytest.fixture(scope="module")
def small_config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("config") / "small.yaml"
    path.write_text(yaml.safe_dump({"model": SMALL_MODEL}))
    return path


@pytest.fixture()
def in_repo(monkeypatch) -> None:
    monkeypatch.chdir(REPO)


def small_masks(sample: str, *, seed: int = 0, state: dict | None = None, **overrides):
    config = resolve_model_config(checkpoint=None, overrides={**SMALL_MODEL, **overrides})
    x = resize_to_frames(read_sample(sample), frames=config.frames)
    state = initial_state(config, seed=seed) if state is None else state
    return config, plan_criterion_masks(x, config=config, state=state, seed=seed)


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_figure_and_gif_from_a_raw_sample(raw_sample, small_config, tmp_path, in_repo, capsys):
    png, gif = tmp_path / "masks.png", tmp_path / "masks.gif"
    code, out, err = run_cli(["masks", "--sample", str(raw_sample), "--out", str(png), "--gif", str(gif),
                              "--config", str(small_config), "--seed", "3", "--frames", "36"], capsys)
    assert code == 0, err
    with Image.open(png) as image:
        assert image.format == "PNG" and image.width > 1200 and image.height > 1200
        colours = np.asarray(image.convert("RGB").resize((200, 200))).reshape(-1, 3)
        assert len(np.unique(colours, axis=0)) > 20  # drawn on, not a blank canvas
    with Image.open(gif) as animation:
        assert animation.format == "GIF" and animation.n_frames == 12  # one frame per time patch (36 / 3)
    assert "temporal attention: 21 of 216 tokens visible" in out  # 12 patches x 18 joints, floor(0.1 * 216)


def test_figure_from_a_store_sample_at_mamps_frames(synthetic_stores, small_config, tmp_path, capsys):
    png = tmp_path / "store.png"
    store = synthetic_stores / "ntu60-xsub" / "train"
    code, out, err = run_cli(["masks", "--sample", f"{store}:5", "--out", str(png), "--config", str(small_config),
                              "--frames", "120", "--t-patch", "4"], capsys)
    assert code == 0, err
    with Image.open(png) as image:
        assert image.format == "PNG" and image.width > 1200
    assert "random: 54 of 540 tokens visible" in out  # 30 patches x 18 limb joints, K = floor(0.1 * 540)


@pytest.mark.parametrize("mask_ratio", [0.9, 0.8, 0.95])
def test_each_criterion_keeps_k_tokens_of_the_same_18_limb_joints(synthetic_stores, mask_ratio):
    config, masks = small_masks(f"{synthetic_stores / 'ntu60-xsub' / 'train'}:0", mask_ratio=mask_ratio)
    assert [mask.criterion for mask in masks] == list(panel_criteria()) == ["attention", "hierarchy", "motion", "random"]
    expected = config.visible_per_group(config.tokens)  # K = floor((1 - r) L)
    for mask in masks:
        assert mask.config.token_joint_ids == config.token_joint_ids and len(config.token_joint_ids) == 18
        assert mask.masked.shape == (2, config.tokens)
        assert [mask.visible_count(body) for body in (0, 1)] == [expected, expected]
    assert [m.config.masking for m in masks] == ["single", "single", "motion", "random"]
    assert [m.config.single_criterion for m in masks[:2]] == ["attention", "hierarchy"]
    assert masks[2].config.keep_high_scores is False and masks[2].config.score_max_fraction == 0.8


def test_same_seed_same_masks_other_seed_other_masks(raw_sample, in_repo):
    _, first = small_masks(str(raw_sample), seed=7)
    _, again = small_masks(str(raw_sample), seed=7)
    _, other = small_masks(str(raw_sample), seed=8)
    for a, b, c in zip(first, again, other):
        assert np.array_equal(a.masked, b.masked)
        assert not np.array_equal(a.masked, c.masked)


def test_criteria_give_different_masks(raw_sample, in_repo):
    config = resolve_model_config(checkpoint=None, overrides=SMALL_MODEL)
    state = initial_state(config, seed=0)
    # Freshly initialised W_q, W_k (std 0.02) give near-uniform attention, which leaves the Gumbel noise
    # (shared by all panels) to decide; sharper projections make the attention criterion show.
    state["w_q"], state["w_k"] = state["w_q"] * 200, state["w_k"] * 200
    _, masks = small_masks(str(raw_sample), state=state)
    for i, a in enumerate(masks):
        for b in masks[i + 1 :]:
            assert not np.array_equal(a.masked, b.masked), (a.criterion, b.criterion)


def test_checkpoint_weights_drive_the_masks(raw_sample, tmp_path, in_repo, capsys):
    config = ModelConfig(**SMALL_MODEL)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(11)
        state = HACMPretrainer(config).state_dict()
    state["w_q"], state["w_k"] = state["w_q"] * 200, state["w_k"] * 200
    path = tmp_path / "checkpoint.pt"
    torch.save({"model": state, "config": {"model": config.to_dict()}, "epoch": 3}, path)
    checkpoint = read_checkpoint(path)
    resolved = resolve_model_config(checkpoint=checkpoint, overrides={})
    assert resolved == config
    _, from_checkpoint = small_masks(str(raw_sample), state=checkpoint.state)
    _, from_scratch = small_masks(str(raw_sample))
    assert not np.array_equal(from_checkpoint[0].masked, from_scratch[0].masked)


def bad_checkpoints(folder: Path) -> dict[str, Path]:
    config = ModelConfig(**SMALL_MODEL)
    state = HACMPretrainer(config).state_dict()
    paths = {name: folder / f"{name}.pt" for name in ("garbage", "foreign", "missing_weight", "all_joints")}
    paths["garbage"].write_text("not a checkpoint\n")
    torch.save({"weights": state}, paths["foreign"])
    torch.save({"model": {k: v for k, v in state.items() if k != "w_q"}, "config": {"model": config.to_dict()}},
               paths["missing_weight"])
    mamp = ModelConfig(**SMALL_MODEL, token_joints="all", masking="motion", contrast_weight=0.0)
    torch.save({"model": HACMPretrainer(mamp).state_dict(), "config": {"model": mamp.to_dict()}}, paths["all_joints"])
    torch.save({"model": state, "config": {"model": config.to_dict()}}, folder / "good.pt")
    return paths


@pytest.mark.parametrize("case, words", [
    ("missing file", "no such file"),
    ("folder", "STORE_DIR:INDEX"),
    ("not a store", "not a converted split"),
    ("index not a number", "not a sample index"),
    ("index out of range", "out of range"),
    ("garbage checkpoint", "not a PyTorch checkpoint file"),
    ("foreign checkpoint", "not a pretraining checkpoint"),
    ("weights do not match", "w_q is missing"),
    ("all-joint checkpoint", "token_joints"),
    ("config does not match", "model.frames=72"),
    ("unknown config key", "unknown key 'dimm'"),
    ("empty second body", "absent"),
    ("usage", "--body"),
])
def test_bad_inputs_exit_2_with_one_line(case, words, raw_sample, synthetic_stores, small_config, tmp_path, in_repo,
                                         capsys):
    store = synthetic_stores / "ntu60-xsub" / "train"
    checkpoints = bad_checkpoints(tmp_path)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("model:\n  dimm: 3\n")
    opened = SkeletonStore(store)
    one_actor = next(i for i in range(len(opened)) if not opened.sequence(i)[:, 1].any())
    sample = ["--sample", str(raw_sample)]
    args = {
        "missing file": ["--sample", str(tmp_path / "none.skeleton")],
        "folder": ["--sample", str(store)],
        "not a store": ["--sample", f"{tmp_path}:0"],
        "index not a number": ["--sample", f"{store}:first"],
        "index out of range": ["--sample", f"{store}:100000"],
        "garbage checkpoint": [*sample, "--checkpoint", str(checkpoints["garbage"])],
        "foreign checkpoint": [*sample, "--checkpoint", str(checkpoints["foreign"])],
        "weights do not match": [*sample, "--checkpoint", str(checkpoints["missing_weight"])],
        "all-joint checkpoint": [*sample, "--checkpoint", str(checkpoints["all_joints"])],
        "config does not match": [*sample, "--checkpoint", str(tmp_path / "good.pt"), "--frames", "120",
                                  "--t-patch", "4"],
        "unknown config key": [*sample, "--config", str(unknown)],
        "empty second body": ["--sample", f"{store}:{one_actor}", "--config", str(small_config), "--body", "1"],
        "usage": [*sample, "--body", "2"],
    }[case]
    out_png = tmp_path / "never.png"
    try:
        code, _, err = run_cli(["masks", *args, "--out", str(out_png)], capsys)
    except SystemExit as exit_:  # argparse exits rather than returning
        code, err = exit_.code, capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hacm.visualize: error: "), err
    assert words in lines[0]
    assert not out_png.exists()


def test_entry_point_reports_bad_input_without_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "hacm.visualize", "masks", "--sample", str(tmp_path / "none"),
                             "--out", str(tmp_path / "x.png")], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"hacm.visualize: error: --sample {tmp_path / 'none'}: no such file")
    assert "Traceback" not in result.stderr
