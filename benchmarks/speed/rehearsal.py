"""Full-size rehearsal of the real-data path (issue 13): archives with the official names, layouts and
sample counts, fabricated from the synthetic generator, through the workflow's real path (`dataset: real`:
the fetch and prepare rules), then the loader on the full store and a short paper-size pretraining.

    python benchmarks/speed/rehearsal.py --out /scratch/rehearsal [--dataset ntu60 ntu120 pku1 pku2]
                                   [--fraction 1.0 0.5] [--workers 2] [--pretrain-steps 200]
    python benchmarks/speed/rehearsal.py --out /scratch/rehearsal --table /scratch/rehearsal/rehearsal.json

NTU: one `.skeleton` file per official sample name (../shared/data/ntu_statistics/<ntu60|ntu120>/
skes_available_name.txt and the official missing list, whose samples hold frames without bodies), a
synthetic performance resampled to a realistic length (30-300 frames, gamma distributed, mean ~84 as in
NTU), zipped under nturgb+d_skeletons/ as nturgbd_skeletons_s001_to_s017.zip and (NTU-120's further
57,600) nturgbd_skeletons_s018_to_s032.zip.
PKU-MMD: the counts the dataset's page gives: phase I 1,076 videos holding 21,545 actions in 5,312,580
frames (about 20 actions and 4,940 frames per video; struct002.github.io/PKUMMD), phase II 1,009 videos
(41 classes, 13 subjects). No figure for phase II's actions or frames was found: it gets the
generator's ~6 actions per video at phase I's frames per action (~250). Each video joins synthetic
sessions of one view (hacm.data.synthetic.write_pku_phase) and is stretched in time to its length, the
labels with it; Skeleton.7z / Label_PKUMMD.7z (phase II: *_v2.7z) hold PKU_Skeleton_Renew/ and
Train_Label_PKU_final/ (LZMA2), beside the split files. Video ids follow the dataset's patterns (0001-L,
A01N01-L); a video's x-sub side is drawn from its id (1 in 8 test for phase I, 1 in 4 for phase II).
Frames are repeated, not new, so the archives compress better than real ones.

`--fraction 0.5` keeps every second name (or video), to show that conversion is linear in files and
flat in memory. After the first fraction of the first dataset, `hacm.pretrain` trains the paper-size
model (hacm's defaults: D 256, depth 8, T 72) on its first benchmark's store for `--pretrain-steps`
steps at batch 16 in bf16 (`--stop-after-steps`). Per stage: wall time (the snakemake call; files/s
from hacm.prepare's own conversion time), peak resident memory of the stage's hacm process and its
workers (sampled every 0.1 s; snakemake itself not counted), disk used. A dataset's raw files and
stores are removed after it is measured; the fabricated archives are kept (one folder per fraction)
and reused by a later run. Writes OUT/rehearsal_2026-12-03.json.
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

from hacm.data.convert import read_name_list
from hacm.data.synthetic import NTU60_NUM_CLASSES, NTU_SKELETON_DIR
from hacm.fetch.manifest import MANIFESTS, NTU60_SKELETONS, NTU120_EXTRA_SKELETONS

REPO = Path(__file__).resolve().parents[2]
STATISTICS = REPO / ".." / "shared" / "data" / "ntu_statistics"
NTU_ARCHIVES = {NTU60_SKELETONS.name: range(1, 18), NTU120_EXTRA_SKELETONS.name: range(18, 33)}  # their setups


# ------------------------------------------------------------------------------------------------
# NTU RGB+D


def official_names(dataset: str) -> tuple[list[str], set[str]]:
    available = (STATISTICS / dataset / "skes_available_name.txt").read_text().split()
    missing = read_name_list(MANIFESTS[dataset].auxiliary[0].shipped)  # the official list hacm ships
    return sorted(set(available) | missing), missing


def recording(name: str, missing: bool) -> bytes:
    """One .skeleton file: a synthetic performance with the name's setup, camera, performer and
    replication, resampled to a drawn length; frames without bodies for a listed missing sample."""
    from hacm.data.synthetic import format_ntu_skeleton, ntu_performance_rng, synthesize_ntu_bodies

    action = int(name[-3:])
    synthetic = f"{name[:-3]}{(action - 1) % NTU60_NUM_CLASSES + 1:03d}"  # an official action as a generator class
    frames = synthesize_ntu_bodies(synthetic, ntu_performance_rng(0, synthetic))
    rng = np.random.default_rng(zlib.crc32(name.encode()))  # the same length in every run
    length = int(np.clip(rng.gamma(4.0, 21.0), 30, 300))
    frames = [frames[i * len(frames) // length] for i in range(length)]
    if missing:
        frames = [[] for _ in frames]
    return format_ntu_skeleton(frames).encode("ascii")


def _recording(item: tuple[str, bool]) -> tuple[str, bytes]:
    return item[0], recording(*item)


def fabricate_ntu(archives: Path, dataset: str, step: int, workers: int) -> dict:
    """The NTU zips this dataset needs (a zip already there from an earlier dataset is kept)."""
    names, missing = official_names(dataset)
    names = names[::step]
    made = {"files": len(names), "missing_listed": len(missing & set(names)), "seconds": 0.0, "raw_gb": 0.0,
            "archive_gb": 0.0, "reused": []}
    for archive_name, setups in list(NTU_ARCHIVES.items())[: 1 if dataset == "ntu60" else 2]:
        path = archives / archive_name
        part = [name for name in names if int(name[1:4]) in setups]
        if not path.is_file():
            started, raw_bytes = time.perf_counter(), 0
            with (zipfile.ZipFile(path.with_suffix(".part"), "w", compression=zipfile.ZIP_DEFLATED,
                                  compresslevel=1) as archive,
                  multiprocessing.Pool(workers) as pool):
                items = [(name, name in missing) for name in part]
                for index, (name, data) in enumerate(pool.imap(_recording, items, chunksize=64)):
                    archive.writestr(f"{NTU_SKELETON_DIR}/{name}.skeleton", data)
                    raw_bytes += len(data)
                    if index % 10000 == 0:
                        print(f"fabricate {archive_name}: {index}/{len(part)}", flush=True)
            path.with_suffix(".part").rename(path)
            made["seconds"] += time.perf_counter() - started
            made["raw_gb"] += raw_bytes / 1e9
        else:
            made["reused"].append(archive_name)
        made["archive_gb"] += path.stat().st_size / 1e9
    return made


# ------------------------------------------------------------------------------------------------
# PKU-MMD

PKU_VIDEOS = {"pku1": 1076, "pku2": 1009}
PKU_TEMPLATES_PER_VIDEO = {"pku1": 3, "pku2": 1}  # ~6.3 actions per synthetic session
PKU_FRAMES_PER_ACTION = 5_312_580 / 21_545  # phase I: frames / actions, gaps included
PKU_TEST_EVERY = {"pku1": 8, "pku2": 4}
PKU_ARCHIVES = {"pku1": ("Skeleton.7z", "Label_PKUMMD.7z"), "pku2": ("Skeleton_v2.7z", "Label_PKUMMD_v2.7z")}


def pku_video_ids(dataset: str) -> list[str]:
    if dataset == "pku1":
        ids = [f"{number:04d}" for number in range(1, 400)]
    else:
        ids = [f"A{subject:02d}N{session:02d}" for subject in range(1, 14) for session in range(1, 40)]
    return [f"{video}-{view}" for video in ids for view in "LMR"][: PKU_VIDEOS[dataset]]


def pku_templates(root: Path, phase: int) -> dict[str, list[tuple[list[bytes], list[list[int]]]]]:
    """Per view, the generator's sessions of one phase: (frame lines, label rows)."""
    from hacm.data.synthetic import write_pku_phase

    write_pku_phase(root, phase=phase, seed=0)
    templates: dict[str, list] = {"L": [], "M": [], "R": []}
    for skeleton in sorted((root / "skeleton").glob("*.txt")):
        lines = skeleton.read_bytes().splitlines()
        labels = [[int(v) for v in row.split(",")] for row in (root / "label" / skeleton.name).read_text().split()]
        templates[skeleton.stem[-1]].append((lines, labels))
    return templates


