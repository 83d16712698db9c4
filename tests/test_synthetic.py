"""The embedded synthetic dataset: real file formats, determinism, split coverage and difficulty."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

from hacm.data import synthetic
from hacm.data.kinect import R_ELBOW, R_SHOULDER
from hacm.data.synthetic import (
    CLASS_NAMES,
    NTU60_NUM_CLASSES,
    NUM_CLASSES,
    TWO_PERSON_CLASSES,
    format_ntu_skeleton,
    ntu_performance_rng,
    ntu_sample_names,
    synthesize_ntu_bodies,
    write_synthetic_raw,
)
from hacm.synthesize.__main__ import main as synthesize_main

SEED = 0
MAX_DISK_BYTES = 300 * 10**6  # 0.23 GB with NTU-120 setups and 6 PKU subjects per phase
NTU_FILE_COUNT_RANGE = (800, 1000)

# NTU split rules (docs/method.md §1.4), spelled out here rather than imported: the test checks the data against
# the rules, not against the code that applies them.
NTU60_XSUB_TRAIN = {1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38}
NTU120_XSUB_TRAIN = NTU60_XSUB_TRAIN | {
    45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86, 89, 91,
    92, 93, 94, 95, 97, 98, 100, 103,
}
NTU_SPLIT_RULES = {
    "ntu60-xsub": lambda s, c, p: p in NTU60_XSUB_TRAIN,
    "ntu60-xview": lambda s, c, p: c in (2, 3),
    "ntu120-xsub": lambda s, c, p: p in NTU120_XSUB_TRAIN,
    "ntu120-xset": lambda s, c, p: s % 2 == 0,
}
NAME = re.compile(r"^S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})$")

# Denoising rules 1-2 of docs/method.md §1.2, enough to drop the spurious bodies in the hardness check.
MAX_NOISE_FRAMES, NOISY_SPREAD, MAX_NOISY_RATIO = 11, 0.8, 0.69754
# Hardness self-check: a ridge classifier on time-averaged poses vs on time-resolved features.
RESAMPLED_FRAMES, VELOCITY_FRAMES = 16, 64
RIDGE_STRENGTHS = (1e-3, 1e-2, 1e-1, 1.0, 10.0)  # times the feature count
MAX_STATIC_ACCURACY, MIN_DYNAMIC_ACCURACY = 0.45, 0.80


# --- fixtures ----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def raw(synthetic_raw) -> Path:
    return synthetic_raw


@pytest.fixture(scope="session")
def manifest(raw) -> dict:
    return synthetic.read_manifest(raw)


def read_ntu_frames(path: Path) -> list[list[tuple[str, np.ndarray]]]:
    """A small independent reader: per frame, (body id, xyz (25, 3)) of every body."""
    tokens = path.read_bytes().split()
    position, frames = 1, []
    for _ in range(int(tokens[0])):
        count, position = int(tokens[position]), position + 1
        bodies = []
        for _ in range(count):
            body_id = tokens[position].decode()
            assert tokens[position + 10] == b"25"
            position += 11
            joints = np.array(tokens[position : position + 300], dtype=np.float64).reshape(25, 12)
            bodies.append((body_id, joints[:, :3]))
            position += 300
        frames.append(bodies)
    assert position == len(tokens), f"{path.name}: trailing tokens"
    return frames


@pytest.fixture(scope="session")
def ntu_files(raw) -> dict[str, list[list[tuple[str, np.ndarray]]]]:
    return {p.stem: read_ntu_frames(p) for p in sorted((raw / "ntu" / "nturgb+d_skeletons").glob("*.skeleton"))}


@pytest.fixture(scope="session")
def missing_names(raw) -> list[str]:
    from hacm.benchmarks import DATASETS

    names = {}
    for dataset in ("ntu60", "ntu120"):
        lines = (raw / "ntu" / DATASETS[dataset].missing_list).read_text().splitlines()
        assert lines[0].endswith("skeleton data.") and lines[1].startswith("If you are") and lines[2] == ""
        names[dataset] = lines[3:]
    # Like the official lists: NTU-120's names every missing file, NTU-60's those of its setups.
    assert names["ntu60"] == [name for name in names["ntu120"] if int(name[1:4]) <= 17]
    return names["ntu120"]


def tree_digest(root: Path) -> dict[str, str]:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def codes(name: str) -> tuple[int, ...]:
    return tuple(int(group) for group in NAME.match(name).groups())


# --- layout, counts, names ---------------------------------------------------------------------------


def test_classes_and_manifest(raw, manifest):
    assert NUM_CLASSES == len(CLASS_NAMES) >= 12
    assert len(TWO_PERSON_CLASSES) >= 3
    assert manifest["seed"] == SEED and manifest["num_classes"] == NUM_CLASSES
    assert manifest["ntu"]["files"] == len(list((raw / "ntu" / "nturgb+d_skeletons").iterdir()))


def test_ntu_names_cover_the_layout(ntu_files):
    names = list(ntu_files)
    assert names == ntu_sample_names()
    assert NTU_FILE_COUNT_RANGE[0] <= len(names) <= NTU_FILE_COUNT_RANGE[1]
    setups, cameras, performers, replications, actions = (set(v) for v in zip(*map(codes, names)))
    assert actions == set(range(1, NUM_CLASSES + 1))
    assert cameras == {1, 2, 3} and replications <= {1, 2}
    assert performers == set(range(1, 9)) | {45, 46, 48, 51} and setups == {1, 2, 3, 4, 18, 19}
    # NTU-60 setups hold the NTU-60 classes only; the NTU-120 setups hold every class, as in the real data.
    ntu60 = {a for s, _, _, _, a in map(codes, names) if s <= 17}
    assert ntu60 == set(range(1, NTU60_NUM_CLASSES + 1)) and NTU60_NUM_CLASSES < NUM_CLASSES


def test_disk_size_is_small(raw):
    assert sum(p.stat().st_size for p in raw.rglob("*") if p.is_file()) < MAX_DISK_BYTES


def test_pku_layout(raw):
    patterns = {1: r"^\d{4}-[LMR]$", 2: r"^A\d{2}N\d{2}-[LMR]$"}
    for phase, directory in synthetic.PKU_PHASE_DIRS.items():
        skeletons = sorted(p.stem for p in (raw / directory / "skeleton").glob("*.txt"))
        labels = sorted(p.stem for p in (raw / directory / "label").glob("*.txt"))
        assert skeletons == labels and len(skeletons) >= 6
        assert all(re.match(patterns[phase], video) for video in skeletons)
        for split_file in synthetic.PKU_SPLIT_FILES[phase].values():
            assert (raw / directory / "split" / split_file).is_file()


# --- determinism -------------------------------------------------------------------------------------


def test_same_seed_writes_identical_bytes(raw, tmp_path):
    again = tmp_path / "again"
    write_synthetic_raw(again, seed=SEED, progress=False)
    assert tree_digest(again) == tree_digest(raw)


def test_a_file_is_reproduced_from_its_name_and_seed(raw):
    name = "S002C003P006R001A011"
    frames = synthesize_ntu_bodies(name, ntu_performance_rng(SEED, name))
    written = (raw / "ntu" / "nturgb+d_skeletons" / f"{name}.skeleton").read_bytes().replace(b"\r\n", b"\n")
    assert format_ntu_skeleton(frames).encode() == written


def test_different_seed_writes_different_data(raw, tmp_path):
    for name in ntu_sample_names()[:: len(ntu_sample_names()) // 5]:
        other = format_ntu_skeleton(synthesize_ntu_bodies(name, ntu_performance_rng(SEED + 1, name)))
        written = (raw / "ntu" / "nturgb+d_skeletons" / f"{name}.skeleton").read_bytes().replace(b"\r\n", b"\n")
        assert other.encode() != written
    synthetic.write_pku_phase(tmp_path / "pku1", phase=1, seed=SEED + 1)
    video = "0001-M.txt"
    assert (tmp_path / "pku1" / "skeleton" / video).read_bytes() != (raw / "pku1" / "skeleton" / video).read_bytes()


def test_camera_views_share_one_performance():
    """The three cameras see the same performance: same frame count and the same bone lengths."""
    views = []
    for camera in synthetic.NTU_CAMERAS:
        name = f"S001C{camera:03d}P001R001A004"
        frames = [bodies for bodies in synthesize_ntu_bodies(name, ntu_performance_rng(SEED, name)) if bodies]
        views.append(np.stack([bodies[0][1][:, :3] for bodies in frames]))
    lengths = [np.linalg.norm(v[:, R_ELBOW] - v[:, R_SHOULDER], axis=-1) for v in views]
    assert len({len(v) for v in views}) == 1
    np.testing.assert_allclose(lengths[0], lengths[1], atol=0.05)
    assert not np.allclose(views[0], views[1], atol=0.05)


def test_write_is_idempotent(raw, manifest):
    probe = raw / "ntu" / "nturgb+d_skeletons" / f"{ntu_sample_names()[0]}.skeleton"
    before = probe.stat().st_mtime_ns
    assert write_synthetic_raw(raw, seed=SEED, progress=False) == manifest
    assert probe.stat().st_mtime_ns == before


# --- NTU content -------------------------------------------------------------------------------------


def test_ntu_text_follows_the_kinect_format(raw):
    name = "S001C001P001R001A010"  # two people
    text = (raw / "ntu" / "nturgb+d_skeletons" / f"{name}.skeleton").read_bytes().decode().replace("\r\n", "\n")
    lines = text.split("\n")
    assert lines[-1] == ""
    body_lines = [line.split() for line in lines if len(line.split()) == 10]
    joint_lines = [line.split() for line in lines if len(line.split()) == 12]
    assert body_lines and len(joint_lines) == 25 * len(body_lines)
    for fields in body_lines:
        assert re.fullmatch(r"\d{17}", fields[0]) and fields[-1] == "2"
    for fields in joint_lines[:200]:
        for token in fields[:3]:  # x y z printed with at most 7 significant digits, as Kinect does
            assert "%.7G" % float(token) == token


def test_missing_list_matches_the_files_without_bodies(ntu_files, missing_names):
    empty = sorted(name for name, frames in ntu_files.items() if not any(frames))
    assert missing_names == empty
    assert 1 <= len(empty) <= 0.02 * len(ntu_files)
    assert all(len(ntu_files[name]) > 0 for name in empty)  # frames are there, bodies are not


def test_spurious_bodies_and_empty_edge_frames_occur(ntu_files, missing_names):
    extra = edges = 0
    for name, frames in ntu_files.items():
        if name in missing_names:
            continue
        actors = 2 if codes(name)[-1] - 1 in TWO_PERSON_CLASSES else 1
        ids = {body_id for bodies in frames for body_id, _ in bodies}
        assert all(re.fullmatch(r"\d{17}", body_id) for body_id in ids)
        extra += len(ids) > actors
        edges += not frames[0] or not frames[-1]
        filled = [index for index, bodies in enumerate(frames) if bodies]
        assert len(filled) == filled[-1] - filled[0] + 1, name  # empty frames only at the edges
    assert extra >= 10 and edges >= 10


def test_every_ntu_split_has_every_class_in_train_and_test(ntu_files, missing_names):
    usable = [codes(name) for name in ntu_files if name not in missing_names]
    for split, is_train in NTU_SPLIT_RULES.items():
        in_scope = [c for c in usable if split.startswith("ntu120") or c[0] <= 17]
        train = {a for s, c, p, r, a in in_scope if is_train(s, c, p)}
        test = {a for s, c, p, r, a in in_scope if not is_train(s, c, p)}
        classes = NUM_CLASSES if split.startswith("ntu120") else NTU60_NUM_CLASSES
        assert train == test == set(range(1, classes + 1)), split


# --- PKU content -------------------------------------------------------------------------------------


def read_pku_split(path: Path) -> tuple[list[str], list[str]]:
    lines = path.read_text().split("\n")
    assert lines[0] == "Training videos: " and lines[2] == "Validataion videos: "
    return lines[1].split(", "), lines[3].split(", ")


def test_pku_labels_lie_inside_the_videos(raw):
    for directory in synthetic.PKU_PHASE_DIRS.values():
        for label_path in sorted((raw / directory / "label").glob("*.txt")):
            skeleton = np.loadtxt(raw / directory / "skeleton" / label_path.name).reshape(-1, 2, 25, 3)
            previous_end = -1
            for line in label_path.read_text().splitlines():
                assert re.fullmatch(r"\d+,\d+,\d+,[12]", line), line
                label, start, end, _ = map(int, line.split(","))
                assert 1 <= label <= NTU60_NUM_CLASSES
                assert max(previous_end, 0) < start <= end < len(skeleton) - 1  # idle frames around each action
                previous_end = end
                partner_seen = skeleton[start : end + 1, 1].any(axis=(1, 2))
                assert partner_seen.all() if label - 1 in TWO_PERSON_CLASSES else not partner_seen.any()
                assert skeleton[start : end + 1, 0].any(axis=(1, 2)).all()


def test_every_pku_split_has_every_class_in_train_and_test(raw):
    for phase, directory in synthetic.PKU_PHASE_DIRS.items():
        videos = {p.stem for p in (raw / directory / "skeleton").glob("*.txt")}
        for split_file in synthetic.PKU_SPLIT_FILES[phase].values():
            train, test = read_pku_split(raw / directory / "split" / split_file)
            assert sorted(train + test) == sorted(videos) and not set(train) & set(test)
            for part in (train, test):
                labels = {int(line.split(",")[0]) for video in part
                          for line in (raw / directory / "label" / f"{video}.txt").read_text().splitlines()}
                assert labels == set(range(1, NTU60_NUM_CLASSES + 1)), (directory, split_file)


# --- difficulty: the dynamics, not the mean pose, tell the classes apart -------------------------------


def actor_sequence(frames: list[list[tuple[str, np.ndarray]]]) -> np.ndarray:
    """(T, 2, 25, 3): the bodies that survive docs/method.md §1.2 rules 1-2, origin at actor 1's spine middle."""
    frames = [bodies for bodies in frames if bodies]
    tracks: dict[str, dict[int, np.ndarray]] = {}
    for index, bodies in enumerate(frames):
        for body_id, xyz in bodies:
            tracks.setdefault(body_id, {})[index] = xyz
    kept = []
    for track in tracks.values():
        joints = np.stack(list(track.values()))
        noisy = np.ptp(joints[..., 0], axis=1) > NOISY_SPREAD * np.ptp(joints[..., 1], axis=1)
        if len(tracks) == 1 or (len(track) > MAX_NOISE_FRAMES and noisy.mean() < MAX_NOISY_RATIO):
            kept.append(track)
    sequence = np.zeros((len(frames), 2, 25, 3))
    for slot, track in enumerate(kept[:2]):
        sequence[list(track), slot] = np.stack(list(track.values()))
    present = sequence.any(axis=(2, 3), keepdims=True)
    return np.where(present, sequence - sequence[0, 0, 1], 0.0)


