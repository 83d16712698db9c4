"""A whole pretraining run: data, model, optimiser, resumable epochs, checkpoints, monitors, encoder file.

Resuming: the checkpoint written after every epoch holds the model, optimiser, grad scaler, step,
every random state and the resolved config; data order and augmentation are functions of
(seed, epoch), so a run restarted after a kill ends with the same weights as one never stopped.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel

from hacm.config import ConfigError, write_run_config
from hacm.data.loader import Feeder, epoch_batches, make_feeder
from hacm.data.storage import SkeletonStore, StoreError
from hacm.model.heads import pooled_features
from hacm.model.config import ModelConfig
from hacm.model.mask_diagnostic import diagnose_masking, present_bodies
from hacm.model.pretrainer import HACMPretrainer
from hacm.train.checkpoint import CheckpointError, load_resumable, load_state, restore_run_state, save_run_state
from hacm.train.config import PretrainConfig
from hacm.train.distributed import Distributed
from hacm.train.encoder_file import ENCODER, save_encoder
from hacm.train.engine import AUTOCAST_DTYPES, NonFiniteLoss, train_one_epoch
from hacm.train.monitor import MetricsLog, knn_accuracy, plot_loss_curve
from hacm.train.schedules import warmup_cosine

CHECKPOINT = "checkpoint.pt"
MODEL_KEY = "model"  # the checkpoint entry of the whole pretrainer's weights (encoder, decoder, mask token)
METRICS = "metrics.jsonl"
LOSS_CURVE = "loss_curve.png"
# The curve is redrawn after an epoch when this many seconds have passed since the last drawing, and when
# the run ends or stops: every epoch of a real run, once for a minute-long embedded run (a drawing costs
# ~0.3 s, ~5 % of an embedded pretraining at every epoch). A run killed between drawings leaves the curve
# up to a minute behind metrics.jsonl; the next run that ends or stops redraws it.
CURVE_EVERY_S = 60.0
# The masking monitor: agreement with random masking on the first body sequences of the test split.
MONITOR_SEQUENCES = 40
MONITOR_DRAWS = 50


class RunError(RuntimeError):
    """A run that cannot start or continue; the message says why and what to do."""


# What a pretraining or evaluation run reports as one line (exit 1) rather than a traceback.
RUN_ERRORS = (StoreError, CheckpointError, RunError, NonFiniteLoss, ConfigError)


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on every tensor of more than one dimension, none on biases and norms: the release's
    timm `optim_factory.add_weight_decay` (main_pretrain.py), which decays the learned position
    embeddings and the mask token too."""
    decay, no_decay = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (no_decay if parameter.ndim <= 1 else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def read_pretrained_model(path: Path) -> tuple[ModelConfig, dict]:
    """The model config and the whole pretrainer's weights of a pretraining run's checkpoint (the encoder
    file holds the encoder only); CheckpointError when the file is not one."""
    state = load_state(path)  # torch.load(weights_only=True): tensors and plain values only
    weights, config = state.get(MODEL_KEY), state.get("config")
    if not (isinstance(weights, dict) and isinstance(config, dict) and isinstance(config.get("model"), dict)):
        raise CheckpointError(f"{path}: not a pretraining checkpoint (expected a {MODEL_KEY!r} state_dict and a "
                              "'config' with a 'model' entry)")
    try:
        return ModelConfig.from_dict(config["model"]), weights
    except ConfigError as error:
        raise CheckpointError(f"{path}: its model config is invalid ({error})") from None


def write_encoder(path: Path, model: HACMPretrainer, config: PretrainConfig, epoch: int, data: dict) -> None:
    save_encoder(path, model.encoder, method=config.method, epoch=epoch, pretrain_config=config.to_dict(), data=data)


def _knn_monitor(model: HACMPretrainer, train_feeder: Feeder, test_feeder: Feeder, config: PretrainConfig,
                 device: torch.device) -> float:
    batch_size = config.data.batch_size

    def features(feeder: Feeder):
        batches = epoch_batches(len(feeder.store), batch_size=batch_size, seed=0, epoch=0, shuffle=False,
                                drop_last=False)
        return pooled_features(model.encoder, feeder.iterate(batches), device=device,
                               autocast_dtype=AUTOCAST_DTYPES[config.optim.precision])

    train_features, train_labels = features(train_feeder)
    test_features, test_labels = features(test_feeder)
    return knn_accuracy(train_features, train_labels, test_features, test_labels, k=config.monitor.knn_k)


def run_pretraining(config: PretrainConfig, *, data_dir: Path, out_dir: Path, context: Distributed,
                    stop_after_epochs: int | None = None, stop_after_steps: int | None = None,
                    show_progress: bool = True, restart_on_change: bool = False,
                    config_file: Path | None = None) -> dict:
    """Train (or resume) in `out_dir`; returns the last epoch's record. `stop_after_epochs` / `_steps`
    end this run early (time-limited jobs, rehearsals); a part of an epoch is logged, not saved.

    A checkpoint written with another configuration is an error, or (restart_on_change, as the
    workflow asks after a hyperparameter changed) ignored: the run starts over and overwrites it."""
    device = context.device
    out_dir.mkdir(parents=True, exist_ok=True)
    train_store = SkeletonStore(data_dir / "train")
    test_store = SkeletonStore(data_dir / "test") if (data_dir / "test" / "info.json").is_file() else None
    batch_size = config.data.batch_size
    steps_per_epoch = len(train_store) // batch_size
    if steps_per_epoch == 0:
        raise RunError(f"data.batch_size={batch_size} is larger than the {len(train_store)} training samples")
    if batch_size % context.world_size:
        raise RunError(f"data.batch_size={batch_size} does not split over {context.world_size} processes")

    torch.manual_seed(config.seed)
    model = HACMPretrainer(config.model).to(device)
    if config.optim.compile:
        model.compile_transformers()
    optimizer = torch.optim.AdamW(parameter_groups(model, config.optim.weight_decay), lr=0.0,
                                  betas=config.optim.betas)
    scaler = torch.amp.GradScaler(device.type) if config.optim.precision == "fp16" else None
    mask_generator = torch.Generator(device=device).manual_seed(config.seed)
    base_lr, min_lr = config.optim.scaled_lr(batch_size)
    schedule = warmup_cosine(base=base_lr, final=min_lr, epochs=config.optim.epochs,
                             steps_per_epoch=steps_per_epoch, warmup_epochs=config.optim.warmup_epochs)

    resolved = config.to_dict()
    start_epoch = 1
    checkpoint_path = out_dir / CHECKPOINT
    data_identity = {"train": train_store.identity}
    state = load_resumable(checkpoint_path, resolved, restart_on_change=restart_on_change, map_location=device,
                           announce=context.is_main, data=data_identity)
    if state is not None and int(state["epoch"]) >= config.optim.epochs and not (out_dir / METRICS).exists():
        # A finished run whose log is gone (the workflow deletes a job's outputs before rerunning it):
        # nothing to resume, and its log cannot be recovered: train again from the start.
        if context.is_main:
            print(f"{checkpoint_path} is finished but {METRICS} is missing; training again", file=sys.stderr)
        state = None
    run_objects = dict(modules={MODEL_KEY: model}, optimizer=optimizer, scaler=scaler,
                       generators={"mask": mask_generator})
    if state is not None:
        start_epoch = restore_run_state(state, **run_objects, source=checkpoint_path)
    elif context.is_main:
        # A fresh start (or a start over after a change): an encoder left by an earlier run of this folder
        # must not outlive it, even if this run is stopped before it writes its own.
        (out_dir / ENCODER).unlink(missing_ok=True)
        write_run_config(out_dir, resolved, given=config_file)
    curve_title = f"{config.method} pretraining ({data_dir.name})"
    log = MetricsLog(out_dir / METRICS, keep_through_epoch=start_epoch - 1 if start_epoch > 1 else None,
                     enabled=context.is_main)

    feed = dict(frames=config.model.frames, seed=config.seed, device=device, loader=config.data.loader,
                workers=config.data.workers, rotation=config.data.rotation)
    train_feeder = make_feeder(train_store, train=True, **feed)
    monitor_feeders = monitor_bodies = None
    if test_store is not None and config.monitor.knn_every and context.is_main:
        monitor_feeders = (make_feeder(train_store, train=False, **feed), make_feeder(test_store, train=False, **feed))
        monitor_bodies = present_bodies(test_store, frames=config.model.frames, count=MONITOR_SEQUENCES).to(device)

    network = model
    if context.enabled:
        network = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    local_batch = batch_size // context.world_size

    def sequence_slice(local_sequences: int) -> tuple[int, int]:
        # This process's sequences within the global batch, for data-parallel-invariant masks.
        return context.rank * local_sequences, context.world_size * local_sequences

    record: dict = {}
    epochs_this_run = steps_this_run = 0
    curve_drawn = time.monotonic()
    for epoch in range(start_epoch, config.optim.epochs + 1):
        started = time.perf_counter()
        batches = epoch_batches(len(train_store), batch_size=batch_size, seed=config.seed, epoch=epoch,
                                rank=context.rank, world_size=context.world_size)
        cut = stop_after_steps is not None and steps_this_run + len(batches) > stop_after_steps
        if cut:
            batches = batches[: stop_after_steps - steps_this_run]
        means = train_one_epoch(
            network, train_feeder.iterate(batches, epoch), optimizer=optimizer, lr_schedule=schedule,
            first_step=(epoch - 1) * steps_per_epoch, epoch=epoch, device=device,
            precision=config.optim.precision, scaler=scaler, clip_grad=config.optim.clip_grad,
            generator=mask_generator, sequence_slice=sequence_slice, on_step=log.write,
            log_every=config.monitor.log_every, steps=len(batches), show_progress=show_progress and context.is_main)
        steps_this_run += len(batches)
        record = {"kind": "epoch", "epoch": epoch, "step": epoch * steps_per_epoch - 1, **means,
                  "seconds": round(time.perf_counter() - started, 3),
                  "samples_per_s": round(len(batches) * local_batch * context.world_size
                                         / (time.perf_counter() - started), 2),
                  "knn_top1": None}
        if cut:  # measured and logged; not saved: a rerun trains this epoch again from its start
            record.update(kind="partial_epoch", step=(epoch - 1) * steps_per_epoch + len(batches) - 1,
                          steps=len(batches))
            if context.is_main:
                log.write(record)
                kept = f"the checkpoint is of epoch {epoch - 1}" if epoch > 1 else "no checkpoint yet"
                print(f"stopped after {steps_this_run} steps, in epoch {epoch} (not saved: {kept}; run again to "
                      "continue)", file=sys.stderr)
            break
        last = epoch == config.optim.epochs
        epochs_this_run += 1
        stop = ((stop_after_epochs is not None and epochs_this_run >= stop_after_epochs)
                or (stop_after_steps is not None and steps_this_run >= stop_after_steps))
        if monitor_feeders and (epoch % config.monitor.knn_every == 0 or last):
            record["knn_top1"] = _knn_monitor(model, *monitor_feeders, config, device)
            record["masking_agreement"] = diagnose_masking(model, monitor_bodies, draws=MONITOR_DRAWS,
                                                           seed=config.seed).agreement_by_group()
        if context.is_main:
            log.write(record)
            save_run_state(checkpoint_path, **run_objects, epoch=epoch, resolved=resolved, data=data_identity,
                           step=epoch * steps_per_epoch)
            if last or stop or time.monotonic() - curve_drawn >= CURVE_EVERY_S:
                plot_loss_curve(log.records(), out_dir / LOSS_CURVE, title=curve_title)
                curve_drawn = time.monotonic()
            if last:
                write_encoder(out_dir / ENCODER, model, config, epoch, data_identity)
        if context.enabled:
            torch.distributed.barrier()
        if stop and not last:
            break
    if start_epoch > config.optim.epochs and context.is_main:
        if not (out_dir / ENCODER).exists():
            write_encoder(out_dir / ENCODER, model, config, config.optim.epochs, data_identity)
        if not (out_dir / LOSS_CURVE).exists():
            plot_loss_curve(log.records(), out_dir / LOSS_CURVE, title=curve_title)
    return record
