"""Data-layer benchmarks: conversion speed per core, store iteration memory, loader throughput.

    python benchmarks/speed/bench_data.py [--files 600] [--store-gb 0.5 1.5 3.0] [--out benchmarks/out]

Prints one JSON line per measurement and writes them to OUT/data.jsonl. Raw files are copies of the
real NTU samples in ../shared/data when present (they are typical in size), else synthetic ones.
The reference parser below follows the per-line approach of the field's pre-processing scripts
(the SGN / CTR-GCN `get_raw_bodies_data` stage, used by MAMP and HA-CM): read lines, split each,
convert each joint's coordinates with a small numpy call. It is timed on the same files.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from hacm.data.convert import ConversionReport, convert_ntu  # noqa: E402
from hacm.data.loader import DeviceBatches, SkeletonDataset, epoch_batches, make_loader  # noqa: E402
from hacm.data.ntu import read_skeleton  # noqa: E402
from hacm.data.storage import SampleMeta, SkeletonStore, StoreWriter  # noqa: E402

SHARED_SAMPLES = REPO.parent / "shared" / "data" / "ntu_raw_samples"


def emit(record: dict, sink) -> None:
    line = json.dumps(record)
    print(line, flush=True)
    sink.write(line + "\n")


def reference_style_read(path: Path) -> dict:
    """Per-line parsing as in the field's scripts: one split and two small array conversions per joint line."""
    with open(path) as handle:
        lines = handle.readlines()
    num_frames = int(lines[0].strip("\r\n"))
    line, valid = 1, -1
    bodies: dict[str, dict] = {}
    for _ in range(num_frames):
        num_bodies = int(lines[line].strip("\r\n"))
        line += 1
        if num_bodies == 0:
            continue
        valid += 1
        joints = np.zeros((num_bodies, 25, 3), dtype=np.float32)
        colours = np.zeros((num_bodies, 25, 2), dtype=np.float32)
        for b in range(num_bodies):
            body_id = lines[line].strip("\r\n").split()[0]
            line += 1
            num_joints = int(lines[line].strip("\r\n"))
            line += 1
            for j in range(num_joints):
                values = lines[line].strip("\r\n").split()
                joints[b, j] = np.array(values[:3], dtype=np.float32)
                colours[b, j] = np.array(values[5:7], dtype=np.float32)
                line += 1
            body = bodies.setdefault(body_id, {"joints": [], "interval": []})
            body["joints"].append(joints[b])
            body["interval"].append(valid)
    for body in bodies.values():
        body["joints"] = np.vstack(body["joints"])
    return bodies


def make_raw_folder(folder: Path, count: int) -> list[Path]:
    """`count` raw files with distinct NTU names, copied from the real samples (or synthetic ones)."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = sorted(SHARED_SAMPLES.glob("*.skeleton"))
    if not sources:
        from hacm.data.synthetic import write_synthetic_raw

        synthetic = folder.parent / "synthetic_source"
        write_synthetic_raw(synthetic, seed=0, progress=False)
        sources = sorted((synthetic / "ntu").rglob("*.skeleton"))
    paths = []
    for i in range(count):
        source = sources[i % len(sources)]
        action = int(source.name[17:20])
        # Mixed-radix setup / camera / performer / replication: every name distinct.
        setup, camera, performer, replication = 1 + i % 17, 1 + i // 17 % 3, 1 + i // 51 % 40, 1 + i // 2040
        target = folder / f"S{setup:03d}C{camera:03d}P{performer:03d}R{replication:03d}A{action:03d}.skeleton"
        shutil.copy(source, target)
        paths.append(target)
    return paths


def bench_parsing(paths: list[Path], sink) -> None:
    for label, function in (("reference_per_line", reference_style_read), ("hacm_read_skeleton", read_skeleton)):
        function(paths[0])
        start = time.perf_counter()
        for path in paths:
            function(path)
        seconds = time.perf_counter() - start
        emit({"bench": "parse_one_core", "parser": label, "files": len(paths),
              "files_per_s": round(len(paths) / seconds, 1)}, sink)


def bench_conversion(raw: Path, workers_list: list[int], sink) -> None:
    for workers in workers_list:
        out = raw.parent / f"stores_w{workers}"
        report = ConversionReport(dataset="ntu60", raw=str(raw), out=str(out), workers=workers)
        cpu_before = os.times()
        start = time.perf_counter()
        convert_ntu(raw, out, dataset="ntu60", workers=workers, report=report, missing_list=None,
                    use_missing_list=False)
        seconds = time.perf_counter() - start
        cpu_after = os.times()
        cpu = sum(getattr(cpu_after, f) - getattr(cpu_before, f)
                  for f in ("user", "system", "children_user", "children_system"))
        emit({"bench": "convert_folder", "workers": workers, "files": report.files_converted,
              "seconds": round(seconds, 2), "files_per_s": round(report.files_converted / seconds, 1),
              "files_per_s_per_worker": round(report.files_converted / seconds / workers, 1),
              "cpu_utilisation_of_workers": round(cpu / seconds / max(workers, 1), 2)}, sink)
        shutil.rmtree(out)


def resident_mb(field: str = "VmRSS") -> float:
    """Resident memory in MB: VmRSS (all), RssFile (mapped file pages) or RssAnon (heap)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def write_big_store(directory: Path, gigabytes: float) -> SkeletonStore:
    """A store of NTU-like samples (40-300 frames, mean ~80) of about the given size."""
    rng = np.random.default_rng(0)
    block = rng.normal(size=(300, 2, 25, 3)).astype(np.float32)
    writer = StoreWriter(directory, info={"num_classes": 120})
    target_rows = int(gigabytes * 2**30 / block[0].nbytes)
    rows, i = 0, 0
    while rows < target_rows:
        length = int(np.clip(rng.gamma(4.0, 20.0), 40, 300))
        writer.add(block[:length], SampleMeta(name=str(i), label=i % 120))
        rows += length
        i += 1
    writer.close()
    return SkeletonStore(directory)