def pku_video(templates, video: str, dataset: str) -> tuple[bytes, bytes]:
    """A video's skeleton and label text: sessions of its view joined, stretched to the video's length."""
    rng = np.random.default_rng(zlib.crc32(video.encode()))
    sessions = templates[video[-1]]
    lines, labels = [], []
    for choice in rng.choice(len(sessions), size=PKU_TEMPLATES_PER_VIDEO[dataset], replace=False):
        session_lines, session_labels = sessions[choice]
        labels += [[label, start + len(lines), end + len(lines), confidence]
                   for label, start, end, confidence in session_labels]
        lines += session_lines
    length = int(len(labels) * PKU_FRAMES_PER_ACTION * rng.uniform(0.85, 1.15))
    picked = np.arange(length) * len(lines) // length
    skeleton = b"\n".join(lines[i] for i in picked) + b"\n"
    scaled = [(label, start * length // len(lines), min((end + 1) * length // len(lines), length) - 1, confidence)
              for label, start, end, confidence in labels]
    return skeleton, "".join(f"{label},{start},{end},{confidence}\n" for label, start, end, confidence in scaled).encode()


def fabricate_pku(archives: Path, dataset: str, step: int, root: Path) -> dict:
    """The phase's two .7z archives and split files (kept from an earlier run when all are there)."""
    import py7zr

    from hacm.benchmarks import BENCHMARKS
    from hacm.data.synthetic import PKU_TRAIN_VIEWS, pku_split_text

    started = time.perf_counter()
    videos = pku_video_ids(dataset)[::step]
    skeleton_name, label_name = PKU_ARCHIVES[dataset]
    splits = {protocol: archives / BENCHMARKS[f"{dataset}-{protocol}"].split_files[0] for protocol in ("xsub", "xview")}
    summary = archives / f"{dataset}_fabricated.json"
    if not all(path.is_file() for path in [archives / skeleton_name, archives / label_name, *splits.values(), summary]):
        templates = pku_templates(root / "templates", phase=int(dataset[-1]))
        filters = [{"id": py7zr.FILTER_LZMA2, "preset": 0}]
        raw_bytes, frames, actions = 0, 0, 0
        with (py7zr.SevenZipFile(archives / skeleton_name, "w", filters=filters) as skeletons,
              py7zr.SevenZipFile(archives / label_name, "w", filters=filters) as labels):
            for index, video in enumerate(videos):
                skeleton, label = pku_video(templates, video, dataset)
                skeletons.writestr(skeleton, f"PKU_Skeleton_Renew/{video}.txt")
                labels.writestr(label, f"Train_Label_PKU_final/{video}.txt")
                raw_bytes += len(skeleton)
                frames, actions = frames + skeleton.count(b"\n"), actions + label.count(b"\n")
                if index % 200 == 0:
                    print(f"fabricate {skeleton_name}: {index}/{len(videos)}", flush=True)
        ids = sorted({video[:-2] for video in videos})
        test_ids = set(ids[:: PKU_TEST_EVERY[dataset]])
        sides = {"xsub": [video[:-2] not in test_ids for video in videos],
                 "xview": [video[-1] in PKU_TRAIN_VIEWS for video in videos]}
        for protocol, is_train in sides.items():
            train = [video for video, keep in zip(videos, is_train) if keep]
            test = [video for video, keep in zip(videos, is_train) if not keep]
            splits[protocol].write_text(pku_split_text(train, test))
        summary.write_text(json.dumps({"files": len(videos), "frames": frames, "actions": actions,
                                       "seconds": time.perf_counter() - started, "raw_gb": raw_bytes / 1e9}))
    archive_gb = sum((archives / name).stat().st_size for name in PKU_ARCHIVES[dataset]) / 1e9
    return {**json.loads(summary.read_text()), "archive_gb": archive_gb}


# ------------------------------------------------------------------------------------------------
# Measuring a workflow stage


def stage_rss(root: psutil.Process) -> int:
    """Resident memory of the hacm processes under `root` (the rule's job) and of their workers."""
    total, members = 0, [root, *root.children(recursive=True)]
    counted: set[int] = set()
    for member in members:
        try:
            if member.pid in counted or not any(arg.startswith("hacm.") for arg in member.cmdline()):
                continue
            for process in [member, *member.children(recursive=True)]:
                if process.pid not in counted:
                    counted.add(process.pid)
                    total += process.memory_info().rss
        except psutil.Error:
            pass
    return total


def measured(command: list[str]) -> dict:
    """Run a command; its wall time and the peak resident memory of the hacm processes it starts."""
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    process, peak, done = psutil.Process(child.pid), 0, threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, stage_rss(process))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = child.communicate()
    done.set()
    sampler.join()
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{output[-3000:]}")
    return {"seconds": time.perf_counter() - started, "peak_rss_mb": peak / 2**20}


