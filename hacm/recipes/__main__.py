"""`python -m hacm.recipes`: print a run's resolved configuration document (see hacm.recipes), as YAML that
`python -m hacm.pretrain --config` / `python -m hacm.evaluate --config` read as it is:

    python -m hacm.recipes pretrain ntu60-xsub hacm > pretrain.yaml
    python -m hacm.pretrain --config pretrain.yaml --data resources/data/synthetic/ntu60-xsub --out results/mine
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import yaml

from hacm.recipes import Recipes
from hacm.recipes.workflow_config import load_workflow_config


def main(argv: list[str] | None = None) -> int:
    from hacm.cli import OneLineParser

    parser = OneLineParser(prog="hacm.recipes", description="Print a run's resolved configuration document (YAML): "
                           "the --config of python -m hacm.pretrain / hacm.evaluate.")
    parser.add_argument("--configfile", type=Path, default=Path("config/config.yaml"), help="a workflow config")
    parser.add_argument("stage", choices=("pretrain", "evaluate"))
    parser.add_argument("benchmark")
    parser.add_argument("method", help="the run folder's method: hacm, mae, mamp, random, hacm-<ablation>, published.<name>")
    parser.add_argument("protocol", nargs="?", help="evaluate only: linear, finetune, semi<pct>-draw<k>, transfer-from-<bench>")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if (args.stage == "evaluate") != (args.protocol is not None):
        parser.error("evaluate takes a protocol; pretrain does not")
    try:
        recipes = Recipes(load_workflow_config(args.configfile))
        document = (recipes.pretrain_document(args.benchmark, args.method, args.seed) if args.stage == "pretrain"
                    else recipes.evaluate_document(args.benchmark, args.method, args.protocol, args.seed))
    except Exception as error:  # a bad config (Snakemake's schema check), an unknown run: one line
        print(f"hacm.recipes: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 1
    # The command that wrote it, so that a saved document says where it came from.
    print(f"# python -m hacm.recipes {shlex.join(sys.argv[1:] if argv is None else argv)}")
    print(yaml.safe_dump(document, sort_keys=True), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
