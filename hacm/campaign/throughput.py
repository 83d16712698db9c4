"""How fast a device trains: measured pretraining-step speeds, each with its source, as FLOP rates.

A rate is samples/s of one pretraining step at a stated model, precision and global batch. Times it by
that model's FLOPs per sample (`hacm.campaign.flops`) and it is the device's achieved FLOP rate, which
the cost of any other run (another frame count, decoder depth, token set, or an evaluation pass) is
divided by. The table is `throughput.yaml` beside this module (or `--throughput FILE`); a device entry
may instead name the JSON summary that `bash benchmarks/speed/gpu_check.sh` writes (`from: FILE`), which is
also what `--throughput-from FILE` reads. Torch-free, except reading a GPU check (hacm.bench's model).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from hacm.campaign.flops import pretrain_step_flops
from hacm.campaign.jobs import CampaignError
from hacm.config import ConfigError
from hacm.model.config import ModelConfig, preset

REPO = Path(__file__).resolve().parents[2]


def default_table() -> Path:
    return Path(str(resources.files("hacm.campaign") / "throughput.yaml"))


@dataclass(frozen=True)
class Rate:
    precision: str  # fp32 | bf16 | fp16
    batch_size: int
    samples_per_s: float
    model: ModelConfig  # the model the speed was measured at
    source: str
    compile: bool = False

    @property
    def flops_per_s(self) -> float:
        return self.samples_per_s * pretrain_step_flops(self.model)

    def samples_per_s_at(self, model: ModelConfig) -> float:
        """The pretraining speed this rate predicts for another model: scaled by FLOPs per sample."""
        return self.flops_per_s / pretrain_step_flops(model)


@dataclass(frozen=True)
class Device:
    name: str
    description: str
    rates: tuple[Rate, ...]
    kind: str = "GPU"  # GPU | CPU: what its hours are hours of

    def rate(self, precision: str, batch_size: int, compile: bool = False) -> Rate | None:
        """The measured rate closest to a run: its precision (and torch.compile setting when measured both
        ways), then the nearest global batch (a GPU is slower at small batches); None when not measured."""
        matching = [rate for rate in self.rates if rate.precision == precision]
        if any(rate.compile == compile for rate in matching):
            matching = [rate for rate in matching if rate.compile == compile]
        if not matching:
            return None
        return min(matching, key=lambda rate: abs(math.log(rate.batch_size / max(batch_size, 1))))


def _model(entry: dict, where: str) -> ModelConfig:
    fields = dict(entry)
    method = fields.pop("method", "hacm")
    try:
        return preset(method, **fields)
    except (ConfigError, TypeError, ValueError) as error:
        raise CampaignError(f"{where}.model: {error}") from None


def _rate(entry: object, where: str) -> Rate:
    if not isinstance(entry, dict):
        raise CampaignError(f"{where}: expected a mapping with precision, batch_size, samples_per_s, model, source")
    missing = [key for key in ("precision", "batch_size", "samples_per_s", "model", "source") if key not in entry]
    if missing:
        raise CampaignError(f"{where}: missing {', '.join(missing)} (every figure needs its source)")
    if not (isinstance(entry["samples_per_s"], (int, float)) and entry["samples_per_s"] > 0):
        raise CampaignError(f"{where}.samples_per_s: must be a positive number")
    return Rate(precision=str(entry["precision"]), batch_size=int(entry["batch_size"]),
                samples_per_s=float(entry["samples_per_s"]), model=_model(entry["model"], where),
                source=" ".join(str(entry["source"]).split()), compile=bool(entry.get("compile", False)))


def gpu_check_device(path: Path, name: str | None = None) -> Device:
    """The device a `benchmarks/speed/gpu_check.py` summary measured: its pretrain runs that succeeded."""
    try:
        summary = json.loads(Path(path).read_text())
        runs = summary["pretrain"]["runs"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CampaignError(f"{path}: not a GPU check summary (benchmarks/speed/gpu_check.py's JSON): {error}") from None
    from hacm.bench.step import PAPER_MODEL  # the model gpu_check times (imports torch: only when a check is read)

    source = f"{path}: bash benchmarks/speed/gpu_check.sh on {summary.get('gpu') or summary.get('device')}, {summary.get('date')}"
    rates = tuple(
        Rate(precision=run["precision"], batch_size=int(run["batch_size"]), samples_per_s=float(run["samples_per_s"]),
             model=ModelConfig(frames=int(run["frames"]), t_patch=int(run["t_patch"]), **PAPER_MODEL),
             source=f"{source} (python -m hacm.bench pretrain --precision {run['precision']} "
                    f"--batch-size {run['batch_size']}{' --compile' if run.get('compile') else ''})",
             compile=bool(run.get("compile", False)))
        for run in runs if run.get("status") == "ok" and run.get("samples_per_s"))
    if not rates:
        raise CampaignError(f"{path}: the GPU check has no successful pretrain run to take a speed from")
    gpu = summary.get("gpu") or summary.get("device") or "unknown"
    return Device(name=name or gpu, description=f"{gpu}, measured {summary.get('date')}", rates=rates)


def load_table(path: Path) -> tuple[dict[str, Device], str | None]:
    """The devices of a throughput table and its default device (None: name one with --gpu)."""
    try:
        document = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise CampaignError(f"{path}: cannot read the throughput table ({' '.join(str(error).split())})") from None
    if not isinstance(document, dict) or not isinstance(document.get("devices"), dict):
        raise CampaignError(f"{path}: a throughput table is a mapping with `devices:` (see {default_table()})")
    devices = {}
    for name, entry in document["devices"].items():
        where = f"{path}: devices.{name}"
        if isinstance(entry, dict) and "from" in entry:  # a GPU check's summary, relative to the repository
            devices[name] = gpu_check_device(REPO / entry["from"], name)
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("rates"), list) or not entry["rates"]:
            raise CampaignError(f"{where}: expected `description` and a list of `rates` (or `from: <gpu check JSON>`)")
        if entry.get("kind", "GPU") not in ("GPU", "CPU"):
            raise CampaignError(f"{where}.kind: GPU or CPU (got {entry['kind']!r})")
        devices[name] = Device(name=name, description=str(entry.get("description", name)),
                               rates=tuple(_rate(rate, f"{where}.rates[{i}]") for i, rate in enumerate(entry["rates"])),
                               kind=entry.get("kind", "GPU"))
    default = document.get("default")
    if default is not None and default not in devices:
        raise CampaignError(f"{path}: default {default!r} is not one of its devices ({', '.join(devices)})")
    return devices, default


def choose_device(*, table: Path | None, name: str | None, measured: Path | None) -> Device | None:
    """The device to estimate on: a GPU check's summary (--throughput-from), else the table's entry named
    by --gpu or its default; None when neither names one (the work is then reported without hours)."""
    if measured is not None:
        return gpu_check_device(measured, name)
    devices, default = load_table(table or default_table())
    name = name or default
    if name is None:
        return None
    if name not in devices:
        raise CampaignError(f"unknown GPU {name!r}; known: {', '.join(devices) or 'none'} "
                            f"(in {table or default_table()}; or --throughput-from a benchmarks/speed/gpu_check.sh summary)")
    return devices[name]