def workflow_stage(root: Path, archives: Path, target: Path, workers: int) -> dict:
    """One rule of the real path, as a user's `snakemake --configfile config/paper.yaml` runs it."""
    paths = {"archives": str(archives), "raw": str(root / "raw"), "data": str(root / "data")}
    return measured([sys.executable, "-m", "snakemake", "--cores", str(workers), "--configfile", "config/paper.yaml",
                     "--config", "dataset=real", f"paths={json.dumps(paths)}", "--quiet", "all", "--", str(target)])


def disk_gb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e9


def warm_page_cache(store_dir: Path) -> None:
    """Read the frame table once, as a first epoch does, so that the next measurement is of the loader."""
    with open(store_dir / "frames.npy", "rb") as stream:
        while stream.read(1 << 24):
            pass


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


def short_pretraining(root: Path, store: Path, steps: int) -> dict:
    config = root / "pretrain.yaml"
    config.write_text(yaml.safe_dump({"data": {"batch_size": 16}, "optim": {"precision": "bf16"},
                                      "monitor": {"knn_every": 0, "log_every": 10}}))
    out = root / "pretrain"
    run = measured([sys.executable, "-m", "hacm.pretrain", "--config", str(config), "--data", str(store),
                    "--out", str(out), "--stop-after-steps", str(steps), "--no-progress"])
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    partial = next(record for record in records if record["kind"] == "partial_epoch")
    return {**run, "store": store.name, "steps": partial["steps"], "batch_size": 16, "precision": "bf16",
            "samples_per_s": partial["samples_per_s"], "loss": partial["loss"]}