def resample(sequence: np.ndarray, length: int) -> np.ndarray:
    position = np.linspace(0, len(sequence) - 1, length)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, len(sequence) - 1)
    weight = (position - low)[:, None, None, None]
    return sequence[low] * (1 - weight) + sequence[high] * weight


def ridge_accuracy(train_x, train_y, test_x, test_y) -> float:
    """Best test accuracy of a one-vs-rest ridge classifier over a few strengths (an optimistic bound)."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    a, b = (train_x - mean) / std, (test_x - mean) / std
    targets = np.eye(NUM_CLASSES)[train_y]
    targets -= targets.mean(0)
    gram = a @ a.T  # dual form: fewer samples than features
    best = 0.0
    for strength in RIDGE_STRENGTHS:
        dual = np.linalg.solve(gram + strength * a.shape[1] * np.eye(len(a)), targets)
        best = max(best, float(np.mean(np.argmax(b @ a.T @ dual, axis=1) == test_y)))
    return best


def test_classes_need_the_dynamics(ntu_files, missing_names):
    """x-sub, ridge classifier: time-averaged pose ~0.33 (the group of three is found, not the class),
    time-resolved (16 resampled frames + velocity spread) ~0.88, seed 0."""
    static, dynamic, labels, train = [], [], [], []
    for name, frames in ntu_files.items():
        if name in missing_names:
            continue
        setup, camera, performer, _, action = codes(name)
        sequence = actor_sequence(frames)
        static.append(sequence.mean(axis=0).ravel())
        velocity = np.diff(resample(sequence, VELOCITY_FRAMES), axis=0).std(axis=0).ravel()
        dynamic.append(np.concatenate([resample(sequence, RESAMPLED_FRAMES).ravel(), velocity]))
        labels.append(action - 1)
        train.append(NTU_SPLIT_RULES["ntu60-xsub"](setup, camera, performer))
    static, dynamic, labels, train = map(np.asarray, (static, dynamic, labels, train))
    static_accuracy = ridge_accuracy(static[train], labels[train], static[~train], labels[~train])
    dynamic_accuracy = ridge_accuracy(dynamic[train], labels[train], dynamic[~train], labels[~train])
    print(f"x-sub linear accuracy: time-averaged pose {static_accuracy:.3f}, time-resolved {dynamic_accuracy:.3f}")
    assert static_accuracy <= MAX_STATIC_ACCURACY
    assert dynamic_accuracy >= MIN_DYNAMIC_ACCURACY


# --- round trip through the project's reader ---------------------------------------------------------


def _round_trip_names() -> list[str]:
    """A few files that exercise the reader: two people, spurious bodies, empty edge frames."""
    wanted = {"two people": None, "spurious body": None, "empty edge frame": None}
    for name in ntu_sample_names():
        frames = synthesize_ntu_bodies(name, ntu_performance_rng(SEED, name))
        ids = {body_id for bodies in frames for body_id, _ in bodies}
        actors = 2 if codes(name)[-1] - 1 in TWO_PERSON_CLASSES else 1
        for kind, found in (("two people", actors == 2), ("spurious body", len(ids) > actors),
                            ("empty edge frame", not frames[0] or not frames[-1])):
            if found and wanted[kind] is None:
                wanted[kind] = name
        if all(wanted.values()):
            return list(wanted.values())
    raise AssertionError(f"no file found for {[k for k, v in wanted.items() if v is None]}")


def test_round_trip_through_the_ntu_reader(raw, missing_names):
    ntu = pytest.importorskip("hacm.data.ntu")
    for name in _round_trip_names() + missing_names[:1]:
        expected = synthesize_ntu_bodies(name, ntu_performance_rng(SEED, name))
        if name in missing_names:
            expected = [[] for _ in expected]
        read = ntu.read_skeleton(raw / "ntu" / "nturgb+d_skeletons" / f"{name}.skeleton")
        non_empty = [bodies for bodies in expected if bodies]
        assert read.num_frames == len(expected) and read.num_valid_frames == len(non_empty)
        order = list(dict.fromkeys(body_id for bodies in non_empty for body_id, _ in bodies))
        assert list(read.bodies) == order
        for body_id, body in read.bodies.items():
            frames = [i for i, bodies in enumerate(non_empty) if any(b == body_id for b, _ in bodies)]
            xyz = np.stack([columns[:, :3] for bodies in non_empty for b, columns in bodies if b == body_id])
            assert body.body_id == body_id
            np.testing.assert_array_equal(body.frames, frames)
            np.testing.assert_allclose(body.joints, xyz.astype(np.float32), rtol=1e-6, atol=1e-7)


# --- argument errors and the command line -------------------------------------------------------------


def test_bad_names_are_rejected():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="not an NTU sample name"):
        synthesize_ntu_bodies("S001C001P001A001", rng)
    with pytest.raises(ValueError, match="outside the synthetic classes"):
        synthesize_ntu_bodies(f"S001C001P001R001A{NUM_CLASSES + 1:03d}", rng)
    with pytest.raises(ValueError, match="seed"):
        write_synthetic_raw(Path("unused"), seed=-1)


def test_command_line(raw, tmp_path, capsys):
    assert synthesize_main(["--out", str(raw), "--seed", str(SEED)]) == 0
    assert "nothing written" in capsys.readouterr().out
    for bad in (["--out", str(tmp_path), "--seed", "-3"], ["--seed", "1"], ["--out", str(tmp_path), "--seed", "x"]):
        with pytest.raises(SystemExit) as exit_info:
            synthesize_main(bad)
        assert exit_info.value.code == 2
        error = capsys.readouterr().err
        assert "Traceback" not in error
        assert error.strip().splitlines()[-1].startswith("python -m hacm.synthesize: error:")
