"""The evaluation protocols (docs/method.md §3) as resumable runs.

linear    frozen encoder in eval mode, BatchNorm (no affine) + Linear on pooled features, SGD, cosine.
          With augmentation off, features are extracted once and the classifier trains on the cache.
finetune  encoder + MLP head, AdamW with layer-wise lr decay, drop path, label smoothing, warm-up + cosine.
semi      fine-tune on a per-class share of the training split (one draw; the seed is recorded).
transfer  fine-tune an encoder pretrained on another dataset on this dataset's classes.

Each protocol trains at its own global batch (linear.batch_size / finetune.batch_size) with lr stated at
lr_batch samples; metrics.json records the last epoch's accuracy (top1) and the best over the scored
epochs (best_top1, as the release and MAMP report).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from hacm.config import write_run_config
from hacm.data.loader import Feeder, epoch_batches, make_feeder
from hacm.data.storage import SkeletonStore
from hacm.evaluate.config import EvalConfig, FinetuneConfig, LinearConfig, protocol_rates
from hacm.evaluate.metrics import (
    best_test_epoch,
    confusion_matrix,
    per_class_accuracy,
    plot_confusion,
    topk_accuracy,
    write_json,
    write_predictions,
)
from hacm.evaluate.schema import validate_metrics
from hacm.evaluate.subsets import per_class_subset, subset_digest, subset_seed
from hacm.model.heads import FinetuneHead, LinearHead, pooled, pooled_features
from hacm.model.pretrainer import SkeletonEncoder
from hacm.protocols import PROTOCOLS
from hacm.release.kinds import PUBLISHED_SUFFIX
from hacm.train.checkpoint import (
    atomic_save,
    git_commit,
    load_resumable,
    load_state,
    module_digest,
    restore_run_state,
    save_run_state,
    source_digest,
)
from hacm.train.stage_config import learning_rates
from hacm.train.engine import AUTOCAST_DTYPES, train_classifier_epoch
from hacm.train.environment import describe
from hacm.train.monitor import MetricsLog
from hacm.train.progress import ProgressLines
from hacm.train.encoder_file import LoadedEncoder, load_encoder, random_encoder
from hacm.train.errors import RunError
from hacm.train.schedules import warmup_cosine

PROG = "hacm.evaluate"
CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.json"
LOG = "metrics.jsonl"
PREDICTIONS = "predictions.csv"
CONFUSION = "confusion.png"
FEATURE_CACHE = "features.pt"


def build_encoder(path: Path | None, config: EvalConfig, *, drop_path: float = 0.0,
                  kind: str | None = None) -> LoadedEncoder:
    """The pretrained encoder of an encoder file or of the authors' published weights (`kind`: their model,
    where the file does not say), or (path None) a randomly initialised one."""
    if path is None:
        return random_encoder(replace(config.model, drop_path=drop_path), seed=config.seed, method=config.method)
    return load_encoder(path, drop_path=drop_path, kind=kind)


def layer_id(name: str, depth: int) -> int:
    """Depth of a parameter for layer-wise lr decay: embeddings 0, block i -> i + 1, the rest depth + 1."""
    if name.startswith(("patch_embed", "joint_embed", "time_embed")):
        return 0
    if name.startswith("transformer.blocks."):
        return int(name.split(".")[2]) + 1
    return depth + 1


def finetune_parameter_groups(encoder: SkeletonEncoder, head: torch.nn.Module, *, weight_decay: float,
                              layer_decay: float) -> list[dict]:
    depth = encoder.config.depth
    groups: dict[tuple[int, bool], dict] = {}
    named = [(name, p) for name, p in encoder.named_parameters()] + [(f"head.{n}", p) for n, p in head.named_parameters()]
    for name, parameter in named:
        if not parameter.requires_grad:
            continue
        layer = depth + 1 if name.startswith("head.") else layer_id(name, depth)
        decay = parameter.ndim > 1  # the release's util/lr_decay.py param_groups_lrd: ndim == 1 undecayed
        group = groups.setdefault((layer, decay), {
            "params": [], "weight_decay": weight_decay if decay else 0.0,
            "lr_scale": layer_decay ** (depth + 1 - layer)})
        group["params"].append(parameter)
    return list(groups.values())


@dataclass(frozen=True)
class Optimisation:
    """The batch and learning rates a protocol trains with, as recorded in metrics.json."""

    global_batch: int
    lr_absolute: float
    min_lr_absolute: float
    steps_per_epoch: int

    def record(self) -> dict:
        """As the workflow's run.yaml states them (hacm.train.stage_config.learning_rates), with the steps per epoch."""
        return {**learning_rates(self.global_batch, self.lr_absolute, self.min_lr_absolute),
                "steps_per_epoch": self.steps_per_epoch}


