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
from hacm.model.config import PRESETS, ModelConfig
from hacm.model.pretrainer import HACMPretrainer
from hacm.train.engine import EpochProgress, train_one_epoch
from hacm.train.pretraining import parameter_groups

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
    model = HACMPretrainer(ModelConfig.from_dict({**PRESETS[method], **SMALL}))
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
