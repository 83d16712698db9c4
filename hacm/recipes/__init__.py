"""One recipe resolver (torch-free): the configuration document of any run of a workflow config.

A run is (benchmark, method folder, protocol, seed). Its document is the config's shared keys, laid over by
every `overrides` entry that applies to its benchmark and method (in order; an ablation counts as hacm, the
authors' published weights as their kind's method), then by the ablation's own keys. An evaluation's
document holds only the sections its protocol reads, HA-CM's architecture on that benchmark for the random
encoder, the input its encoder was pretrained on (a transfer run's: its source's), and a semi-supervised
run's fraction and draw. The workflow (workflow/rules/common.smk), the tests and the sweeps all resolve
through this module; `python -m hacm.recipes` prints a run's resolved document.

    python -m hacm.recipes --configfile config/paper.yaml pretrain ntu60-xsub hacm [--seed 0]
    python -m hacm.recipes --configfile config/paper.yaml evaluate pku2-xsub hacm transfer-from-ntu120_xsub
"""

from __future__ import annotations

import copy

from hacm.config import ConfigError
from hacm.evaluate.config import EvalConfig
from hacm.methods import RANDOM
from hacm.protocols import PLAIN_PROTOCOLS, PROTOCOLS
from hacm.release.kinds import KIND_METHODS, published_name
from hacm.runs import Protocol, ablation_name, base_method
from hacm.pretrain.config import PretrainConfig


class RecipeError(ValueError):
    """A run the config cannot resolve (an unknown ablation or published encoder); the message is one line."""


def merged(base: dict | None, override: dict | None) -> dict:
    """`override` laid over `base`, nested dicts key by key."""
    result = copy.deepcopy(base or {})
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


class Recipes:
    """The runs' documents of one validated workflow config (its schema's defaults filled in)."""

    def __init__(self, config: dict) -> None:
        self.config = config
        self.ablations = config["ablations"]["variants"]
        self.published = config.get("published_encoders") or {}

    def ablation_keys(self, method: str) -> dict:
        """The pretraining keys of an ablation's run folder (hacm-<name>); {} for any other method."""
        name = ablation_name(method)
        if name is None:
            return {}
        if name not in self.ablations:
            raise RecipeError(f"unknown ablation {name!r} in {method!r}; known: {', '.join(self.ablations)}")
        return self.ablations[name]["pretrain"]

    def published_encoder(self, method: str) -> dict | None:
        """The `published_encoders` entry a run folder published.<name> evaluates, or None for any other folder."""
        name = published_name(method)
        if name is None:
            return None
        if name not in self.published:
            raise RecipeError(f"{method!r}: no published encoder {name!r} in the config's published_encoders "
                              f"(it has: {', '.join(self.published) or 'none'})")
        return self.published[name]

    def recipe_method(self, method: str) -> str:
        """The method whose recipes a run folder follows: its preset (an ablation counts as hacm), and for the
        authors' published weights the method of their kind (mamp weights are evaluated with MAMP's recipe)."""
        published = self.published_encoder(method)
        return KIND_METHODS[published["kind"]] if published is not None else base_method(method)

    def overrides(self, stage: str, benchmark: str, method: str) -> dict:
        """The `stage` keys of every `overrides` entry that applies to (benchmark, method), laid over each
        other in order. An entry without `benchmarks` / `methods` applies to all."""
        result, recipe = {}, self.recipe_method(method)
        for entry in self.config["overrides"]:
            if benchmark in entry.get("benchmarks", [benchmark]) and recipe in entry.get("methods", [recipe]):
                result = merged(result, entry.get(stage))
        return result

    def pretrain_document(self, benchmark: str, method: str, seed: int) -> dict:
        """Shared keys < the benchmark's / method's recipe overrides < the ablation's keys."""
        document = merged(merged(self.config["pretrain"], self.overrides("pretrain", benchmark, method)),
                          self.ablation_keys(method))
        return {**document, "method": base_method(method), "seed": int(seed)}

    def evaluate_document(self, benchmark: str, method: str, protocol: str, seed: int) -> dict:
        parsed = Protocol.parse(protocol)
        read = PROTOCOLS[parsed.kind].sections  # a run's document holds only the sections its protocol reads
        sections = merged(self.config["evaluate"], self.overrides("evaluate", benchmark, method))
        document = {key: value for key, value in sections.items() if key in read}
        document["seed"] = int(seed)
        # The random-encoder rows use HA-CM's pretraining architecture on this benchmark (HA-CM's tokens).
        document["method"] = "hacm" if method == RANDOM else self.recipe_method(method)
        document["model"] = self.pretrain_document(benchmark, "hacm", 0).get("model", {})
        if method != RANDOM and self.published_encoder(method) is None:
            # An encoder reads the input it was pretrained on (coordinates, or velocity as the release's NTU-120
            # x-sub and PKU-MMD II): a transfer run's is its source benchmark's, not its target's.
            pretrained = self.pretrain_document(parsed.source or benchmark, method, 0).get("data") or {}
            document["data"] = {**(document.get("data") or {}), "input": pretrained.get("input", "coordinates")}
        if parsed.kind == "semi":
            document["semi"] = {"fraction": parsed.fraction, "draw": parsed.draw}
        return document

    def check(self, pretraining_runs: list[tuple[str, str]], benchmarks) -> None:
        """Every pretraining's document, and the random encoder's linear / fine-tune documents on every
        benchmark, checked by hacm's own config classes: RecipeError naming the run and the key."""
        for benchmark, method in pretraining_runs:
            try:
                PretrainConfig.from_dict(self.pretrain_document(benchmark, method, 0))
            except (ConfigError, ValueError, TypeError) as error:
                raise RecipeError(f"config: pretrain ({benchmark}, {method}): {error}") from None
        for benchmark in benchmarks:
            for protocol in PLAIN_PROTOCOLS:  # one per training loop
                try:
                    EvalConfig.from_dict(self.evaluate_document(benchmark, RANDOM, protocol, 0))
                except (ConfigError, ValueError, TypeError) as error:
                    raise RecipeError(f"config: evaluate ({benchmark}, {protocol}): {error}") from None
