"""The evaluation protocols hacm knows (docs/method.md §3): one registry, torch-free.

`python -m hacm.evaluate --protocol`, the sections of the evaluation config each protocol reads, metrics.json's
schema, the run folders (hacm.runs.Protocol), the workflow schema's `protocols:` keys (tests/test_registries.py
keeps them equal) and the tables' titles all read it. A protocol trains with one of two loops
(hacm.evaluate.protocols): the linear probe on frozen features, or fine-tuning of the whole encoder.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EvalProtocol:
    kind: str  # --protocol of hacm.evaluate, metrics.json's `protocol`
    loop: str  # linear | finetune: the training loop and the config section it reads
    title: str  # its table's title; {draws}: the semi-supervised draws per cell
    parameters: tuple[str, ...] = ()  # what its run folder names besides the kind (hacm.runs.Protocol)

    @property
    def sections(self) -> tuple[str, ...]:
        """The sections of the evaluation config it reads: the workflow gives a run only these, so that
        changing, say, the linear epochs reruns the linear runs only."""
        return ("data", self.loop, "monitor")


PROTOCOLS: dict[str, EvalProtocol] = {protocol.kind: protocol for protocol in (
    EvalProtocol("linear", "linear", "Linear evaluation (top-1 %)"),
    EvalProtocol("finetune", "finetune", "Fine-tuning (top-1 %)"),
    # A labelled share of each class's training samples, fine-tuned (semi<percent>-draw<k>).
    EvalProtocol("semi", "finetune", "Semi-supervised fine-tuning (top-1 %, mean ± std over {draws} draws)",
                 ("fraction", "draw")),
    # An encoder pretrained on another benchmark, fine-tuned on the run's (transfer-from-<source>).
    EvalProtocol("transfer", "finetune", "Transfer learning (top-1 %)", ("source",)),
)}

# The protocols a run folder names by kind alone: the per-benchmark tables (linear, fine-tuning), which
# also hold the authors' published weights.
PLAIN_PROTOCOLS = tuple(kind for kind, protocol in PROTOCOLS.items() if not protocol.parameters)
