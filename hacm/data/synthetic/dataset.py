"""The whole dataset: ntu/, pku1/ and pku2/ written under one folder, and the manifest that says it is complete."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

from hacm.data.synthetic.classes import CLASS_NAMES, NTU60_NUM_CLASSES, NUM_CLASSES, TWO_PERSON_CLASSES
from hacm.data.synthetic.layout import NTU_DIR, PKU_PHASE_DIRS
from hacm.data.synthetic.ntu import write_ntu
from hacm.data.synthetic.pku import write_pku_phase

GENERATOR_VERSION = 5
MANIFEST_NAME = "synthetic_manifest.json"


def read_manifest(raw_dir: Path) -> dict | None:
    """The manifest of the synthetic data under raw_dir, or None when there is none (or it is unreadable)."""
    try:
        manifest = json.loads((Path(raw_dir) / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def synthetic_raw_is_current(raw_dir: Path, *, seed: int) -> bool:
    """Whether raw_dir already holds the complete synthetic data of this seed and generator version."""
    manifest = read_manifest(raw_dir)
    return bool(manifest) and manifest.get("seed") == seed and manifest.get("generator_version") == GENERATOR_VERSION


def write_synthetic_raw(raw_dir: Path, *, seed: int = 0, progress: bool = True) -> dict:
    """Write <raw_dir>/ntu, <raw_dir>/pku1 and <raw_dir>/pku2; return (and store) a small manifest.

    Idempotent: nothing is written when <raw_dir>/synthetic_manifest.json already records the same seed
    and generator version. The manifest is written last, so an interrupted run is redone in full.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    raw_dir = Path(raw_dir)
    manifest_path = raw_dir / MANIFEST_NAME
    if synthetic_raw_is_current(raw_dir, seed=seed):
        return read_manifest(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    manifest_path.unlink(missing_ok=True)

    def bar(description: str) -> Callable[[Iterable], Iterable]:
        if not progress:
            return iter
        from tqdm import tqdm

        return lambda items: tqdm(items, desc=description, unit="file" if description == "ntu" else "video")

    manifest = {
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "num_classes": NUM_CLASSES,
        "ntu60_num_classes": NTU60_NUM_CLASSES,
        "class_names": list(CLASS_NAMES),
        "two_person_classes": sorted(label + 1 for label in TWO_PERSON_CLASSES),
        "ntu": write_ntu(raw_dir / NTU_DIR, seed=seed, progress=bar("ntu")),
    }
    for phase, directory in PKU_PHASE_DIRS.items():
        manifest[directory] = write_pku_phase(raw_dir / directory, phase=phase, seed=seed, progress=bar(directory))
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
