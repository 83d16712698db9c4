"""Ctrl-C a multi-worker prepare many times at random moments: does every run stop promptly and cleanly?

    python benchmarks/drills/prepare_interrupts.py --raw RAW --tries 60 [--workers 2] [--out /tmp/interrupts]

RAW is a synthetic raw folder (`python -m hacm.synthesize --out RAW`). Each try starts
`python -m hacm.prepare synthetic --raw RAW --out OUT --workers N` in its own process group, sends SIGINT
to the whole group after a random 0.8-7 s, and waits up to 60 s. Prints one line per hang or traceback
and a JSON summary: tries, hangs, exit codes (130: interrupted; 0: it had finished first).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", type=Path, required=True)
    parser.add_argument("--tries", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("/tmp/prepare_interrupts"))
    args = parser.parse_args()
    rng = random.Random(1)
    hangs, tracebacks, codes = 0, 0, {}
    for attempt in range(args.tries):
        command = [sys.executable, "-m", "hacm.prepare", "synthetic", "--raw", str(args.raw), "--out",
                   str(args.out / f"out{attempt % 3}"), "--workers", str(args.workers)]
        process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   start_new_session=True,
                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        time.sleep(rng.uniform(0.8, 7.0))
        try:
            os.killpg(process.pid, signal.SIGINT)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            hangs += 1
            print(f"try {attempt}: still running 60 s after the SIGINT", flush=True)
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            continue
        codes[process.returncode] = codes.get(process.returncode, 0) + 1
        if "Traceback" in (stderr := process.stderr.read().decode()):
            tracebacks += 1
            print(f"try {attempt}: traceback\n{stderr[-800:]}", flush=True)
    print(json.dumps({"tries": args.tries, "workers": args.workers, "hangs": hangs, "tracebacks": tracebacks,
                      "exit_codes": {str(code): count for code, count in sorted(codes.items())}}))


if __name__ == "__main__":
    main()