def rehearse(out: Path, dataset: str, fraction: float, workers: int, pretrain_steps: int) -> dict:
    from hacm.benchmarks import benchmarks_of

    step = round(1 / fraction)
    archives, root = out / f"archives_fraction_{fraction:g}", out / f"{dataset}_fraction_{fraction:g}"
    shutil.rmtree(root, ignore_errors=True)
    archives.mkdir(parents=True, exist_ok=True)
    if dataset.startswith("ntu"):
        made = fabricate_ntu(archives, dataset, step, workers)
    else:
        made = fabricate_pku(archives, dataset, step, root)
    raw, data = root / "raw" / dataset, root / "data" / dataset
    fetch = workflow_stage(root, archives, raw / "FETCHED.json", workers)
    prepare = workflow_stage(root, archives, data / "report.json", workers)
    report = json.loads((data / "report.json").read_text())
    first = benchmarks_of(dataset)[0]
    converting = sum(part["seconds"] for part in report["parts"])  # hacm.prepare's own clock: no snakemake start-up
    run = {"dataset": dataset, "fraction": fraction, "fabricate": made, "fetch": {**fetch, "raw_gb": disk_gb(raw)},
           "prepare": {**prepare, "converting_seconds": converting, "files_per_s": made["files"] / converting,
                       "files_per_s_per_worker": made["files"] / converting / workers,
                       "stores_gb": disk_gb(data), "problems": sum(len(part["problems"]) for part in report["parts"]),
                       "stores": {b: s for part in report["parts"] for b, s in part["stores"].items()}},
           # Cold: just after prepare the store is partly on disk only (raw files and stores exceed the page
           # cache here); warm: as from the second epoch on, once the table has been read.
           "loader_samples_per_s": loader_rate(data / first / "train")}
    warm_page_cache(data / first / "train")
    run["loader_warm_samples_per_s"] = loader_rate(data / first / "train")
    if pretrain_steps:
        run["pretrain"] = short_pretraining(root, data / first, pretrain_steps)
    shutil.rmtree(root / "raw", ignore_errors=True)
    shutil.rmtree(root / "data", ignore_errors=True)
    return run


