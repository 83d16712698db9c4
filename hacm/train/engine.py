"""One training epoch (pretraining, or a classifier's for the linear probe and fine-tuning): forward,
backward, clipping, optimiser step under the per-step schedule.

Knows nothing of files or command lines: batches come in, metrics go out through a callback.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite; training stops instead of writing a poisoned checkpoint."""


def set_learning_rate(optimizer: torch.optim.Optimizer, value: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = value * group.get("lr_scale", 1.0)


def backward_and_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None,
                      clip_grad: float | None) -> torch.Tensor | None:
    """Backward (scaled for fp16), optional gradient clipping, optimiser step; the gradient norm (a tensor on
    the device, read only when logged) when clipped."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
    else:
        loss.backward()
    grad_norm = None
    if clip_grad is not None:
        parameters = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        grad_norm = torch.nn.utils.clip_grad_norm_(parameters, clip_grad)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    return grad_norm


LOSSES = ("loss", "reconstruction", "contrast")


@dataclass
class EpochProgress:
    """How far an epoch has come: the steps done and their losses summed in step order (float64, on the
    device, so that summing costs no host-device synchronisation). A checkpoint between two steps keeps it,
    so a run stopped and resumed mid-epoch ends the epoch with the means of an uninterrupted one."""

    epoch: int
    steps_done: int = 0
    sums: torch.Tensor | None = None  # (3,): LOSSES summed over the steps done

    def add(self, values: torch.Tensor) -> None:
        values = values.detach().to(torch.float64)
        self.sums = values if self.sums is None else self.sums + values
        self.steps_done += 1

    def means(self) -> dict[str, float]:
        if self.sums is None:
            return dict.fromkeys(LOSSES, 0.0)
        sums = self.sums.tolist()
        return {key: value / self.steps_done for key, value in zip(LOSSES, sums)}

    def state(self) -> dict:
        return {"epoch": self.epoch, "steps_done": self.steps_done,
                "sums": None if self.sums is None else self.sums.detach().cpu()}

    @classmethod
    def from_state(cls, state: dict, device: torch.device) -> EpochProgress:
        sums = state.get("sums")
        return cls(epoch=int(state["epoch"]), steps_done=int(state["steps_done"]),
                   sums=None if sums is None else sums.to(device))


def check_finite(values: torch.Tensor, *, epoch: int, step: int) -> list[float]:
    """The values as floats (one host-device synchronisation); NonFiniteLoss when one is NaN or infinite."""
    floats = values.tolist()
    if not all(math.isfinite(value) for value in floats):
        raise NonFiniteLoss(f"loss is {floats[0]} at epoch {epoch} step {step}; lower optim.lr or use fp32")
    return floats


def train_one_epoch(
    model: torch.nn.Module,
    batches: Iterable,
    *,
    progress: EpochProgress,
    optimizer: torch.optim.Optimizer,
    lr_schedule: np.ndarray,
    first_step: int,
    device: torch.device,
    precision: str,
    scaler: torch.amp.GradScaler | None,
    clip_grad: float | None,
    generator: torch.Generator,
    sequence_slice: Callable[[int], tuple[int, int]],
    on_step: Callable[[dict], None],
    log_every: int,
    steps: int,
    should_stop: Callable[[int, bool], bool] | None = None,
    show_progress: bool = True,
) -> bool:
    """Train over `batches`, the epoch's batches after the `progress.steps_done` already done; True when they
    are all done, False when `should_stop(step, logged)` asked to stop after a step.

    `first_step` is the epoch's first global step; sequence_slice(local sequences) -> (offset, total). The
    host waits for the device only at logged steps (every `log_every`: the step's losses are read, checked
    and written through `on_step`), so a GPU runs ahead of the Python loop between them."""
    model.train()
    autocast_dtype = AUTOCAST_DTYPES[precision]
    bar = tqdm(total=steps, initial=progress.steps_done, desc=f"epoch {progress.epoch}", unit="step",
               disable=not show_progress, leave=False, mininterval=2.0)
    try:
        for batch in batches:
            step = first_step + progress.steps_done
            set_learning_rate(optimizer, float(lr_schedule[step]))
            x = batch.x.to(device, non_blocking=True)
            offset, total = sequence_slice(x.shape[0] * x.shape[-1])
            with torch.autocast(device_type=device.type, dtype=autocast_dtype or torch.bfloat16,
                                enabled=autocast_dtype is not None):
                output = model(x, generator=generator, sequence_offset=offset, total_sequences=total)
            values = torch.stack([output.loss.detach().float(), output.reconstruction.detach().float(),
                                  output.contrast.detach().float()])
            logged = step % log_every == 0
            if logged:  # checked before the step, so a non-finite loss never reaches the weights here
                floats = check_finite(values, epoch=progress.epoch, step=step)
            grad_norm = backward_and_step(output.loss, optimizer, scaler, clip_grad)
            progress.add(values)
            bar.update()
            if logged:
                bar.set_postfix(loss=f"{floats[0]:.4f}")
                on_step({"kind": "step", "epoch": progress.epoch, "step": step, "lr": float(lr_schedule[step]),
                         "grad_norm": None if grad_norm is None else float(grad_norm), **dict(zip(LOSSES, floats))})
            if should_stop is not None and should_stop(step, logged):
                return False
        return True
    finally:
        bar.close()


def train_classifier_epoch(
    batches: Iterable,
    forward: Callable[[object], tuple[torch.Tensor, torch.Tensor]],
    *,
    optimizer: torch.optim.Optimizer,
    lr_schedule: np.ndarray,
    first_step: int,
    epoch: int,
    device: torch.device,
    autocast_dtype: torch.dtype | None = None,
    scaler: torch.amp.GradScaler | None = None,
    clip_grad: float | None = None,
    label_smoothing: float = 0.0,
    lr_key: str = "the lr",
) -> tuple[float, float]:
    """One epoch of cross-entropy training, as MAE runs its linear probe and fine-tuning through one
    train_one_epoch: `forward(item)` gives (logits, labels) of a batch. Returns mean loss and top-1."""
    total, correct, seen = 0.0, 0, 0
    for step_in_epoch, item in enumerate(batches):
        set_learning_rate(optimizer, float(lr_schedule[first_step + step_in_epoch]))
        with torch.autocast(device_type=device.type, dtype=autocast_dtype or torch.bfloat16,
                            enabled=autocast_dtype is not None):
            logits, labels = forward(item)
            loss = F.cross_entropy(logits.float(), labels, label_smoothing=label_smoothing)
        if not math.isfinite(float(loss.detach())):
            raise NonFiniteLoss(f"loss is {float(loss)} at epoch {epoch}; lower {lr_key} or use fp32")
        backward_and_step(loss, optimizer, scaler, clip_grad)
        total += float(loss.detach()) * len(labels)
        correct += int((logits.argmax(1) == labels).sum())
        seen += len(labels)
    return total / seen, correct / seen
