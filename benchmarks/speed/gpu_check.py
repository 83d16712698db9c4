"""The GPU check, in one go (under ten minutes on one GPU), for the day a GPU machine is lent.

    bash benchmarks/speed/gpu_check.sh                       # on the GPU machine, from the repository root
    python benchmarks/speed/gpu_check.py --device cpu --quick  # its CPU-safe parts, small (the tests run this)

Steps, each with its own time limit; a failed step is recorded and the others still run:
1. tests: `pytest -m gpu` (tests/test_gpu.py: bf16 autocast steps on CUDA, the device-resident loader,
   NCCL with one process; steps that do not wait for the GPU between logged steps, under CUDA's sync debug
   mode; fused AdamW; one device copy of the training split for training and the kNN monitor; the
   mapped loader when the copy would not fit); without CUDA they are skipped, which the summary says.
2. pretrain: `python -m hacm.bench pretrain` of the paper-size model (D 256, depth 8, T 72) in fp32 and
   bf16 at batch 64 and 256, and bf16 with `--compile` (--quick: T 12, batch 4, one step, eager only);
   each run's hours for the release's NTU-60 x-sub pretraining (500 epochs of 40,091 samples) at its speed.
3. loader: DeviceBatches samples/s over a store of NTU-like samples (0.4 GB; --quick: 0.01 GB).
Prints one JSON line (the summary) and writes it to --out/gpu_check.json with the machine (lscpu's CPU
model, the GPU name) and the date.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_step(command: list[str], *, timeout: int) -> tuple[str, str]:
    """(status, output): ok / failed / timed out, with the command's stdout and stderr."""
    try:
        result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as error:
        return "timed out", f"{error.stdout or ''}{error.stderr or ''}"
    return ("ok" if result.returncode == 0 else "failed"), result.stdout + result.stderr


def tests_step(device: str, timeout: int) -> dict:
    status, output = run_step([sys.executable, "-m", "pytest", "-q", "-m", "gpu", "tests/test_gpu.py", "-p",
                               "no:cacheprovider"], timeout=timeout)
    tail = output.strip().splitlines()[-1] if output.strip() else ""
    counts = {word: int(number) for number, word in re.findall(r"(\d+) (passed|failed|skipped|error)", tail)}
    return {"status": status, **{word: counts.get(word, 0) for word in ("passed", "failed", "skipped", "error")},
            "summary": tail}


# The release's config/ntu60_xsub_joint/pretrain_hacm.yaml: 500 epochs; NTU-60 x-sub has 40,091 training samples.
RELEASE_PRETRAIN_SAMPLES = 500 * 40_091


def pretrain_step(device: str, quick: bool, timeout: int) -> dict:
    runs = []
    variants = [("fp32", False), ("bf16", False)] + ([] if quick else [("bf16", True)])
    for precision, compiled in variants:
        for batch in ((4,) if quick else (64, 256)):
            shape = ["--frames", "12", "--steps", "1", "--warmup", "0"] if quick else ["--steps", "5", "--warmup", "2"]
            status, output = run_step([sys.executable, "-m", "hacm.bench", "pretrain", "--device", device,
                                       "--precision", precision, "--batch-size", str(batch), *shape,
                                       *(["--compile"] if compiled else [])], timeout=timeout)
            record = json.loads(output.strip().splitlines()[-1]) if status == "ok" else {"error": output[-500:]}
            if status == "ok":
                record["release_ntu60_pretrain_hours"] = round(RELEASE_PRETRAIN_SAMPLES / record["samples_per_s"] / 3600, 2)
            runs.append({"precision": precision, "batch_size": batch, "status": status, **record})
    return {"status": "ok" if all(run["status"] == "ok" for run in runs) else "failed", "runs": runs}


def loader_step(device: str, quick: bool) -> dict:
    sys.path.insert(0, str(REPO))
    from benchmarks.speed.bench_data import device_batches_rate, write_big_store

    with tempfile.TemporaryDirectory() as folder:
        store = write_big_store(Path(folder) / "store", 0.01 if quick else 0.4)
        batch_size = 32 if quick else 256
        samples, seconds = device_batches_rate(store, device, batch_size=batch_size, epochs=1 if quick else 3)
        return {"status": "ok", "samples": samples, "store_samples": len(store), "batch_size": batch_size,
                "samples_per_s": round(samples / seconds)}


def machine(device: str) -> dict:
    sys.path.insert(0, str(REPO))
    from hacm.provenance import cpu_model

    gpu = None
    if device.startswith("cuda"):
        import torch

        gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "none found"
    return {"cpu": cpu_model(), "gpu": gpu, "date": dt.date.today().isoformat()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a CPU (the tests)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out")
    args = parser.parse_args()
    started = time.perf_counter()
    summary = {"command": "bash benchmarks/speed/gpu_check.sh" if not args.quick else
               f"python benchmarks/speed/gpu_check.py --device {args.device} --quick", "device": args.device,
               **machine(args.device)}
    summary["tests"] = tests_step(args.device, timeout=240)
    summary["pretrain"] = pretrain_step(args.device, args.quick, timeout=120)
    try:
        summary["loader"] = loader_step(args.device, args.quick)
    except Exception as error:  # recorded: the summary must come out whatever one step did
        summary["loader"] = {"status": "failed", "error": f"{type(error).__name__}: {error}"[:500]}
    summary["seconds"] = round(time.perf_counter() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_check.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary), flush=True)
    return 0 if all(summary[step]["status"] == "ok" for step in ("tests", "pretrain", "loader")) else 1


if __name__ == "__main__":
    sys.exit(main())
