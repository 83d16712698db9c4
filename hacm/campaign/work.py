"""What one planned pretraining or evaluation job computes: samples through the model, and FLOPs.

A job's run document is the `--json` of its `pretrain_config` / `evaluate_config` job when that job is
planned too, else the run.yaml its `--config` names (already written by an earlier run). Counts follow
the stages' code:

- pretrain (hacm/pretrain/run.py): epochs x (train // batch) steps x batch samples, forward and
  backward; the kNN monitor (every `monitor.knn_every` epochs and after the last, when the benchmark has a
  test split) encodes the train and test splits, forward only.
- evaluate (hacm/evaluate/protocols.py): linear: the test split once (its features are cached for every
  later score), then with `linear.augment` the augmented train split every epoch (epochs x
  train // batch x batch), else once (the feature cache). finetune, semi, transfer: epochs x
  members // batch x batch encoder steps, forward and backward, on the training split (semi: its per-class
  share; transfer: the target's split, the source's encoder), and the test split every
  `monitor.test_every` epochs and once more at the end.

The encoder of an evaluation is the one its `--encoder` file will hold: that pretraining run's model
(from its document), or for `--encoder none` the random rows' architecture in the evaluation document.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from hacm.benchmarks import BENCHMARKS, DATASETS
from hacm.campaign.flops import encoder_forward_flops, finetune_step_flops, pretrain_step_flops
from hacm.campaign.jobs import PlannedJob
from hacm.campaign.split_sizes import SplitSizes, benchmark_of_data_dir, split_sizes
from hacm.config import ConfigError
from hacm.evaluate.config import EvalConfig, protocol_rates
from hacm.model.config import ModelConfig
from hacm.protocols import PROTOCOLS
from hacm.runs import benchmark_of_folder
from hacm.pretrain.config import PretrainConfig

CONFIG_RULES = ("pretrain_config", "evaluate_config")
ESTIMATED_RULES = ("pretrain", "evaluate")


@dataclass(frozen=True)
class Pass:
    """Samples through the model of one kind: a training step (with backward) or a forward pass."""

    what: str
    samples: int
    flops_per_sample: float
    precision: str
    batch_size: int
    compile: bool = False

    @property
    def flops(self) -> float:
        return self.samples * self.flops_per_sample


@dataclass(frozen=True)
class JobWork:
    passes: tuple[Pass, ...] = ()
    sizes: str | None = None  # where the split sizes came from: stores / official
    missing: str | None = None  # why the work is not known

    @property
    def samples(self) -> int:
        return sum(part.samples for part in self.passes)

    @property
    def flops(self) -> float:
        return sum(part.flops for part in self.passes)


class RunDocuments:
    """The run documents of a plan: planned config jobs' --json, else the run.yaml files on disk."""

    def __init__(self, jobs: list[PlannedJob], workdir: Path) -> None:
        self.workdir = workdir
        self.planned = {}
        for job in jobs:
            if job.rule in CONFIG_RULES and job.argument("--json") is not None:
                self.planned[job.argument("--out")] = json.loads(job.argument("--json"))

    def get(self, run_file: str) -> dict | None:
        if run_file in self.planned:
            return self.planned[run_file]
        try:
            document = yaml.safe_load((self.workdir / run_file).read_text())
        except (OSError, yaml.YAMLError):
            return None
        return document if isinstance(document, dict) else None


