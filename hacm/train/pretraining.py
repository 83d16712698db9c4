"""A whole pretraining run: data, model, optimiser, resumable epochs, checkpoints, monitors, encoder file.

Resuming: a checkpoint is written after every epoch, and between two steps when the run is asked to stop
(a signal, or its SLURM job's time limit coming near: hacm.train.stopping). It holds the model, optimiser,
grad scaler, the global step, the steps done in an unfinished epoch with their loss sums, every random
state and the resolved config; data order and augmentation are functions of (seed, epoch), so a run
restarted any number of times ends with the weights of one never stopped.

The run's log (every logged step, every epoch, where each part ran) is kept beside the checkpoint in
history.jsonl, cut back to the checkpoint on resume, and exported as metrics.jsonl: the workflow's output,
which Snakemake deletes when a job fails or hits its time limit, is rebuilt whole by the next run.
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
from hacm.train.engine import AUTOCAST_DTYPES, EpochProgress, NonFiniteLoss, check_finite, train_one_epoch
from hacm.train.environment import DeviceError, describe
from hacm.train.monitor import MetricsLog, knn_accuracy, plot_loss_curve
from hacm.train.progress import ProgressLines
from hacm.train.schedules import warmup_cosine
from hacm.train.stopping import StopRequest

CHECKPOINT = "checkpoint.pt"
MODEL_KEY = "model"  # the checkpoint entry of the whole pretrainer's weights (encoder, decoder, mask token)
METRICS = "metrics.jsonl"  # the workflow's output, exported from HISTORY
HISTORY = "history.jsonl"  # the log kept beside the checkpoint across continuations
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
RUN_ERRORS = (StoreError, CheckpointError, RunError, NonFiniteLoss, ConfigError, DeviceError)


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


class PretrainingRun:
    """One pretraining run folder: set up from its config, resumed from its checkpoint, trained epoch by epoch
    until done or asked to stop, finished with the encoder file."""

    def __init__(self, config: PretrainConfig, *, data_dir: Path, out_dir: Path, context: Distributed,
                 show_progress: bool = True) -> None:
        self.config, self.data_dir, self.out_dir, self.context = config, Path(data_dir), Path(out_dir), context
        self.show_progress = show_progress
        self.device = device = context.device
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.train_store = SkeletonStore(self.data_dir / "train")
        test_dir = self.data_dir / "test"
        self.test_store = SkeletonStore(test_dir) if (test_dir / "info.json").is_file() else None
        self.batch_size = batch_size = config.data.batch_size
        self.steps_per_epoch = len(self.train_store) // batch_size
        if self.steps_per_epoch == 0:
            raise RunError(f"data.batch_size={batch_size} is larger than the {len(self.train_store)} training samples")
        if batch_size % context.world_size:
            raise RunError(f"data.batch_size={batch_size} does not split over {context.world_size} processes")
        config.model.check_global_batch(batch_size * config.model.num_bodies)  # whole L_cc groups

        torch.manual_seed(config.seed)
        self.model = HACMPretrainer(config.model).to(device)
        if config.optim.compile:
            self.model.compile_transformers()
        # The fused kernel on CUDA: one launch for every parameter's update instead of a few per tensor.
        self.optimizer = torch.optim.AdamW(parameter_groups(self.model, config.optim.weight_decay), lr=0.0,
                                           betas=config.optim.betas, fused=device.type == "cuda" or None)
        self.scaler = torch.amp.GradScaler(device.type) if config.optim.precision == "fp16" else None
        self.mask_generator = torch.Generator(device=device).manual_seed(config.seed)
        base_lr, min_lr = config.optim.scaled_lr(batch_size)
        self.schedule = warmup_cosine(base=base_lr, final=min_lr, epochs=config.optim.epochs,
                                      steps_per_epoch=self.steps_per_epoch, warmup_epochs=config.optim.warmup_epochs)
        self.resolved = config.to_dict()
        self.data_identity = {"train": self.train_store.identity}
        self.checkpoint_path = self.out_dir / CHECKPOINT
        self.run_objects = dict(modules={MODEL_KEY: self.model}, optimizer=self.optimizer, scaler=self.scaler,
                                generators={"mask": self.mask_generator})
        self.curve_title = f"{config.method} pretraining ({self.data_dir.name})"
        self.environment = describe(device, world_size=context.world_size)
        # set by resume()
        self.start_epoch, self.next_step, self.unfinished = 1, 0, None
        self.log: MetricsLog | None = None

    # --- resume ---------------------------------------------------------------------------------------

    def resume(self, *, restart_on_change: bool = False, config_file: Path | None = None) -> None:
        """Load the checkpoint (or start afresh) and cut the history back to it. A checkpoint written with
        another configuration is an error, or (restart_on_change, as the workflow asks after a hyperparameter
        changed) ignored: the run starts over and overwrites it."""
        main, history = self.context.is_main, self.out_dir / HISTORY
        if main and not history.exists() and (self.out_dir / METRICS).exists():
            # a run folder from before the history existed: its metrics.jsonl is its history
            history.write_text((self.out_dir / METRICS).read_text())
        state = load_resumable(self.checkpoint_path, self.resolved, restart_on_change=restart_on_change,
                               map_location=self.device, announce=main, data=self.data_identity)
        if state is not None and int(state["epoch"]) >= self.config.optim.epochs and not history.exists():
            # A finished run whose log is gone: nothing to resume, and its log cannot be recovered.
            if main:
                print(f"{self.checkpoint_path} is finished but its log ({HISTORY}) is missing; training again",
                      file=sys.stderr)
            state = None
        if state is not None:
            self.start_epoch = restore_run_state(state, **self.run_objects, source=self.checkpoint_path)
            self.next_step = int(state.get("step", (self.start_epoch - 1) * self.steps_per_epoch))
            unfinished = state.get("epoch_progress")
            if unfinished is not None and int(unfinished["epoch"]) == self.start_epoch:
                self.unfinished = EpochProgress.from_state(unfinished, self.device)
        elif main:
            # A fresh start (or a start over after a change): an encoder left by an earlier run of this folder
            # must not outlive it, even if this run is stopped before it writes its own.
            (self.out_dir / ENCODER).unlink(missing_ok=True)
            write_run_config(self.out_dir, self.resolved, given=config_file)
        self.log = MetricsLog(history, keep_before_step=self.next_step if state is not None else None, enabled=main)

    # --- checkpoints and the files a reader sees ------------------------------------------------------

    def save(self, *, epoch: int, step: int, unfinished: EpochProgress | None, stop: StopRequest | None) -> None:
        """The checkpoint after `epoch` whole epochs and `step` steps in all (main process only)."""
        started = time.monotonic()
        save_run_state(self.checkpoint_path, **self.run_objects, epoch=epoch, resolved=self.resolved,
                       data=self.data_identity, step=step,
                       epoch_progress=None if unfinished is None else unfinished.state(), environment=self.environment)
        if stop is not None:
            stop.last_save = time.monotonic() - started

    def publish(self, *, curve: bool) -> None:
        """metrics.jsonl from the history, and (when asked) the loss curve."""
        self.log.export(self.out_dir / METRICS)
        if curve:
            plot_loss_curve(self.log.records(), self.out_dir / LOSS_CURVE, title=self.curve_title)

    # --- training -------------------------------------------------------------------------------------

    def _agreed(self, asked: bool) -> bool:
        """Whether any process was asked (every process stops at the same step)."""
        if not self.context.enabled:
            return asked
        flag = torch.tensor([float(asked)], device=self.device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        return bool(flag.item())

    def train(self, *, stop_after_epochs: int | None = None, stop_after_steps: int | None = None,
              stop: StopRequest | None = None) -> dict:
        """Train the remaining epochs; the last record (kind epoch, partial_epoch or stopped)."""
        config, context, device, main = self.config, self.context, self.device, self.context.is_main
        spe, log = self.steps_per_epoch, self.log
        feed = dict(frames=config.model.frames, seed=config.seed, device=device, loader=config.data.loader,
                    workers=config.data.workers, rotation=config.data.rotation, input=config.data.input)
        train_feeder = make_feeder(self.train_store, train=True, **feed)
        monitor_feeders = monitor_bodies = None
        if self.test_store is not None and config.monitor.knn_every and main:
            monitor_feeders = (train_feeder.unaugmented(), make_feeder(self.test_store, train=False, **feed))
            monitor_bodies = present_bodies(self.test_store, frames=config.model.frames,
                                            count=MONITOR_SEQUENCES).to(device)
        network = self.model
        if context.enabled:
            network = DistributedDataParallel(self.model, device_ids=[device.index] if device.type == "cuda" else None)
        local_batch = self.batch_size // context.world_size
        lines = ProgressLines("hacm.pretrain", environment=self.environment, device=device,
                              total_epochs=config.optim.epochs, steps_per_epoch=spe, samples_per_step=self.batch_size,
                              first_step=self.next_step, enabled=main, within_epochs=not self.show_progress)
        if self.start_epoch <= config.optim.epochs:
            log.write({"kind": "environment", "epoch": self.start_epoch, "step": self.next_step - 1,
                       **self.environment})
            lines.start(self.start_epoch, resumed=self.next_step > 0)

        def sequence_slice(local_sequences: int) -> tuple[int, int]:
            # This process's sequences within the global batch, for data-parallel-invariant masks.
            return context.rank * local_sequences, context.world_size * local_sequences

        boundary = time.monotonic()

        def should_stop(step: int, logged: bool) -> bool:
            # Every step in one process; at logged steps in several, which then agree (one all-reduce).
            nonlocal boundary
            if stop is None or (context.enabled and not logged):
                return False
            now = time.monotonic()
            stop.stretch(now - boundary)
            boundary = now
            return self._agreed(stop.reason() is not None)

        def on_step(record: dict) -> None:
            log.write(record)
            lines.step(record["epoch"], record["step"] + 1, record["loss"])

        def stopped(epoch: int, steps_done: int) -> dict:
            reason = (stop.reason() if stop is not None else None) or "another process was asked to stop"
            record = {"kind": "stopped", "epoch": epoch, "step": steps_done - 1, "reason": reason}
            if main:
                log.write(record)
                self.publish(curve=True)
                lines.stopped(epoch, steps_done, reason)
            return record

        record: dict = {}
        epochs_this_run = steps_this_run = 0
        curve_drawn = time.monotonic()
        for epoch in range(self.start_epoch, config.optim.epochs + 1):
            progress = self.unfinished if self.unfinished is not None else EpochProgress(epoch)
            self.unfinished = None
            done_before, started = progress.steps_done, time.perf_counter()
            batches = epoch_batches(len(self.train_store), batch_size=self.batch_size, seed=config.seed, epoch=epoch,
                                    rank=context.rank, world_size=context.world_size)
            remaining = batches[progress.steps_done:]
            cut = stop_after_steps is not None and steps_this_run + len(remaining) > stop_after_steps
            if cut:
                remaining = remaining[: stop_after_steps - steps_this_run]
            with torch.random.fork_rng(devices=[]):  # a loader drawing its seed must not move the global stream
                source = train_feeder.iterate(remaining, epoch)
            whole = train_one_epoch(
                network, source, progress=progress, optimizer=self.optimizer, lr_schedule=self.schedule,
                first_step=(epoch - 1) * spe, device=device, precision=config.optim.precision, scaler=self.scaler,
                clip_grad=config.optim.clip_grad, generator=self.mask_generator, sequence_slice=sequence_slice,
                on_step=on_step if main else lambda record: None, log_every=config.monitor.log_every,
                steps=len(batches), should_stop=should_stop, show_progress=self.show_progress and main)
            trained = progress.steps_done - done_before
            steps_this_run += trained
            seconds = time.perf_counter() - started
            speed = round(trained * local_batch * context.world_size / max(seconds, 1e-9), 2)
            step_done = (epoch - 1) * spe + progress.steps_done
            if not whole:  # asked to stop after a step: saved there
                check_finite(progress.sums, epoch=epoch, step=step_done - 1)  # a step was done: sums exist
                if main:
                    self.save(epoch=epoch - 1, step=step_done, unfinished=progress, stop=stop)
                if context.enabled:
                    torch.distributed.barrier()
                return stopped(epoch, step_done)
            if progress.steps_done < len(batches):  # --stop-after-steps: measured and logged, not saved
                record = {"kind": "partial_epoch", "epoch": epoch, "step": step_done - 1, "steps": trained,
                          **progress.means(), "seconds": round(seconds, 3), "samples_per_s": speed, "knn_top1": None}
                if main:
                    log.write(record)
                    self.publish(curve=False)
                    kept = f"the checkpoint is of epoch {epoch - 1}" if epoch > 1 else "no checkpoint yet"
                    print(f"stopped after {steps_this_run} steps, in epoch {epoch} (not saved: {kept}; run again to "
                          "continue)", file=sys.stderr)
                break
            means = progress.means()
            check_finite(torch.tensor(list(means.values())), epoch=epoch, step=step_done - 1)
            record = {"kind": "epoch", "epoch": epoch, "step": epoch * spe - 1, **means,
                      "seconds": round(seconds, 3), "samples_per_s": speed, "knn_top1": None}
            last = epoch == config.optim.epochs
            epochs_this_run += 1
            leave = ((stop_after_epochs is not None and epochs_this_run >= stop_after_epochs)
                     or (stop_after_steps is not None and steps_this_run >= stop_after_steps))
            if monitor_feeders and (epoch % config.monitor.knn_every == 0 or last):
                record["knn_top1"] = _knn_monitor(self.model, *monitor_feeders, config, device)
                record["masking_agreement"] = diagnose_masking(self.model, monitor_bodies, draws=MONITOR_DRAWS,
                                                               seed=config.seed).agreement_by_group()
            if main:
                log.write(record)
                self.save(epoch=epoch, step=epoch * spe, unfinished=None, stop=stop)
                draw = last or leave or time.monotonic() - curve_drawn >= CURVE_EVERY_S
                self.publish(curve=draw)
                if draw:
                    curve_drawn = time.monotonic()
                if last:
                    write_encoder(self.out_dir / ENCODER, self.model, config, epoch, self.data_identity)
                lines.epoch(record, epoch * spe)
            if context.enabled:
                torch.distributed.barrier()
            if last or leave:
                break
            if should_stop(epoch * spe - 1, True):  # asked during the epoch's end: its checkpoint is the stop's
                return stopped(epoch + 1, epoch * spe)
        if self.start_epoch > config.optim.epochs and main:  # finished before: rebuild what a reader needs
            if not (self.out_dir / ENCODER).exists():
                write_encoder(self.out_dir / ENCODER, self.model, config, config.optim.epochs, self.data_identity)
            self.publish(curve=not (self.out_dir / LOSS_CURVE).exists())
        return record


def run_pretraining(config: PretrainConfig, *, data_dir: Path, out_dir: Path, context: Distributed,
                    stop_after_epochs: int | None = None, stop_after_steps: int | None = None,
                    show_progress: bool = True, restart_on_change: bool = False,
                    config_file: Path | None = None, stop: StopRequest | None = None) -> dict:
    """Train (or resume) in `out_dir`; returns the last record. `stop_after_epochs` / `_steps` end this run
    early (rehearsals, speed checks; a part of an epoch is logged, not saved); `stop` ends it at the next
    step boundary with a checkpoint there (record kind "stopped")."""
    run = PretrainingRun(config, data_dir=data_dir, out_dir=out_dir, context=context, show_progress=show_progress)
    run.resume(restart_on_change=restart_on_change, config_file=config_file)
    return run.train(stop_after_epochs=stop_after_epochs, stop_after_steps=stop_after_steps, stop=stop)