def resolve_optimisation(settings: LinearConfig | FinetuneConfig, *, samples: int) -> Optimisation:
    """The protocol's global batch and its lr / min_lr scaled from `settings.lr_batch` to that batch.

    The batch never exceeds the training samples: the last partial batch is dropped (as the release's
    loaders do), so a semi-supervised subset smaller than the batch still makes one step per epoch."""
    batch, lr, min_lr = protocol_rates(settings, samples=samples)
    return Optimisation(global_batch=batch, lr_absolute=lr, min_lr_absolute=min_lr, steps_per_epoch=samples // batch)


@dataclass
class Run:
    """Everything a protocol needs: configuration, stores, device, output folder."""

    protocol: str
    config: EvalConfig
    data_dir: Path
    out_dir: Path
    encoder_path: Path | None
    device: torch.device
    encoder_kind: str | None = None  # the authors' model a published weights file holds (hacm.release.kinds)
    show_progress: bool = True
    restart_on_change: bool = False  # start over from a checkpoint written with another configuration
    config_file: Path | None = None  # the --config file (not rewritten when it is the folder's run.yaml)

    def __post_init__(self) -> None:
        self.train_store = SkeletonStore(self.data_dir / "train")
        self.test_store = SkeletonStore(self.data_dir / "test")
        self.classes = self.train_store.num_classes
        if self.test_store.num_classes != self.classes:
            raise RunError(f"{self.data_dir}: train and test stores disagree on the number of classes")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        # What this run's checkpoint and feature cache are made from: reused only with the same stores.
        self.data_identity = {"train": self.train_store.identity, "test": self.test_store.identity}
        self.log: MetricsLog | None = None  # opened by _resume: emptied for a fresh start, kept on a resume
        self.lines: ProgressLines | None = None  # opened by _resume
        self.environment = describe(self.device)
        self.last_checkpoint = time.monotonic()

    def feeder(self, store: SkeletonStore, *, train: bool, frames: int) -> Feeder:
        data = self.config.data
        return make_feeder(store, frames=frames, train=train, seed=self.config.seed, device=self.device,
                           loader=data.loader, workers=data.workers, rotation=data.rotation, input=data.input)

    def ordered_batches(self, store: SkeletonStore) -> list[list[int]]:
        return epoch_batches(len(store), batch_size=self.config.data.batch_size, seed=0, epoch=0, shuffle=False,
                             drop_last=False)


def _resume(run: Run, resolved: dict, modules: dict[str, torch.nn.Module], optimizer, scaler, generators, *,
            epochs: int, steps_per_epoch: int, batch_size: int) -> int:
    """Load the run's checkpoint when there is one; the first epoch still to train. Opens the run's log
    (with a record of where this part runs) and its epoch lines."""
    state = load_resumable(run.out_dir / CHECKPOINT, resolved, restart_on_change=run.restart_on_change,
                           map_location=run.device, data=run.data_identity)
    start = 1
    run.log = MetricsLog(run.out_dir / LOG, keep_through_epoch=None if state is None else int(state["epoch"]))
    if state is not None:
        start = restore_run_state(state, modules=modules, optimizer=optimizer, scaler=scaler, generators=generators,
                                  source=run.out_dir / CHECKPOINT)
    run.lines = ProgressLines(PROG, environment=run.environment, device=run.device, total_epochs=epochs,
                              steps_per_epoch=steps_per_epoch, samples_per_step=batch_size,
                              first_step=(start - 1) * steps_per_epoch, within_epochs=False,
                              enabled=not run.show_progress)  # with a bar over the epochs, the bar says it
    if start <= epochs:
        run.log.write({"kind": "environment", "epoch": start, **run.environment})
        run.lines.start(start, resumed=start > 1)
    return start


CHECKPOINT_EVERY_S = 30.0  # short epochs (a linear head on cached features) are not worth a file each


def _save(run: Run, resolved: dict, modules: dict[str, torch.nn.Module], optimizer, scaler, generators, epoch,
          *, last: bool) -> None:
    """Checkpoint at the end and at most every CHECKPOINT_EVERY_S seconds (a resume repeats the rest)."""
    now = time.monotonic()
    if not last and now - run.last_checkpoint < CHECKPOINT_EVERY_S:
        return
    run.last_checkpoint = now
    save_run_state(run.out_dir / CHECKPOINT, modules=modules, optimizer=optimizer, scaler=scaler,
                   generators=generators, epoch=epoch, resolved=resolved, data=run.data_identity)


def _log_epoch(run: Run, epoch: int, *, loss: float, train_top1: float, lr: float, test_top1) -> None:
    """One epoch line in metrics.jsonl and the job's log; the test split is scored every monitor.test_every
    epochs."""
    record = {"kind": "epoch", "epoch": epoch, "loss": loss, "train_top1": train_top1, "lr": lr}
    if run.config.monitor.test_every and epoch % run.config.monitor.test_every == 0:
        record["test_top1"] = test_top1()
    run.log.write(record)
    run.lines.epoch(record, epoch * run.lines.steps_per_epoch)


def run_linear(run: Run, loaded: LoadedEncoder, resolved: dict) -> tuple[torch.Tensor, dict, Optimisation]:
    """Train the linear classifier; test logits and protocol facts."""
    settings, device = run.config.linear, run.device
    encoder = loaded.encoder.to(device).eval()
    for parameter in encoder.parameters():
        parameter.requires_grad_(False)
    frames = loaded.config.frames
    head = LinearHead(loaded.config.dim, run.classes).to(device)
    # Cosine to 0, as the release's linear probe.
    optimisation = resolve_optimisation(settings, samples=len(run.train_store))
    batch_size, steps_per_epoch = optimisation.global_batch, optimisation.steps_per_epoch
    optimizer = torch.optim.SGD(head.parameters(), lr=optimisation.lr_absolute, momentum=settings.momentum,
                                weight_decay=settings.weight_decay)
    schedule = warmup_cosine(base=optimisation.lr_absolute, final=optimisation.min_lr_absolute, epochs=settings.epochs,
                             steps_per_epoch=steps_per_epoch)
    test_features, _ = pooled_features(encoder, run.feeder(run.test_store, train=False, frames=frames).iterate(
        run.ordered_batches(run.test_store)), device=device)
    cached = None
    if not settings.augment:
        cache = run.out_dir / FEATURE_CACHE
        state = load_state(cache) if cache.exists() else None
        # The features are a function of the encoder's weights (a random encoder has no file: its digest
        # is of the weights), the frame count, the training store and the code that computes them: all
        # make the key (any change of the package's sources recomputes them, which takes seconds).
        key = {"encoder": module_digest(encoder), "frames": frames, "train": run.train_store.identity,
               "code": source_digest()}
        if state is None or state.get("key") != key:
            features, labels = pooled_features(encoder, run.feeder(run.train_store, train=False, frames=frames).iterate(
                run.ordered_batches(run.train_store)), device=device)
            atomic_save({"features": features, "labels": labels, "key": key}, cache)
            state = {"features": features, "labels": labels}
        cached = (state["features"].to(device), state["labels"].to(device))
    train_feeder = run.feeder(run.train_store, train=True, frames=frames) if settings.augment else None

    def forward(item) -> tuple[torch.Tensor, torch.Tensor]:
        if cached is not None:  # item: the batch's sample indices
            index = torch.as_tensor(item, device=device)
            return head(cached[0][index]), cached[1][index]
        with torch.no_grad():
            features = pooled(encoder(item.x.to(device))).float()
        return head(features), item.labels.to(device)

    start = _resume(run, resolved, {"head": head}, optimizer, None, {}, epochs=settings.epochs,
                    steps_per_epoch=steps_per_epoch, batch_size=batch_size)
    for epoch in tqdm(range(start, settings.epochs + 1), desc="linear", unit="epoch", disable=not run.show_progress,
                      initial=start - 1, total=settings.epochs):
        batches = epoch_batches(len(run.train_store), batch_size=batch_size, seed=run.config.seed, epoch=epoch,
                                drop_last=True)
        head.train()
        source = train_feeder.iterate(batches, epoch) if train_feeder is not None else batches
        loss, train_top1 = train_classifier_epoch(source, forward, optimizer=optimizer, lr_schedule=schedule,
                                                  first_step=(epoch - 1) * steps_per_epoch, epoch=epoch, device=device,
                                                  lr_key="linear.lr")
        _log_epoch(run, epoch, loss=loss, train_top1=train_top1,
                   lr=float(schedule[epoch * steps_per_epoch - 1]),
                   test_top1=lambda: _linear_test_top1(head, test_features, run, device))
        _save(run, resolved, {"head": head}, optimizer, None, {}, epoch, last=epoch == settings.epochs)
    head.eval()
    with torch.no_grad():
        logits = head(test_features.to(device)).float().cpu()
    mode = "augmented" if settings.augment else "cached-features"
    return logits, {"mode": mode, "num_train": len(run.train_store)}, optimisation


def _linear_test_top1(head, test_features, run: Run, device) -> float:
    head.eval()
    with torch.no_grad():
        logits = head(test_features.to(device)).cpu()
    head.train()
    return topk_accuracy(logits, torch.from_numpy(run.test_store.labels), 1)


def run_finetune(run: Run, loaded: LoadedEncoder, resolved: dict,
                 *, subset: np.ndarray | None) -> tuple[torch.Tensor, dict, Optimisation]:
    """Fine-tune encoder + MLP head on the training split (or a subset of it); test logits and facts."""
    settings, device = run.config.finetune, run.device
    encoder = loaded.encoder.to(device)
    head = FinetuneHead(dim=loaded.config.dim, joints=loaded.config.joints_per_patch, classes=run.classes,
                        hidden=settings.hidden, dropout=settings.dropout).to(device)
    frames = loaded.config.frames
    members = np.arange(len(run.train_store)) if subset is None else subset
    optimisation = resolve_optimisation(settings, samples=len(members))
    batch_size, steps_per_epoch = optimisation.global_batch, optimisation.steps_per_epoch
    if len(members) < 2:
        raise RunError(f"fine-tuning needs at least two training samples (BatchNorm in the head); it has {len(members)}")
    if batch_size < 2:
        raise RunError(f"fine-tuning batches of {batch_size} sample: BatchNorm in the head needs at least 2 per batch "
                       "(set finetune.batch_size to 2 or more)")
    schedule = warmup_cosine(base=optimisation.lr_absolute, final=optimisation.min_lr_absolute, epochs=settings.epochs,
                             steps_per_epoch=steps_per_epoch, warmup_epochs=settings.warmup_epochs)
    optimizer = torch.optim.AdamW(finetune_parameter_groups(encoder, head, weight_decay=settings.weight_decay,
                                                            layer_decay=settings.layer_decay),
                                  lr=optimisation.lr_absolute, betas=settings.betas)
    autocast_dtype = AUTOCAST_DTYPES[settings.precision]
    scaler = torch.amp.GradScaler(device.type) if settings.precision == "fp16" else None
    train_feeder = run.feeder(run.train_store, train=True, frames=frames)
    test_feeder = run.feeder(run.test_store, train=False, frames=frames)
    torch.manual_seed(run.config.seed)
    start = _resume(run, resolved, {"encoder": encoder, "head": head}, optimizer, scaler, {}, epochs=settings.epochs,
                    steps_per_epoch=steps_per_epoch, batch_size=batch_size)

    def test_logits() -> torch.Tensor:
        encoder.eval()
        head.eval()
        outputs = []
        with torch.no_grad():
            for batch in test_feeder.iterate(run.ordered_batches(run.test_store)):
                with torch.autocast(device_type=device.type, dtype=autocast_dtype or torch.bfloat16,
                                    enabled=autocast_dtype is not None):
                    outputs.append(head(encoder(batch.x.to(device))).float().cpu())
        return torch.cat(outputs)

    for epoch in tqdm(range(start, settings.epochs + 1), desc=run.protocol, unit="epoch",
                      disable=not run.show_progress, initial=start - 1, total=settings.epochs):
        encoder.train()
        head.train()
        positions = epoch_batches(len(members), batch_size=batch_size, seed=run.config.seed, epoch=epoch,
                                  drop_last=True)
        batches = [[int(members[p]) for p in batch] for batch in positions]
        loss, train_top1 = train_classifier_epoch(
            train_feeder.iterate(batches, epoch), lambda batch: (head(encoder(batch.x.to(device))), batch.labels.to(device)),
            optimizer=optimizer, lr_schedule=schedule, first_step=(epoch - 1) * steps_per_epoch, epoch=epoch,
            device=device, autocast_dtype=autocast_dtype, scaler=scaler, clip_grad=settings.clip_grad,
            label_smoothing=settings.label_smoothing, lr_key="finetune.lr")
        _log_epoch(run, epoch, loss=loss, train_top1=train_top1,
                   lr=float(schedule[epoch * steps_per_epoch - 1]),
                   test_top1=lambda: topk_accuracy(test_logits(), torch.from_numpy(run.test_store.labels), 1))
        _save(run, resolved, {"encoder": encoder, "head": head}, optimizer, scaler, {}, epoch,
              last=epoch == settings.epochs)
    return test_logits(), {"mode": "finetune", "num_train": int(len(members))}, optimisation


def evaluate(run: Run) -> dict:
    """Run the protocol (resuming when possible) and write metrics.json, predictions.csv, confusion.png."""
    started = time.perf_counter()
    config = run.config
    run.out_dir.mkdir(parents=True, exist_ok=True)
    loop = PROTOCOLS[run.protocol].loop  # linear probe or fine-tuning (hacm.protocols)
    drop_path = config.finetune.drop_path if loop == "finetune" else 0.0
    # Heads are initialised from the global generator: seed it so a run does not depend on what the
    # process did before (tests run several evaluations in one process).
    torch.manual_seed(config.seed)
    loaded = build_encoder(run.encoder_path, config, drop_path=drop_path, kind=run.encoder_kind)
    # What a checkpoint must match to be resumed; the data is matched by content (run.data_identity),
    # not by its path, so a moved store still resumes and another store never does. A published file's
    # method depends on the kind it is read as, too.
    resolved = {"protocol": run.protocol, "encoder_sha256": loaded.sha256, "config": config.to_dict()}
    if loaded.method.endswith(PUBLISHED_SUFFIX):
        resolved["encoder_method"] = loaded.method
    write_run_config(run.out_dir, config.to_dict(), given=run.config_file)
    semi = None
    subset = None
    if run.protocol == "semi":
        seed = subset_seed(config.seed, config.semi.fraction, config.semi.draw)
        subset = per_class_subset(run.train_store.labels, config.semi.fraction, seed)
        semi = {"fraction": config.semi.fraction, "draw": config.semi.draw, "subset_seed": seed,
                "subset_size": int(len(subset)), "subset_digest": subset_digest(subset),
                "classes_covered": int(len(np.unique(run.train_store.labels[subset])))}
    if loop == "linear":
        logits, facts, optimisation = run_linear(run, loaded, resolved)
        last_epoch = config.linear.epochs
    else:
        logits, facts, optimisation = run_finetune(run, loaded, resolved, subset=subset)
        last_epoch = config.finetune.epochs
    labels = run.test_store.labels.astype(np.int64)
    predictions = logits.argmax(dim=1).numpy()
    top1 = topk_accuracy(logits, torch.from_numpy(labels), 1)
    # From the log rather than memory, so that a resumed run still knows the epochs it did not retrain.
    best_top1, best_epoch = best_test_epoch(run.log.records(), last_epoch=last_epoch, last_top1=top1)
    document = {
        "protocol": run.protocol,
        "top1": top1,
        "top5": topk_accuracy(logits, torch.from_numpy(labels), 5),
        "best_top1": best_top1,
        "best_epoch": best_epoch,
        "last_epoch": last_epoch,
        "optimisation": optimisation.record(),
        "per_class_accuracy": per_class_accuracy(predictions, labels),
        "num_train": facts["num_train"],
        "num_test": int(len(labels)),
        "num_classes": run.classes,
        "seed": config.seed,
        "mode": facts["mode"],
        "encoder": {"path": loaded.path, "sha256": loaded.sha256, "method": loaded.method},
        "dataset": {key: run.train_store.info.get(key) for key in ("dataset", "benchmark")} | {"path": str(run.data_dir)},
        "config": config.to_dict(),
        "git_commit": git_commit(),
        "seconds": round(time.perf_counter() - started, 2),
        "environment": run.environment,
    }
    if semi is not None:
        document["semi"] = semi
    validate_metrics(document)
    write_json(run.out_dir / METRICS, document)
    write_predictions(run.out_dir / PREDICTIONS, run.test_store.names, labels, logits)
    title = (f"{run.protocol} - {document['dataset'].get('benchmark')} - top-1 {100 * document['top1']:.1f} % "
             f"({loaded.method})")
    plot_confusion(run.out_dir / CONFUSION, confusion_matrix(predictions, labels, run.classes), title=title)
    return document
