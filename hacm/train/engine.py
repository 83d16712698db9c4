"""One training epoch (pretraining, or a classifier's for the linear probe and fine-tuning): forward,
backward, clipping, optimiser step under the per-step schedule.

Knows nothing of files or command lines: batches come in, metrics go out through a callback.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

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
                      clip_grad: float | None) -> float | None:
    """Backward (scaled for fp16), optional gradient clipping, optimiser step; the gradient norm when clipped."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
    else:
        loss.backward()
    grad_norm = None
    if clip_grad is not None:
        parameters = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        grad_norm = float(torch.nn.utils.clip_grad_norm_(parameters, clip_grad))
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    return grad_norm


def train_one_epoch(
    model: torch.nn.Module,
    batches: Iterable,
    *,
    optimizer: torch.optim.Optimizer,
    lr_schedule: np.ndarray,
    first_step: int,
    epoch: int,
    device: torch.device,
    precision: str,
    scaler: torch.amp.GradScaler | None,
    clip_grad: float | None,
    generator: torch.Generator,
    sequence_slice: Callable[[int], tuple[int, int]],
    on_step: Callable[[dict], None],
    log_every: int,
    steps: int,
    show_progress: bool = True,
) -> dict:
    """Train over `batches`; returns the epoch's mean losses. sequence_slice(local sequences) -> (offset, total)."""
    model.train()
    autocast_dtype = AUTOCAST_DTYPES[precision]
    sums = {"loss": 0.0, "reconstruction": 0.0, "contrast": 0.0}
    count = 0
    progress = tqdm(total=steps, desc=f"epoch {epoch}", unit="step", disable=not show_progress, leave=False,
                    mininterval=2.0)
    for index, batch in enumerate(batches):
        step = first_step + index
        set_learning_rate(optimizer, float(lr_schedule[step]))
        x = batch.x.to(device, non_blocking=True)
        offset, total = sequence_slice(x.shape[0] * x.shape[-1])
        with torch.autocast(device_type=device.type, dtype=autocast_dtype or torch.bfloat16,
                            enabled=autocast_dtype is not None):
            output = model(x, generator=generator, sequence_offset=offset, total_sequences=total)
        loss = output.loss
        loss_value = float(loss.detach())
        if not math.isfinite(loss_value):
            raise NonFiniteLoss(f"loss is {loss_value} at epoch {epoch} step {step}; lower optim.lr or use fp32")
        grad_norm = backward_and_step(loss, optimizer, scaler, clip_grad)
        values = {"loss": loss_value, "reconstruction": float(output.reconstruction.detach()),
                  "contrast": float(output.contrast.detach())}
        for key, value in values.items():
            sums[key] += value
        count += 1
        progress.update()
        progress.set_postfix(loss=f"{values['loss']:.4f}")
        if step % log_every == 0:
            on_step({"kind": "step", "epoch": epoch, "step": step, "lr": float(lr_schedule[step]),
                     "grad_norm": grad_norm, **values})
    progress.close()
    return {key: value / max(count, 1) for key, value in sums.items()}


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
