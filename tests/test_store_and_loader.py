"""Memory-mapped stores and the batched loader: crop lengths, rotation, determinism, resident memory."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hacm.data.augment import (
    MIN_CROP_FRAMES,
    augment_batch,
    crop_windows,
    rotation_matrices,
    sample_uniforms,
)
from hacm.data.loader import DeviceBatches, SkeletonDataset, epoch_batches, make_feeder, make_loader
from hacm.data.storage import SampleMeta, SkeletonStore, StoreError, StoreWriter


def write_store(directory, lengths, *, seed=0, num_classes=5):
    rng = np.random.default_rng(seed)
    writer = StoreWriter(directory, info={"num_classes": num_classes})
    sequences = []
    for i, length in enumerate(lengths):
        sequence = rng.normal(size=(length, 2, 25, 3)).astype(np.float32)
        sequence[:, 1] *= i % 2  # every other sample has one actor
        writer.add(sequence, SampleMeta(name=f"s{i:05d}", label=i % num_classes, performer=i))
        sequences.append(sequence)
    writer.close()
    return SkeletonStore(directory), sequences


def test_store_round_trip_is_a_memory_map(tmp_path):
    store, sequences = write_store(tmp_path / "train", [30, 1, 300, 77])
    assert isinstance(store.frames, np.memmap) and store.frames.shape == (408, 2, 25, 3)
    assert len(store) == 4 and store.num_classes == 5
    for i, sequence in enumerate(sequences):
        np.testing.assert_array_equal(store.sequence(i), sequence)
    assert store.names.tolist() == ["s00000", "s00001", "s00002", "s00003"]
    assert store.metadata["performer"].tolist() == [0, 1, 2, 3]
    assert not (tmp_path / "train.partial").exists()
    assert np.load(tmp_path / "train" / "frames.npy", mmap_mode="r").shape == (408, 2, 25, 3)


def test_missing_store_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="not a converted split"):
        SkeletonStore(tmp_path / "nothing")


def test_train_crops_respect_the_length_rule():
    valid = torch.tensor([10, 64, 65, 100, 300] * 400)
    uniforms = torch.from_numpy(sample_uniforms(0, 0, np.arange(len(valid))))
    starts, lengths = crop_windows(valid, uniforms, train=True)
    assert (lengths <= valid).all() and (starts >= 0).all() and (starts + lengths <= valid).all()
    assert (lengths >= torch.clamp(valid, max=MIN_CROP_FRAMES)).all()
    assert (lengths >= (valid * 0.5).floor()).all()
    long = valid == 300
    assert lengths[long].min() < 170 and lengths[long].max() > 290  # ratios span [0.5, 1]
    assert starts[long].max() > 100  # random starts


def test_test_crop_is_the_centre_95_percent():
    starts, lengths = crop_windows(torch.tensor([100, 300, 40]), None, train=False)
    assert starts.tolist() == [2, 7, 1] and lengths.tolist() == [96, 286, 38]


def test_test_resize_equals_torch_interpolate(tmp_path):
    store, sequences = write_store(tmp_path / "s", [40, 150, 72])
    x = augment_batch(store.frames, torch.from_numpy(store.offsets), torch.from_numpy(store.valid_lengths),
                      None, frames=72, train=False)
    assert x.shape == (3, 3, 72, 25, 2)
    for i, sequence in enumerate(sequences):
        length = len(sequence)
        bias = int((1 - 0.95) * length / 2)
        crop = torch.from_numpy(sequence[bias : length - bias]).permute(1, 2, 3, 0).reshape(1, -1, length - 2 * bias)
        expected = F.interpolate(crop, size=72, mode="linear", align_corners=False)
        expected = expected.reshape(2, 25, 3, 72).permute(2, 3, 1, 0)
        torch.testing.assert_close(x[i], expected, atol=1e-5, rtol=1e-5)


def test_rotation_is_orthonormal_and_keeps_bone_lengths(tmp_path):
    angles = torch.rand(50, 3) * 0.6 - 0.3
    rotations = rotation_matrices(angles)
    torch.testing.assert_close(rotations @ rotations.transpose(1, 2), torch.eye(3).expand(50, 3, 3), atol=1e-6, rtol=0)
    store, _ = write_store(tmp_path / "s", [80, 80])
    dataset = SkeletonDataset(store, frames=72, train=True, seed=3)
    dataset.rotation = 0.0
    plain = dataset.__getitems__([0, 1]).x
    dataset.rotation = 0.3
    rotated = dataset.__getitems__([0, 1]).x
    assert not torch.allclose(plain, rotated)
    bones = [(0, 1), (1, 20), (4, 5), (5, 6), (12, 13)]
    for parent, child in bones:
        before = (plain[:, :, :, child] - plain[:, :, :, parent]).norm(dim=1)
        after = (rotated[:, :, :, child] - rotated[:, :, :, parent]).norm(dim=1)
        torch.testing.assert_close(before, after, atol=1e-5, rtol=1e-5)


def test_augmentation_is_determined_by_seed_epoch_and_index(tmp_path):
    store, _ = write_store(tmp_path / "s", [90, 120, 200, 75, 66])
    first = SkeletonDataset(store, frames=48, train=True, seed=7)
    again = SkeletonDataset(store, frames=48, train=True, seed=7)
    other = SkeletonDataset(store, frames=48, train=True, seed=8)
    batch = first.__getitems__([0, 1, 2, 3, 4]).x
    torch.testing.assert_close(batch, again.__getitems__([0, 1, 2, 3, 4]).x, rtol=0, atol=0)
    torch.testing.assert_close(batch[2], again[2][0], rtol=0, atol=0)  # batch composition does not matter
    assert not torch.allclose(batch, other.__getitems__([0, 1, 2, 3, 4]).x)
    first.set_epoch(1)
    assert not torch.allclose(batch, first.__getitems__([0, 1, 2, 3, 4]).x)


def test_loader_workers_and_device_batches_agree(tmp_path):
    store, _ = write_store(tmp_path / "s", [70 + 13 * i for i in range(23)])
    dataset = SkeletonDataset(store, frames=32, train=True, seed=1)
    dataset.set_epoch(2)
    by_index = {}
    batches = epoch_batches(23, batch_size=5, seed=1, epoch=2, drop_last=False)
    for batch in make_loader(dataset, batches, num_workers=2):
        assert batch.x.shape[1:] == (3, 32, 25, 2)
        for x, i in zip(batch.x, batch.indices.tolist()):
            by_index[i] = x
    assert sorted(by_index) == list(range(23))
    device_batches = DeviceBatches(store, device="cpu", frames=32, train=True, seed=1)
    device_batches.set_epoch(2)
    seen = 0
    for batch in device_batches.iterate(epoch_batches(23, batch_size=6, seed=1, epoch=2, drop_last=False)):
        for x, i in zip(batch.x, batch.indices.tolist()):
            torch.testing.assert_close(x, by_index[i], atol=1e-6, rtol=0)
            seen += 1
    assert seen == 23


def test_the_monitor_reads_the_training_split_from_the_training_feeders_copy(tmp_path):
    """Users' review: loader auto copied the training split to the GPU twice (training and kNN monitor)."""
    store, _ = write_store(tmp_path / "s", [40 + 7 * i for i in range(9)])
    feed = dict(frames=16, seed=1, device=torch.device("cpu"), loader="device", workers=0, rotation=0.3)
    training = make_feeder(store, train=True, **feed)
    monitor = training.unaugmented()
    assert monitor.device_batches.table is training.device_batches.table and not monitor.train
    assert training.device_batches.train  # the view did not change the training feeder
    separate = make_feeder(store, train=False, **feed)
    batches = epoch_batches(9, batch_size=4, seed=0, epoch=0, shuffle=False, drop_last=False)
    for shared, own in zip(monitor.iterate(batches), separate.iterate(batches)):
        assert torch.equal(shared.x, own.x)


