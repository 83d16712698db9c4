"""`python -m hacm.provenance [--results benchmarks/results]`: write the results index (hacm.provenance)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hacm.provenance import INDEX, RESULTS, ProvenanceError, render_index


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hacm.provenance", description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS, help="the results folder (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        text = render_index(args.results)
    except (ProvenanceError, json.JSONDecodeError) as error:
        print(f"hacm.provenance: error: {error}", file=sys.stderr)
        return 1
    (args.results / INDEX).write_text(text)
    print(f"wrote {args.results / INDEX}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