def _count_tests(epochs: int, every: int) -> int:
    """Test-split passes of a fine-tuning run: every `every` epochs, and the final logits."""
    return (epochs // every if every else 0) + 1


def _knn_checks(epochs: int, every: int) -> int:
    """kNN monitor passes: every `every` epochs, and after the last epoch when it is not one of those."""
    if not every:
        return 0
    return epochs // every + (1 if epochs % every else 0)


def semi_members(sizes: SplitSizes, fraction: float, benchmark: str | None) -> int:
    """How many training samples a semi-supervised draw keeps (hacm.evaluate.subsets.per_class_subset: round(f x
    n_c), at least one, per class): from the store's labels, else with the classes assumed balanced."""
    if sizes.train_dir is not None and (sizes.train_dir / "labels.npy").is_file():
        counts = np.unique(np.load(sizes.train_dir / "labels.npy"), return_counts=True)[1]
        return int(sum(max(1, int(round(fraction * count))) for count in counts))
    classes = DATASETS[BENCHMARKS[benchmark].dataset].num_classes if benchmark in BENCHMARKS else 1
    return classes * max(1, int(round(fraction * sizes.train / classes)))


def _sizes(job: PlannedJob, workdir: Path) -> tuple[SplitSizes | None, str | None]:
    data = job.argument("--data")
    if data is None:
        return None, None
    benchmark = benchmark_of_data_dir(Path(data)) or benchmark_of_folder(job.wildcards.get("bench", ""))
    return split_sizes(workdir / data, benchmark), benchmark


def pretrain_work(job: PlannedJob, documents: RunDocuments) -> JobWork:
    document = documents.get(job.argument("--config") or "")
    if document is None:
        return JobWork(missing=f"no run document for {job.argument('--config')}")
    config = PretrainConfig.from_dict(document)
    sizes, benchmark = _sizes(job, documents.workdir)
    if sizes is None:
        return JobWork(missing=_no_sizes(job, benchmark))
    model, batch, optim = config.model, config.data.batch_size, config.optim
    steps = sizes.train // batch
    passes = [Pass("pretraining step", optim.epochs * steps * batch, pretrain_step_flops(model), optim.precision,
                   batch, optim.compile)]
    if sizes.test is not None:
        checks = _knn_checks(optim.epochs, config.monitor.knn_every)
        if checks:
            passes.append(Pass("kNN monitor", checks * (sizes.train + sizes.test), encoder_forward_flops(model),
                               optim.precision, batch))
    return JobWork(passes=tuple(passes), sizes=sizes.source)


def _encoder_model(job: PlannedJob, config: EvalConfig, documents: RunDocuments) -> ModelConfig | None:
    encoder = job.argument("--encoder")
    if encoder in (None, "none"):
        return config.model
    document = documents.get(str(Path(encoder).with_name("run.yaml")))
    return None if document is None else PretrainConfig.from_dict(document).model


def evaluate_work(job: PlannedJob, documents: RunDocuments) -> JobWork:
    document = documents.get(job.argument("--config") or "")
    if document is None:
        return JobWork(missing=f"no run document for {job.argument('--config')}")
    config = EvalConfig.from_dict(document)
    model = _encoder_model(job, config, documents)
    if model is None:
        return JobWork(missing=f"no run document for the encoder {job.argument('--encoder')}")
    sizes, benchmark = _sizes(job, documents.workdir)
    if sizes is None:
        return JobWork(missing=_no_sizes(job, benchmark))
    protocol, test = job.argument("--protocol"), sizes.test or 0
    forward, inference_batch = encoder_forward_flops(model), config.data.batch_size
    if PROTOCOLS[protocol].loop == "linear":  # no autocast in the linear probe: float32 forward passes
        settings = config.linear
        batch = protocol_rates(settings, samples=sizes.train)[0]
        passes = [Pass("test split", test, forward, "fp32", inference_batch)]
        if settings.augment:
            passes.append(Pass("augmented train split", settings.epochs * (sizes.train // batch) * batch, forward,
                               "fp32", batch))
        else:
            passes.append(Pass("train split (cached)", sizes.train, forward, "fp32", inference_batch))
        return JobWork(passes=tuple(passes), sizes=sizes.source)
    settings = config.finetune
    members = semi_members(sizes, config.semi.fraction, benchmark) if protocol == "semi" else sizes.train
    batch = protocol_rates(settings, samples=members)[0]
    passes = (Pass("fine-tuning step", settings.epochs * (members // batch) * batch, finetune_step_flops(model),
                   settings.precision, batch),
              Pass("test split", _count_tests(settings.epochs, config.monitor.test_every) * test, forward,
                   settings.precision, inference_batch))
    return JobWork(passes=passes, sizes=sizes.source)


def _no_sizes(job: PlannedJob, benchmark: str | None) -> str:
    data = job.argument("--data")
    if Path(data).parent.name == "synthetic":
        return f"{data} is not written yet (the synthetic dataset's size is its generator's: run it first)"
    return f"{data} has no converted store and {benchmark or 'its benchmark'} no known split size (run prepare first)"


def job_work(job: PlannedJob, documents: RunDocuments) -> JobWork | None:
    """The work of a pretrain / evaluate job; None for the other rules (data, configs, tables: no GPU)."""
    if job.rule not in ESTIMATED_RULES:
        return None
    try:
        return pretrain_work(job, documents) if job.rule == "pretrain" else evaluate_work(job, documents)
    except (ConfigError, ValueError, TypeError) as error:
        return JobWork(missing=f"its run document does not load ({error})")
