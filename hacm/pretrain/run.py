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
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel

from hacm.config import write_run_config
from hacm.data.loader import Feeder, epoch_batches, make_feeder
from hacm.data.storage import SkeletonStore
from hacm.model.heads import pooled_features
from hacm.model.mask_diagnostic import diagnose_masking, present_bodies
from hacm.model.pretrainer import HACMPretrainer
from hacm.train.checkpoint import load_resumable, restore_run_state, save_run_state
from hacm.pretrain.config import PretrainConfig
from hacm.train.distributed import Distributed
from hacm.train.encoder_file import ENCODER, MODEL_KEY, save_encoder
from hacm.train.engine import AUTOCAST_DTYPES, EpochProgress, check_finite, train_one_epoch
from hacm.train.environment import describe
from hacm.train.errors import RunError
from hacm.train.monitor import MetricsLog, knn_accuracy, plot_loss_curve
from hacm.train.progress import ProgressLines
from hacm.train.schedules import warmup_cosine
from hacm.train.stopping import StopRequest

CHECKPOINT = "checkpoint.pt"
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


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on every tensor of more than one dimension, none on biases and norms: the release's
    timm `optim_factory.add_weight_decay` (main_pretrain.py), which decays the learned position
    embeddings and the mask token too."""
    decay, no_decay = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (no_decay if parameter.ndim <= 1 else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


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


@dataclass
class EpochLoop:
    """What the epochs of one PretrainingRun.train call share, and what they count."""

    feeder: Feeder
    network: torch.nn.Module  # the model, or its DistributedDataParallel wrapper
    lines: ProgressLines
    monitor_feeders: tuple[Feeder, Feeder] | None  # kNN monitor (train, test); None: no monitors
    monitor_bodies: torch.Tensor | None  # the masking monitor's body sequences
    stop: StopRequest | None
    stop_after_epochs: int | None
    stop_after_steps: int | None
    boundary: float  # time.monotonic() of the last stop check: the stop request's estimate of a step's time
    curve_drawn: float  # time.monotonic() of the last loss-curve drawing
    epochs: int = 0  # whole epochs trained in this call
    steps: int = 0  # steps trained in this call


@dataclass(frozen=True)
class EpochSteps:
    """What one call trained of one epoch."""

    progress: EpochProgress  # the epoch's steps done and loss sums, this call's and any before
    in_epoch: int  # the epoch's steps
    trained: int  # steps trained in this call
    whole: bool  # False: asked to stop after a step
    seconds: float
    samples_per_s: float


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

    def write_encoder(self, *, epoch: int) -> None:
        """OUT/encoder.pt: the encoder after `epoch` epochs, with what it was pretrained with and on."""
        save_encoder(self.out_dir / ENCODER, self.model.encoder, method=self.config.method, epoch=epoch,
                     pretrain_config=self.config.to_dict(), data=self.data_identity)

    # --- training: set-up, epochs, finish ---------------------------------------------------------------

    def train(self, *, stop_after_epochs: int | None = None, stop_after_steps: int | None = None,
              stop: StopRequest | None = None) -> dict:
        """Train the remaining epochs; the last record (kind epoch, partial_epoch or stopped)."""
        loop = self.start_epochs(stop=stop, stop_after_epochs=stop_after_epochs, stop_after_steps=stop_after_steps)
        record: dict = {}
        for epoch in range(self.start_epoch, self.config.optim.epochs + 1):
            record, go_on = self.run_epoch(epoch, loop)
            if not go_on:
                return record
        if self.start_epoch > self.config.optim.epochs and self.context.is_main:
            self.rebuild_finished_outputs()
        return record

    def start_epochs(self, *, stop: StopRequest | None, stop_after_epochs: int | None,
                     stop_after_steps: int | None) -> EpochLoop:
        """What this call's epochs share: the feeders, the monitors' data, the (data-parallel) network and the
        progress lines; the environment record and the start line when epochs remain."""
        config, context, device, main = self.config, self.context, self.device, self.context.is_main
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
        lines = ProgressLines("hacm.pretrain", environment=self.environment, device=device,
                              total_epochs=config.optim.epochs, steps_per_epoch=self.steps_per_epoch,
                              samples_per_step=self.batch_size, first_step=self.next_step, enabled=main,
                              within_epochs=not self.show_progress)
        if self.start_epoch <= config.optim.epochs:
            self.log.write({"kind": "environment", "epoch": self.start_epoch, "step": self.next_step - 1,
                            **self.environment})
            lines.start(self.start_epoch, resumed=self.next_step > 0)
        now = time.monotonic()
        return EpochLoop(feeder=train_feeder, network=network, lines=lines, monitor_feeders=monitor_feeders,
                         monitor_bodies=monitor_bodies, stop=stop, stop_after_epochs=stop_after_epochs,
                         stop_after_steps=stop_after_steps, boundary=now, curve_drawn=now)

    def run_epoch(self, epoch: int, loop: EpochLoop) -> tuple[dict, bool]:
        """Train (the rest of) `epoch`; its record, and whether this call goes on to the next epoch."""
        steps = self.train_steps(epoch, loop)
        step_done = (epoch - 1) * self.steps_per_epoch + steps.progress.steps_done
        if not steps.whole:  # asked to stop after a step: saved there
            return self.stop_within_epoch(epoch, step_done, steps, loop), False
        if steps.progress.steps_done < steps.in_epoch:  # --stop-after-steps: measured and logged, not saved
            return self.end_partial_epoch(epoch, step_done, steps, loop), False
        return self.end_epoch(epoch, step_done, steps, loop)

    def train_steps(self, epoch: int, loop: EpochLoop) -> EpochSteps:
        """The steps of `epoch` this call trains: from where an unfinished epoch stopped, up to the end, the
        --stop-after-steps budget or a stop request."""
        config, context, main = self.config, self.context, self.context.is_main
        progress = self.unfinished if self.unfinished is not None else EpochProgress(epoch)
        self.unfinished = None
        done_before, started = progress.steps_done, time.perf_counter()
        batches = epoch_batches(len(self.train_store), batch_size=self.batch_size, seed=config.seed, epoch=epoch,
                                rank=context.rank, world_size=context.world_size)
        remaining = batches[progress.steps_done:]
        if loop.stop_after_steps is not None and loop.steps + len(remaining) > loop.stop_after_steps:
            remaining = remaining[: loop.stop_after_steps - loop.steps]
        with torch.random.fork_rng(devices=[]):  # a loader drawing its seed must not move the global stream
            source = loop.feeder.iterate(remaining, epoch)
        whole = train_one_epoch(
            loop.network, source, progress=progress, optimizer=self.optimizer, lr_schedule=self.schedule,
            first_step=(epoch - 1) * self.steps_per_epoch, device=self.device, precision=config.optim.precision,
            scaler=self.scaler, clip_grad=config.optim.clip_grad, generator=self.mask_generator,
            sequence_slice=self.sequence_slice, on_step=partial(self.log_step, loop) if main else lambda record: None,
            log_every=config.monitor.log_every, steps=len(batches), should_stop=partial(self.should_stop, loop),
            show_progress=self.show_progress and main)
        trained = progress.steps_done - done_before
        loop.steps += trained
        seconds = time.perf_counter() - started
        local_batch = self.batch_size // context.world_size
        speed = round(trained * local_batch * context.world_size / max(seconds, 1e-9), 2)
        return EpochSteps(progress=progress, in_epoch=len(batches), trained=trained, whole=whole, seconds=seconds,
                          samples_per_s=speed)

    def stop_within_epoch(self, epoch: int, step_done: int, steps: EpochSteps, loop: EpochLoop) -> dict:
        """Asked to stop after step `step_done` - 1: the checkpoint there, with the unfinished epoch's sums."""
        check_finite(steps.progress.sums, epoch=epoch, step=step_done - 1)  # a step was done: sums exist
        if self.context.is_main:
            self.save(epoch=epoch - 1, step=step_done, unfinished=steps.progress, stop=loop.stop)
        if self.context.enabled:
            torch.distributed.barrier()
        return self.stopped(epoch, step_done, loop)

    def end_partial_epoch(self, epoch: int, step_done: int, steps: EpochSteps, loop: EpochLoop) -> dict:
        """--stop-after-steps ended this call within `epoch`: its steps are logged, not saved."""
        record = {"kind": "partial_epoch", "epoch": epoch, "step": step_done - 1, "steps": steps.trained,
                  **steps.progress.means(), "seconds": round(steps.seconds, 3), "samples_per_s": steps.samples_per_s,
                  "knn_top1": None}
        if self.context.is_main:
            self.log.write(record)
            self.publish(curve=False)
            kept = f"the checkpoint is of epoch {epoch - 1}" if epoch > 1 else "no checkpoint yet"
            print(f"stopped after {loop.steps} steps, in epoch {epoch} (not saved: {kept}; run again to "
                  "continue)", file=sys.stderr)
        return record

    def end_epoch(self, epoch: int, step_done: int, steps: EpochSteps, loop: EpochLoop) -> tuple[dict, bool]:
        """A whole epoch: its record (with the monitors when due), the checkpoint, metrics.jsonl, the curve when
        due, the encoder after the last epoch; whether this call goes on to the next epoch."""
        config, context, spe = self.config, self.context, self.steps_per_epoch
        means = steps.progress.means()
        check_finite(torch.tensor(list(means.values())), epoch=epoch, step=step_done - 1)
        record = {"kind": "epoch", "epoch": epoch, "step": epoch * spe - 1, **means,
                  "seconds": round(steps.seconds, 3), "samples_per_s": steps.samples_per_s, "knn_top1": None}
        last = epoch == config.optim.epochs
        loop.epochs += 1
        leave = ((loop.stop_after_epochs is not None and loop.epochs >= loop.stop_after_epochs)
                 or (loop.stop_after_steps is not None and loop.steps >= loop.stop_after_steps))
        if loop.monitor_feeders and (epoch % config.monitor.knn_every == 0 or last):
            record["knn_top1"] = _knn_monitor(self.model, *loop.monitor_feeders, config, self.device)
            record["masking_agreement"] = diagnose_masking(self.model, loop.monitor_bodies, draws=MONITOR_DRAWS,
                                                           seed=config.seed).agreement_by_group()
        if context.is_main:
            self.log.write(record)
            self.save(epoch=epoch, step=epoch * spe, unfinished=None, stop=loop.stop)
            draw = last or leave or time.monotonic() - loop.curve_drawn >= CURVE_EVERY_S
            self.publish(curve=draw)
            if draw:
                loop.curve_drawn = time.monotonic()
            if last:
                self.write_encoder(epoch=epoch)
            loop.lines.epoch(record, epoch * spe)
        if context.enabled:
            torch.distributed.barrier()
        if last or leave:
            return record, False
        if self.should_stop(loop, epoch * spe - 1, True):  # asked during the epoch's end: its checkpoint is the stop's
            return self.stopped(epoch + 1, epoch * spe, loop), False
        return record, True

    def rebuild_finished_outputs(self) -> None:
        """A run that had finished before this call (main process): rebuild what a reader needs."""
        if not (self.out_dir / ENCODER).exists():
            self.write_encoder(epoch=self.config.optim.epochs)
        self.publish(curve=not (self.out_dir / LOSS_CURVE).exists())

    # --- what the epoch loop calls between steps -------------------------------------------------------

    def sequence_slice(self, local_sequences: int) -> tuple[int, int]:
        """This process's sequences within the global batch, for data-parallel-invariant masks."""
        return self.context.rank * local_sequences, self.context.world_size * local_sequences

    def log_step(self, loop: EpochLoop, record: dict) -> None:
        self.log.write(record)
        loop.lines.step(record["epoch"], record["step"] + 1, record["loss"])

    def should_stop(self, loop: EpochLoop, step: int, logged: bool) -> bool:
        """Every step in one process; at logged steps in several, which then agree (one all-reduce)."""
        stop = loop.stop
        if stop is None or (self.context.enabled and not logged):
            return False
        now = time.monotonic()
        stop.stretch(now - loop.boundary)
        loop.boundary = now
        return self._agreed(stop.reason() is not None)

    def _agreed(self, asked: bool) -> bool:
        """Whether any process was asked (every process stops at the same step)."""
        if not self.context.enabled:
            return asked
        flag = torch.tensor([float(asked)], device=self.device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        return bool(flag.item())

    def stopped(self, epoch: int, steps_done: int, loop: EpochLoop) -> dict:
        """The record of a stop in `epoch` after `steps_done` steps in all (the checkpoint is saved)."""
        stop = loop.stop
        reason = (stop.reason() if stop is not None else None) or "another process was asked to stop"
        record = {"kind": "stopped", "epoch": epoch, "step": steps_done - 1, "reason": reason}
        if self.context.is_main:
            self.log.write(record)
            self.publish(curve=True)
            loop.lines.stopped(epoch, steps_done, reason)
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
