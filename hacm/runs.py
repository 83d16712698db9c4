"""How the workflow names a run's folder parts (docs/method.md §3): benchmark folder, method, protocol.

A run lives in results/<bench>/<method>/<protocol>/seed<k>/ (the rules in workflow/rules/ spell the
files; hacm.tables.layout fills their patterns). Torch-free: the workflow imports it while it parses.

- <bench>: the benchmark key with '_' for '-' (ntu60-xsub -> ntu60_xsub), the folders' spelling since
  the first release of this pipeline (results of earlier runs keep their place).
- <method>: a method of hacm.methods (hacm, mae, mamp), random (the randomly initialised encoder), or
  hacm-<ablation>.
- <protocol>: pretrain, linear, finetune, semi<percent>-draw<k>, transfer-from-<source bench>.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePath

from hacm.methods import ABLATED_METHOD, METHODS, RANDOM
from hacm.protocols import PLAIN_PROTOCOLS


_SEMI = re.compile(r"semi([0-9.]+)-draw([0-9]+)")
_TRANSFER = "transfer-from-"
# Wildcard patterns of the workflow (a folder part each).
BENCH_PATTERN = "[a-z0-9]+_[a-z]+"
METHOD_PATTERN = "[a-z0-9_.-]+"
PROTOCOL_PATTERN = f"linear|finetune|semi[0-9.]+-draw[0-9]+|{_TRANSFER}{BENCH_PATTERN}"


class RunNameError(ValueError):
    """A folder name that names no run part; the message is one line."""


def bench_folder(benchmark: str) -> str:
    """ntu60-xsub -> ntu60_xsub."""
    return benchmark.replace("-", "_")


def benchmark_of_folder(folder: str) -> str:
    """ntu60_xsub -> ntu60-xsub."""
    return folder.replace("_", "-")


def encoder_run_method(path: str | None) -> str | None:
    """The <method> folder of an encoder file at its workflow place (results/<bench>/<method>/pretrain/
    seed<k>/encoder.pt); None for a file elsewhere (an encoder given by hand)."""
    parts = PurePath(path).parts if path else ()
    if len(parts) >= 4 and parts[-3] == "pretrain" and re.fullmatch(r"seed[0-9]+", parts[-2]):
        return parts[-4]
    return None


def ablation_method(name: str) -> str:
    """The method folder of an ablation variant: hacm-<name>."""
    return f"{ABLATED_METHOD}-{name}"


def base_method(method: str) -> str:
    """hacm-euclidean -> hacm: the preset a method starts from."""
    return method.split("-", 1)[0]


def ablation_name(method: str) -> str | None:
    """hacm-euclidean -> euclidean; None for a method that is not an ablation."""
    if method in METHODS or method == RANDOM:
        return None
    return method.split("-", 1)[1] if "-" in method else None


@dataclass(frozen=True)
class Protocol:
    """An evaluation protocol as its folder names it. `fraction` and `draw`: semi-supervised only;
    `source`: transfer only, the benchmark whose encoder is fine-tuned on the run's benchmark."""

    kind: str
    fraction: float | None = None
    draw: int | None = None
    source: str | None = None

    @property
    def folder(self) -> str:
        if self.kind == "semi":
            return f"semi{100 * self.fraction:g}-draw{self.draw}"
        if self.kind == "transfer":
            return f"{_TRANSFER}{bench_folder(self.source)}"
        return self.kind

    @classmethod
    def parse(cls, folder: str) -> Protocol:
        semi = _SEMI.fullmatch(folder)
        if semi:
            return cls("semi", fraction=float(semi[1]) / 100, draw=int(semi[2]))
        if folder.startswith(_TRANSFER) and re.fullmatch(BENCH_PATTERN, folder[len(_TRANSFER):]):
            return cls("transfer", source=benchmark_of_folder(folder[len(_TRANSFER):]))
        if folder in PLAIN_PROTOCOLS:
            return cls(folder)
        raise RunNameError(f"{folder!r} names no evaluation protocol ({', '.join(PLAIN_PROTOCOLS)}, "
                           "semi<percent>-draw<k>, "
                           f"{_TRANSFER}<benchmark folder>)")
