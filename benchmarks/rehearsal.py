"""Full-size rehearsal of the real-data path (issue 13): fabricated NTU RGB+D 60 archives with the official
name, layout and sample count, through `hacm.fetch` and `hacm.prepare`, then the loader on the full store.

    python benchmarks/rehearsal.py --out /scratch/rehearsal [--fraction 1.0 0.5] [--workers 2]

The recordings come from the synthetic generator (hacm.data.synthetic), one per official NTU-60 sample
name (../shared/data/ntu_statistics/ntu60/skes_available_name.txt and the official missing list: the
302 listed files hold frames without bodies), resampled to a realistic length (30-300 frames, gamma
distributed, mean ~84 as in NTU), zipped under nturgb+d_skeletons/ as nturgbd_skeletons_s001_to_s017.zip.
`--fraction 0.5` fabricates every second name, to show that conversion is linear in files and flat in
memory. On the first (largest) fraction, `hacm.pretrain` then trains the paper-size model (hacm's
defaults: D 256, depth 8, T 72) on the full x-sub store for `--pretrain-steps` steps at batch 16 in bf16
(`--stop-after-steps`). Per stage: wall time, files/s, peak resident memory of the whole process tree
(sampled every 0.1 s), disk used. Writes OUT/rehearsal.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import shutil
import subprocess
import sys
import threading
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO / ".." / "shared" / "data" / "ntu_statistics"
ARCHIVE = "nturgbd_skeletons_s001_to_s017.zip"
SKELETON_DIR = "nturgb+d_skeletons"
SYNTHETIC_CLASSES = 15  # the generator's classes; an official action a is drawn as class (a - 1) % 15


def official_names() -> tuple[list[str], set[str]]:
    available = (SHARED / "ntu60" / "skes_available_name.txt").read_text().split()
    missing_text = (REPO / "hacm" / "fetch" / "lists" / "NTU_RGBD_samples_with_missing_skeletons.txt").read_text()
    missing = {line.strip() for line in missing_text.splitlines() if line.strip().startswith("S")}
    return sorted(set(available) | missing), missing


def recording(name: str, missing: bool) -> bytes:
    """One .skeleton file: a synthetic performance with the name's setup, camera, performer and
    replication, resampled to a drawn length; frames without bodies for a listed missing sample."""
    from hacm.data.synthetic import format_ntu_skeleton, ntu_performance_rng, synthesize_ntu_bodies

    action = int(name[-3:])
    synthetic = f"{name[:-3]}{(action - 1) % SYNTHETIC_CLASSES + 1:03d}"
    frames = synthesize_ntu_bodies(synthetic, ntu_performance_rng(0, synthetic))
    rng = np.random.default_rng(zlib.crc32(name.encode()))  # the same length in every run
    length = int(np.clip(rng.gamma(4.0, 21.0), 30, 300))
    frames = [frames[i * len(frames) // length] for i in range(length)]
    if missing:
        frames = [[] for _ in frames]
    return format_ntu_skeleton(frames).encode("ascii")


def _recording(item: tuple[str, bool]) -> tuple[str, bytes]:
    return item[0], recording(*item)


def fabricate(archives: Path, names: list[str], missing: set[str], workers: int) -> dict:
    archives.mkdir(parents=True, exist_ok=True)
    started, raw_bytes = time.perf_counter(), 0
    with (zipfile.ZipFile(archives / ARCHIVE, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
          multiprocessing.Pool(workers) as pool):
        for index, (name, data) in enumerate(pool.imap(_recording, [(n, n in missing) for n in names], chunksize=64)):
            archive.writestr(f"{SKELETON_DIR}/{name}.skeleton", data)
            raw_bytes += len(data)
            if index % 5000 == 0:
                print(f"fabricate: {index}/{len(names)}", flush=True)
    return {"files": len(names), "missing_listed": len(missing & set(names)), "seconds": time.perf_counter() - started,
            "raw_gb": raw_bytes / 1e9, "archive_gb": (archives / ARCHIVE).stat().st_size / 1e9}


def tree_rss(process: psutil.Process) -> int:
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            total += member.memory_info().rss
        except psutil.Error:
            pass
    return total


def measured(command: list[str]) -> dict:
    """Run a command; its wall time and the peak resident memory of its process tree."""
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    process, peak, done = psutil.Process(child.pid), 0, threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss(process))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = child.communicate()
    done.set()
    sampler.join()
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{output[-3000:]}")
    return {"seconds": time.perf_counter() - started, "peak_rss_mb": peak / 2**20, "log_tail": output[-400:]}


def disk_gb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e9


def loader_rate(store_dir: Path, batches: int = 60) -> float | None:
    from hacm.data.loader import SkeletonDataset, epoch_batches, make_loader
    from hacm.data.storage import SkeletonStore

    store = SkeletonStore(store_dir)
    dataset = SkeletonDataset(store, frames=72, train=True, seed=0)
    order = epoch_batches(len(store), batch_size=256, seed=0, epoch=1)[:batches]
    if len(order) < 2:  # a warm-up batch and one to time: a tiny --fraction has too few samples
        return None
    iterator = iter(make_loader(dataset, order))
    next(iterator)
    started, samples = time.perf_counter(), 0
    for batch in iterator:
        samples += len(batch.labels)
    return samples / (time.perf_counter() - started)


def short_pretraining(root: Path, steps: int) -> dict:
    config = root / "pretrain.yaml"
    config.write_text(yaml.safe_dump({"data": {"batch_size": 16}, "optim": {"precision": "bf16"},
                                      "monitor": {"knn_every": 0, "log_every": 10}}))
    out = root / "pretrain"
    run = measured([sys.executable, "-m", "hacm.pretrain", "--config", str(config), "--data",
                    str(root / "data" / "ntu60-xsub"), "--out", str(out), "--stop-after-steps", str(steps),
                    "--no-progress"])
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    partial = next(record for record in records if record["kind"] == "partial_epoch")
    return {**run, "steps": partial["steps"], "batch_size": 16, "precision": "bf16",
            "samples_per_s": partial["samples_per_s"], "loss": partial["loss"]}


def rehearse(root: Path, fraction: float, workers: int) -> dict:
    names, missing = official_names()
    step = round(1 / fraction)
    names = names[::step]
    shutil.rmtree(root, ignore_errors=True)
    archives, raw, data = root / "archives", root / "raw", root / "data"
    made = fabricate(archives, names, missing, workers)
    fetch = measured([sys.executable, "-m", "hacm.fetch", "ntu60", "--archives", str(archives), "--raw", str(raw),
                      "--workers", str(workers)])
    prepare = measured([sys.executable, "-m", "hacm.prepare", "ntu60", "--raw", str(raw), "--out", str(data),
                        "--workers", str(workers)])
    report = json.loads((data / "report.json").read_text())
    return {"fraction": fraction, "fabricate": made, "fetch": {**fetch, "raw_gb": disk_gb(raw)},
            "prepare": {**prepare, "files_per_s": len(names) / prepare["seconds"],
                        "files_per_s_per_worker": len(names) / prepare["seconds"] / workers, "stores_gb": disk_gb(data),
                        "problems": len(report.get("problems", []))},
            "loader_samples_per_s": loader_rate(data / "ntu60-xsub" / "train")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="scratch folder (tens of GB)")
    parser.add_argument("--fraction", type=float, nargs="+", default=[1.0, 0.5])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pretrain-steps", type=int, default=200, help="0: no pretraining stage")
    args = parser.parse_args()
    if not (SHARED / "ntu60" / "skes_available_name.txt").is_file():
        raise SystemExit(f"the official NTU-60 name list is not in {SHARED} (the shared data folder)")
    sys.path.insert(0, str(REPO))
    from benchmarks.embedded_figures import cpu_model

    results = {"date": dt.date.today().isoformat(), "cpu": cpu_model(), "cores": psutil.cpu_count(), "workers": args.workers,
               "runs": []}
    for index, fraction in enumerate(args.fraction):
        root = args.out / f"fraction_{fraction:g}"
        results["runs"].append(rehearse(root, fraction, args.workers))
        if index == 0 and args.pretrain_steps:
            results["runs"][-1]["pretrain"] = short_pretraining(root, args.pretrain_steps)
    (args.out / "rehearsal.json").write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
