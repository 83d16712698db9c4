"""The pretraining step on a GPU must not make the host wait for the device at every step: hacm's code reads
values back (`.item()`, `float()`, `.tolist()`, `.cpu()`, ...) only at logged steps. On the CPU there is no
device to wait for, so this counts the calls themselves, made from hacm's own modules."""

from __future__ import annotations

import collections
import traceback
from pathlib import Path

import numpy as np
import pytest
import torch

from hacm.data.loader import Batch
from hacm.methods import METHODS
from hacm.model.config import ModelConfig
from hacm.model.pretrainer import HACMPretrainer
from hacm.train.engine import EpochProgress, train_one_epoch
from hacm.pretrain.run import parameter_groups

HACM_SOURCES = str(Path(__file__).resolve().parents[1] / "hacm")
READ_BACKS = ("item", "__float__", "__int__", "__bool__", "__index__", "tolist", "cpu", "numpy")
SMALL = {"frames": 12, "t_patch": 3, "dim": 16, "depth": 1, "heads": 2, "decoder_dim": 16, "decoder_depth": 1,
         "decoder_heads": 2}


def read_backs_by_hacm(run) -> collections.Counter:
    """The read-back calls made directly from a hacm module while `run()` runs, by `file:line`."""
    counted: collections.Counter = collections.Counter()
    originals = {name: getattr(torch.Tensor, name) for name in READ_BACKS}

    def counting(name):
        original = originals[name]

        def call(self, *args, **kwargs):
            caller = traceback.extract_stack(limit=2)[0]
            if caller.filename.startswith(HACM_SOURCES):
                counted[f"{Path(caller.filename).name}:{caller.lineno} {name}"] += 1
            return original(self, *args, **kwargs)

        return call

    for name in READ_BACKS:
        setattr(torch.Tensor, name, counting(name))
    try:
        run()
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)
    return counted


@pytest.mark.parametrize("method", ["hacm", "mae", "mamp"])
def test_a_step_reads_nothing_back_between_logged_steps(method):
    steps, log_every = 12, 4
    model = HACMPretrainer(ModelConfig.from_dict({**METHODS[method].preset, **SMALL}))
    optimizer = torch.optim.AdamW(parameter_groups(model, 0.05), lr=0.0)
    batches = [Batch(torch.randn(4, 3, 12, 25, 2), torch.zeros(4, dtype=torch.long), torch.arange(4))
               for _ in range(steps)]
    logged = []
    progress = EpochProgress(1)

    def train():
        train_one_epoch(model, batches, progress=progress, optimizer=optimizer, lr_schedule=np.full(steps, 1e-3),
                        first_step=0, device=torch.device("cpu"), precision="fp32", scaler=None, clip_grad=1.0,
                        generator=torch.Generator().manual_seed(0), sequence_slice=lambda n: (0, n),
                        on_step=logged.append, log_every=log_every, steps=steps, show_progress=False)

    counted = read_backs_by_hacm(train)
    logged_steps = steps // log_every
    assert [record["step"] for record in logged] == [0, 4, 8]
    # per logged step: the losses (one tolist) and the gradient norm (one float); nothing at the other steps
    assert sum(counted.values()) == 2 * logged_steps, counted
    assert progress.steps_done == steps and progress.sums is not None and progress.sums.dtype == torch.float64


# --- L_cc per group on several processes ------------------------------------------------------------------

def _grouped_step(rank: int, world: int, init_file: str, x: torch.Tensor, out: str, group: int | None) -> None:
    """One data-parallel step on this rank's contiguous slice of the global batch x (as epoch_batches cuts it)."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        model = HACMPretrainer(ModelConfig(**SMALL, contrast_group=group))
        local = x.shape[0] // world
        bodies = x.shape[-1]
        network = DistributedDataParallel(model)  # held until after backward: its hooks average the gradients
        output = network(x[rank * local:(rank + 1) * local], generator=torch.Generator().manual_seed(0),
                         sequence_offset=rank * local * bodies, total_sequences=x.shape[0] * bodies)
        output.loss.backward()
        torch.save({"contrast": output.contrast.detach(),
                    "grads": {name: p.grad for name, p in model.named_parameters() if p.grad is not None}},
                   f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("group", [4, None])
def test_contrast_on_two_gloo_processes_equals_one_process(tmp_path, group):
    """6 samples x 2 bodies: 12 sequences, 6 per process, in groups of 4 (the second straddles the two
    processes) or in one group: L_cc and the gradients are those of one process with the whole batch."""
    import torch.multiprocessing as mp

    x = torch.randn(6, 3, 12, 25, 2, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    model = HACMPretrainer(ModelConfig(**SMALL, contrast_group=group))
    output = model(x, generator=torch.Generator().manual_seed(0))
    output.loss.backward()
    mp.spawn(_grouped_step, args=(2, str(tmp_path / "init"), x, str(tmp_path), group), nprocs=2, join=True)
    for rank in (0, 1):
        got = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        torch.testing.assert_close(got["contrast"], output.contrast.detach(), rtol=1e-5, atol=0)
        for name, parameter in model.named_parameters():
            if parameter.grad is not None:
                scale = parameter.grad.abs().max().item()
                assert (got["grads"][name] - parameter.grad).abs().max().item() <= 1e-4 * scale + 1e-12, name


def test_a_global_batch_that_does_not_split_into_groups_is_one_line(synthetic_stores, tmp_path, capsys):
    import yaml

    from hacm.pretrain.__main__ import main as pretrain_main

    config = tmp_path / "grouped.yaml"
    config.write_text(yaml.safe_dump({"model": {**SMALL, "frames": 24, "contrast_group": 48},
                                      "data": {"batch_size": 32}, "optim": {"epochs": 1, "warmup_epochs": 0}}))
    code = pretrain_main(["--config", str(config), "--data", str(synthetic_stores / "ntu60-xsub"),
                          "--out", str(tmp_path / "run"), "--no-progress"])
    error = capsys.readouterr().err.strip()
    assert code == 1 and "model.contrast_group: must divide the global batch of 64 sequences" in error
    assert len(error.splitlines()) == 1, error
