"""The speed work changes how the training step computes, not what: hacm's step against the revision
before that work, built from its own source (a git worktree), on one batch with the same weights and mask
noise. Float32 sums taken in another order differ in the last bits, so the tolerances are relative."""

from __future__ import annotations

import pytest
import torch

from hacm.compare import COORDS, JOINTS, REPO, checkout_at, hacm_model, model_sizes
from hacm.release.checkout import ReleaseError as BenchError

REFERENCE = "d573e93"  # the last commit before the step's speed work (issue 14)
LOSS_RTOL = 1e-5
TENSOR_RTOL = 1e-4  # of the largest magnitude of the compared tensor


def step_outputs(model: torch.nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    output = model(x, generator=torch.Generator().manual_seed(0))
    output.loss.backward()
    grads = {f"grad {name}": p.grad for name, p in model.named_parameters() if p.grad is not None}
    return {"loss": output.loss.detach(), "prediction": output.prediction.detach(),
            "visible": output.plan.visible, **grads}


@pytest.mark.parametrize("size", ["embedded", "paper"])
def test_the_step_computes_what_the_reference_revision_computed(tmp_path, size):
    sizes, batch = model_sizes(size)
    try:
        with checkout_at(REFERENCE, tmp_path) as tree:
            reference = hacm_model(tree, sizes)
    except BenchError as error:
        pytest.skip(f"revision {REFERENCE} is not in this clone's history: {error}")
    ours = hacm_model(REPO, sizes)
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(min(batch, 8), COORDS, sizes["frames"], JOINTS, sizes["num_bodies"],
                    generator=torch.Generator().manual_seed(1)) * 0.3
    expected, got = step_outputs(reference, x), step_outputs(ours, x)
    assert expected.keys() == got.keys()
    assert torch.equal(got.pop("visible"), expected.pop("visible")), "the masks differ"
    torch.testing.assert_close(got.pop("loss"), expected.pop("loss"), rtol=LOSS_RTOL, atol=0)
    for name, value in expected.items():
        scale = value.abs().max().item()
        assert (got[name] - value).abs().max().item() <= TENSOR_RTOL * scale + 1e-12, name


def test_compiled_transformer_stacks_compute_what_eager_ones_do():
    sizes = dict(model_sizes("embedded")[0], frames=12, depth=1)
    torch.manual_seed(0)
    eager = hacm_model(REPO, sizes)
    compiled = hacm_model(REPO, sizes)
    compiled.load_state_dict(eager.state_dict())
    compiled.compile_transformers()
    x = torch.randn(4, COORDS, sizes["frames"], JOINTS, sizes["num_bodies"], generator=torch.Generator().manual_seed(1))
    expected, got = step_outputs(eager, x), step_outputs(compiled, x)
    assert list(compiled.state_dict()) == list(eager.state_dict())  # checkpoints do not depend on it
    assert torch.equal(got.pop("visible"), expected.pop("visible"))
    for name, value in expected.items():
        assert (got[name] - value).abs().max().item() <= TENSOR_RTOL * value.abs().max().item() + 1e-12, name
