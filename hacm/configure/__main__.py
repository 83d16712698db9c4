"""`python -m hacm.configure {pretrain,evaluate} --json TEXT --out FILE`: write one run's config.

A run.yaml also records, under `learning_rates`, the global batch, the absolute lr (and min lr) and the
lr per 256 samples that its values resolve to, so that a reader can set them beside a paper's recipe.

The workflow resolves every run's configuration from the validated workflow config and hands it here
as JSON (a rule parameter, so that changing one hyperparameter reruns exactly the runs it reaches).
The document is checked the way the stage that reads it will check it, so a bad value fails at this
small local job with one line naming the key, before any pretraining starts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from hacm.cli import EXIT_USAGE, json_object_argument
from hacm.evaluate.config import EvalConfig, protocol_rates
from hacm.config import ConfigError
from hacm.files import write_text_atomically
from hacm.pretrain.config import PretrainConfig
from hacm.train.stage_config import RECORD_KEY, learning_rates

KINDS = ("pretrain", "evaluate")


def check(kind: str, document: dict) -> dict:
    """Raise ConfigError (or ValueError) when `document` is not a valid config of that kind; else return
    the learning rates it resolves to (global batch, absolute and per-256 lr)."""
    return resolve(kind, document)[1]


def resolve(kind: str, document: dict) -> tuple[dict, dict]:
    """The resolved document (every default filled in, as the stage will run it) and
    its learning rates; ConfigError (or ValueError) when it is not a valid config of that kind."""
    if kind == "pretrain":
        config = PretrainConfig.from_dict(document)
        return config.to_dict(), config.learning_rates()
    config = EvalConfig.from_dict(document)
    # A run's document holds the one protocol section it reads (linear, or finetune for the others).
    section = config.linear if "linear" in document else config.finetune
    # Before the cap at the training samples, which hacm.evaluate applies and records in metrics.json.
    return config.to_dict(), learning_rates(*protocol_rates(section))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hacm.configure", description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--json", required=True, help="the run's configuration as a JSON object")
    parser.add_argument("--out", type=Path, required=True, help="file to write (YAML)")
    args = parser.parse_args(argv)
    document = json_object_argument(parser, args.json)
    try:
        resolved, rates = resolve(args.kind, document)
    except (ValueError, ConfigError, TypeError) as error:
        print(f"hacm.configure: the {args.kind} config for {args.out}: {error}", file=sys.stderr)
        return EXIT_USAGE
    # The run's one config file: resolved, with the learning rates it resolves to (recomputed by the stage).
    write_text_atomically(args.out, yaml.safe_dump({**resolved, RECORD_KEY: rates}, sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