def bench_store_memory(root: Path, sizes: list[float], sink, *, batch_size: int = 256) -> None:
    for gigabytes in sizes:
        store = write_big_store(root / f"store_{gigabytes}", gigabytes)
        dataset = SkeletonDataset(store, frames=72, train=True, seed=0)
        loader = make_loader(dataset, epoch_batches(len(store), batch_size=batch_size, seed=0, epoch=0))
        iterator = iter(loader)
        next(iterator)
        baseline = peak = resident_mb()
        file_baseline = file_peak = resident_mb("RssFile")
        start = time.perf_counter()
        samples = 0
        for batch in iterator:
            samples += len(batch.labels)
            peak = max(peak, resident_mb())
            file_peak = max(file_peak, resident_mb("RssFile"))
        seconds = time.perf_counter() - start
        emit({"bench": "iterate_store", "store_gb": round(store.frames.nbytes / 2**30, 2),
              "samples": len(store), "batch_size": batch_size, "rss_baseline_mb": round(baseline),
              "rss_growth_mb": round(peak - baseline, 1),
              "rss_file_growth_mb": round(file_peak - file_baseline, 1),
              "samples_per_s_one_process": round(samples / seconds)}, sink)
        shutil.rmtree(root / f"store_{gigabytes}")


def device_batches_rate(store: SkeletonStore, device: str, *, batch_size: int = 256, epochs: int = 3
                        ) -> tuple[int, float]:
    """(samples, seconds) of `epochs` epochs of DeviceBatches on `device` (T 72, augmentation), after a
    warm-up batch; epoch_batches drops an incomplete last batch."""
    def synchronise() -> None:
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize()

    batches = DeviceBatches(store, device=device, frames=72, train=True)
    batches.batch(list(range(batch_size)))  # warm-up
    synchronise()
    start, samples = time.perf_counter(), 0
    for epoch in range(epochs):
        batches.set_epoch(epoch)
        for batch in batches.iterate(epoch_batches(len(store), batch_size=batch_size, seed=0, epoch=epoch)):
            samples += len(batch.labels)
    synchronise()
    return samples, time.perf_counter() - start


def bench_loader(root: Path, sink) -> None:
    store = write_big_store(root / "loader_store", 0.4)
    for workers in (0, 2):
        dataset = SkeletonDataset(store, frames=72, train=True, seed=0)
        loader = make_loader(dataset, epoch_batches(len(store), batch_size=256, seed=0, epoch=0),
                             num_workers=workers)
        start, samples = time.perf_counter(), 0
        for batch in loader:
            samples += len(batch.labels)
        emit({"bench": "cpu_loader", "workers": workers,
              "samples_per_s": round(samples / (time.perf_counter() - start))}, sink)
    if torch.cuda.is_available():
        samples, seconds = device_batches_rate(store, "cuda")
        emit({"bench": "gpu_device_batches", "device": torch.cuda.get_device_name(),
              "samples_per_s": round(samples / seconds)}, sink)
    shutil.rmtree(root / "loader_store")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=600)
    parser.add_argument("--store-gb", type=float, nargs="+", default=[0.5, 1.5, 3.0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out")
    parser.add_argument("--skip", nargs="*", default=[], choices=["parse", "convert", "memory", "loader"])
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.out) as scratch, open(args.out / "data.jsonl", "w") as sink:
        root = Path(scratch)
        emit({"bench": "machine", "cpus": os.cpu_count(), "torch": torch.__version__,
              "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None}, sink)
        if "parse" not in args.skip or "convert" not in args.skip:
            paths = make_raw_folder(root / "raw" / "nturgb+d_skeletons", args.files)
        if "parse" not in args.skip:
            bench_parsing(paths, sink)
        if "convert" not in args.skip:
            bench_conversion(root / "raw", args.workers, sink)
        if "memory" not in args.skip:
            bench_store_memory(root, args.store_gb, sink)
        if "loader" not in args.skip:
            bench_loader(root, sink)


if __name__ == "__main__":
    main()
