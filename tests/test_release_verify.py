"""`python -m hacm.release verify`: its verdicts, noise, orders and usage errors always; end to end (every row
equal or an explained difference, and a wrong key map caught) when checkouts are given in HACM_RELEASE_CHECKOUT
(a git clone of YinxPeng/HA-CM-main) and HACM_MAMP_CHECKOUT (maoyunyao/MAMP)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest
import torch

from hacm.model.config import ModelConfig
from hacm.release.__main__ import main
from hacm.release.hacm_rows import joint_major, natural_restore, time_major
from hacm.release.noise import NoiseError, hacm_uniforms, served
from hacm.release.pairs import synthetic_batch
from hacm.release.rows import Row, compared, kept_sets, table
from tests.conftest import REPO

RELEASE_CHECKOUT = os.environ.get("HACM_RELEASE_CHECKOUT")
MAMP_CHECKOUT = os.environ.get("HACM_MAMP_CHECKOUT")
needs_release = pytest.mark.skipif(not RELEASE_CHECKOUT, reason="set HACM_RELEASE_CHECKOUT to a git clone of "
                                   "YinxPeng/HA-CM-main to run the verifier end to end")
needs_mamp = pytest.mark.skipif(not (RELEASE_CHECKOUT and MAMP_CHECKOUT), reason="set HACM_RELEASE_CHECKOUT and "
                                "HACM_MAMP_CHECKOUT (a checkout of maoyunyao/MAMP) to verify MAE and MAMP end to end")


def test_verdicts():
    assert compared("HA-CM", "q", torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0 + 1e-6])).verdict == "equal"
    differs = compared("HA-CM", "q", torch.tensor([1.0]), torch.tensor([1.1]))
    assert differs.verdict == "DIFFERS" and not differs.passed
    explained = compared("HA-CM", "q", torch.tensor([1.0]), torch.tensor([1.1]), expected="a cause", explained=True)
    assert explained.passed and explained.verdict == "expected: a cause"
    unexplained = compared("HA-CM", "q", torch.tensor([1.0]), torch.tensor([1.1]), expected="a cause")
    assert not unexplained.passed
    assert compared("HA-CM", "q", torch.zeros(2), torch.zeros(3)).difference == float("inf")
    kept = torch.tensor([[True, False, True], [False, True, True]])
    row = kept_sets("MAMP", "kept", kept, kept.flip(0))
    assert row.difference == 2 and not row.passed and "2 of 2 sequences differ" in row.detail
    text = table([explained, unexplained, Row("MAE", "w", 0.0, 0.0)])
    assert "expected [1]" in text and "DIFFERS (not explained by [1])" in text and text.endswith("[1] a cause")


def test_orders_round_trip_and_restore_puts_tokens_back():
    values = torch.arange(2 * 12 * 18).reshape(2, -1)
    assert torch.equal(time_major(joint_major(values, 12, 18), 12, 18), values)
    assert joint_major(values, 12, 18)[0, 1].item() == 18  # joint 0 of patch 1
    visible = torch.tensor([[4, 1], [0, 3]])
    masked = torch.ones(2, 5, dtype=torch.bool).scatter_(1, visible, False)
    restore = natural_restore(visible, masked)
    shuffled = torch.cat([visible, torch.arange(5).expand(2, 5)[masked].reshape(2, -1)], dim=1)
    assert torch.equal(torch.gather(shuffled, 1, restore), torch.arange(5).expand(2, 5))


def test_served_noise_is_hacm_s_and_checked():
    uniforms = hacm_uniforms(3, [(2, 4), (2, 5)])
    generator = torch.Generator().manual_seed(3)
    assert all(torch.equal(u, torch.rand(u.shape, generator=generator)) for u in uniforms)
    with served(uniforms) as asked:
        assert torch.equal(torch.rand(2, 4), uniforms[0]) and torch.equal(torch.rand((2, 5)), uniforms[1])
    assert asked == [(2, 4), (2, 5)]
    with pytest.raises(NoiseError, match="asked where"), served(uniforms):
        torch.rand(3, 4)
    with pytest.raises(NoiseError, match="never asked for"), served(uniforms):
        torch.rand(2, 4)


def test_the_input_has_an_absent_body_and_moves():
    x = synthetic_batch(72)
    assert x.shape == (4, 3, 72, 25, 2) and x.dtype == torch.float32
    assert x[0, ..., 1].abs().max() == 0 and x[1, ..., 1].abs().max() > 0
    assert (x[:, :, 1:] - x[:, :, :-1]).abs().max() > 1e-3


def exit_code(argv: list[str]) -> int:
    """What `python -m hacm.release ARGV` exits with: main's return value, or the parser's exit."""
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code


def test_usage_errors_are_one_line(tmp_path, capsys):
    cases = [([], "required"),
             (["verify"], "--release"),
             (["verify", "--release", str(tmp_path / "absent")], "is not a folder"),
             (["verify", "--release", str(tmp_path)], "is not a git checkout of YinxPeng/HA-CM-main"),
             (["verify", "--release", str(tmp_path), "--size", "huge"], "invalid choice")]
    for argv, words in cases:
        assert exit_code(argv) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("hacm.release: error:") and words in lines[0], lines


@needs_release
def test_a_folder_that_is_not_mamp_is_one_line(tmp_path, capsys):
    assert main(["verify", "--release", RELEASE_CHECKOUT, "--mamp", str(tmp_path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "no model_mamp/transformer.py" in lines[0]


def _rows_of(output: str) -> dict[tuple[str, str], str]:
    """(method, quantity) -> verdict of each printed row."""
    rows = {}
    for line in output.splitlines():
        parts = [part for part in line.split("  ") if part.strip()]
        if len(parts) >= 5 and parts[0].strip() in ("HA-CM", "MAE", "MAMP"):
            rows[(parts[0].strip(), parts[1].strip())] = parts[4].strip()
    return rows


@needs_release
def test_the_release_verifies(capsys):
    assert main(["verify", "--release", RELEASE_CHECKOUT]) == 0
    output = capsys.readouterr().out
    rows = _rows_of(output)
    for quantity in ("weights through the key map", "encoder features (evaluation model)",
                     "temporal scores (time-major)", "temporal kept tokens, same uniforms",
                     "spatial kept tokens: release selector on hacm's scores", "reconstruction loss, fixed mask",
                     "L_cc, fixed mask", "total loss, fixed mask"):
        assert rows[("HA-CM", quantity)] == "equal", (quantity, output)
    assert rows[("HA-CM", "total loss, each side's own forward")].startswith("expected")
    assert "decoder restore offset" in output and "all " in output.splitlines()[-1]
    objective = ("HA-CM", "total loss, hacm release_objective=True vs the release's forward")
    has_switch = "release_objective" in {field.name for field in dataclasses.fields(ModelConfig)}
    assert (objective in rows) == has_switch and rows.get(objective, "equal") == "equal"


@needs_mamp
def test_mae_and_mamp_verify_as_a_command():
    result = subprocess.run([sys.executable, "-m", "hacm.release", "verify", "--release", RELEASE_CHECKOUT,
                             "--mamp", MAMP_CHECKOUT], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = _rows_of(result.stdout)
    for method in ("MAE", "MAMP"):
        for quantity in ("weights through the key map", "encoder features (evaluation model)", "visible tokens K",
                         "kept tokens, same uniforms", "reconstruction loss, fixed mask",
                         "loss, each side's own forward"):
            assert rows[(method, quantity)] == "equal", (method, quantity, result.stdout)


@needs_release
def test_a_wrong_key_map_is_caught(monkeypatch, capsys):
    """LayerNorms of the same shape swapped in the map: only their perturbation shows it."""
    import hacm.release.keymap as keymap

    monkeypatch.setitem(keymap._BLOCK_PARTS, "norm1", "norm2")
    monkeypatch.setitem(keymap._BLOCK_PARTS, "norm2", "norm1")
    assert main(["verify", "--release", RELEASE_CHECKOUT]) == 1
    output = capsys.readouterr().out
    assert _rows_of(output)[("HA-CM", "encoder features (evaluation model)")] == "DIFFERS"
    assert "rows differ" in output.splitlines()[-1]