def markdown_table(results: dict) -> str:
    """The README's table: one row per dataset and fraction, one column per stage."""
    run_workers = results["workers"]

    def fabricated(made: dict) -> str:
        reused = f" ({', '.join(made['reused'])} kept from an earlier dataset or run)" if made.get("reused") else ""
        if made["seconds"] == 0:
            return f"{made['archive_gb']:.1f} GB archived{reused}"
        extra = f", {made['frames'] / 1e6:.1f} M frames, {made['actions']:,} actions" if "frames" in made else ""
        return (f"{made['raw_gb']:.1f} GB of text{extra} in {made['seconds']:.0f} s; {made['archive_gb']:.1f} GB "
                f"archived{reused}")

    def prepared(run: dict) -> str:
        prepare, made = run["prepare"], run["fabricate"]
        samples = "; ".join(f"{b} {s['train']:,} / {s['test']:,}" for b, s in prepare["stores"].items())
        rate = f"{prepare['files_per_s_per_worker']:.0f} files/s per worker"
        if "frames" in made:  # PKU-MMD: a file is a long video
            rate = (f"{prepare['files_per_s_per_worker']:.1f} videos = "
                    f"{made['frames'] / prepare['converting_seconds'] / run_workers / 1000:.0f}k frames/s per worker")
        return (f"{prepare['seconds']:.0f} s ({prepare['converting_seconds']:.0f} s converting: {rate}), peak "
                f"{prepare['peak_rss_mb']:.0f} MB, {prepare['stores_gb']:.1f} GB, {prepare['problems']} bad; "
                f"train / test {samples}")

    def pretrained(run: dict) -> str:
        done = run.get("pretrain")
        return "—" if done is None else (f"{done['steps']} steps in {done['seconds']:.0f} s: "
                                         f"{done['samples_per_s']:.1f} samples/s, peak {done['peak_rss_mb'] / 1024:.2f} GB")

    lines = ["| dataset, files | fabricate (not part of the pipeline) | fetch rule (verify, extract; no network) "
             "| prepare rule (parse, denoise, normalise, write the stores) | loader (batches of 256, T 72) "
             "| `hacm.pretrain`, paper-size model, bf16, batch 16 |", "|---|---|---|---|---|---|"]
    def loader(run: dict) -> str:
        cold, warm = run["loader_samples_per_s"], run.get("loader_warm_samples_per_s")
        if cold is None:
            return "—"
        return f"{cold / 1000:.1f}k samples/s" + ("" if warm is None else f" cold, {warm / 1000:.1f}k warm")

    for run in results["runs"]:
        fetch = run["fetch"]
        lines.append(" | ".join([
            f"| {run['dataset']}, {run['fabricate']['files']:,}" + (" (every 2nd)" if run["fraction"] == 0.5 else ""),
            fabricated(run["fabricate"]),
            f"{fetch['seconds']:.0f} s, peak {fetch['peak_rss_mb']:.0f} MB, {fetch['raw_gb']:.1f} GB",
            prepared(run),
            loader(run),
            pretrained(run)]) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="scratch folder (tens of GB)")
    parser.add_argument("--dataset", nargs="+", choices=["ntu60", "ntu120", "pku1", "pku2"], default=["ntu60"])
    parser.add_argument("--fraction", type=float, nargs="+", default=[1.0, 0.5])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pretrain-steps", type=int, default=200, help="0: no pretraining stage")
    parser.add_argument("--table", type=Path, help="only print the Markdown table of this rehearsal_2026-12-03.json")
    args = parser.parse_args()
    if args.table:
        print(markdown_table(json.loads(args.table.read_text())))
        return 0
    for dataset in args.dataset:
        if dataset.startswith("ntu") and not (STATISTICS / dataset / "skes_available_name.txt").is_file():
            raise SystemExit(f"the official {dataset} name list is not in {STATISTICS / dataset} (the shared data folder)")
    sys.path.insert(0, str(REPO))
    from hacm.provenance import cpu_model

    out = args.out.absolute()
    results = {"date": dt.date.today().isoformat(), "cpu": cpu_model(), "cores": psutil.cpu_count(),
               "workers": args.workers, "runs": []}
    for index, (dataset, fraction) in enumerate((d, f) for d in args.dataset for f in args.fraction):
        results["runs"].append(rehearse(out, dataset, fraction, args.workers, args.pretrain_steps if index == 0 else 0))
        (out / "rehearsal_2026-12-03.json").write_text(json.dumps(results, indent=1) + "\n")  # what is done so far
    print(markdown_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