def test_auto_keeps_a_split_mapped_when_its_copy_would_not_fit(tmp_path, monkeypatch, capsys):
    import hacm.data.loader as loader

    assert loader.fits_on_device(10 << 30, free=40 << 30, total=80 << 30)
    assert not loader.fits_on_device(30 << 30, free=40 << 30, total=80 << 30)  # leaves less than a quarter
    assert not loader.fits_on_device(1 << 30, free=4 << 30, total=8 << 30)  # leaves less than 4 GiB
    store, _ = write_store(tmp_path / "s", [40] * 3)
    monkeypatch.setattr(loader, "copy_fits", lambda store, device: (False, "9.0 GiB needed, 5.0 GiB free of 16.0 GiB"))
    feeder = make_feeder(store, frames=16, train=True, seed=0, device=torch.device("cuda"), loader="auto", workers=0,
                         rotation=0.3)
    assert not feeder.on_device and feeder.device_batches is None
    err = capsys.readouterr().err
    assert "stays mapped" in err and "9.0 GiB needed" in err and len(err.strip().splitlines()) == 1


def test_epoch_batches_split_global_batches_over_processes():
    whole = epoch_batches(50, batch_size=8, seed=3, epoch=1)
    assert len(whole) == 6 and all(len(b) == 8 for b in whole)  # the last 2 samples are dropped
    assert whole == epoch_batches(50, batch_size=8, seed=3, epoch=1)
    assert whole != epoch_batches(50, batch_size=8, seed=3, epoch=2)
    parts = [epoch_batches(50, batch_size=8, seed=3, epoch=1, rank=r, world_size=2) for r in range(2)]
    assert [a + b for a, b in zip(*parts)] == whole
    assert sum(map(len, epoch_batches(50, batch_size=8, seed=0, epoch=0, drop_last=False))) == 50
    with pytest.raises(ValueError, match="does not split"):
        epoch_batches(50, batch_size=9, seed=0, epoch=0, world_size=2)


def _resident_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/status"), reason="needs Linux /proc")
def test_iterating_a_large_store_keeps_resident_memory_flat(tmp_path):
    # 6000 samples x 100 frames x 600 B = 343 MB of frames, read in batches of 64.
    writer = StoreWriter(tmp_path / "big", info={"num_classes": 10})
    block = np.random.default_rng(0).normal(size=(100, 2, 25, 3)).astype(np.float32)
    for i in range(6000):
        writer.add(block, SampleMeta(name=str(i), label=i % 10))
    writer.close()
    store = SkeletonStore(tmp_path / "big")
    store_mb = store.frames.nbytes / 2**20
    dataset = SkeletonDataset(store, frames=64, train=True, seed=0)
    loader = make_loader(dataset, epoch_batches(len(store), batch_size=64, seed=0, epoch=0))
    next(iter(loader))
    baseline = {field: _resident_mb(field) for field in ("VmRSS", "RssFile")}
    peak = dict(baseline)
    for batch in loader:
        peak = {field: max(peak[field], _resident_mb(field)) for field in peak}
    growth = {field: peak[field] - baseline[field] for field in peak}
    assert store_mb > 300
    # Mapped pages of the store held at once stay bounded (released every 32 MB read) ...
    assert growth["RssFile"] < 0.15 * store_mb, f"mapped pages grew by {growth['RssFile']:.0f} MB of {store_mb:.0f}"
    # ... and so does everything else: nothing is loaded whole.
    assert growth["VmRSS"] < 0.3 * store_mb, f"resident memory grew by {growth['VmRSS']:.0f} MB of {store_mb:.0f}"
