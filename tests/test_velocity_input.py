"""`data.input: velocity`: the release's `vel: True` (feeder/feeder_ntu.py l.97-99), on every way a batch is fed.

The release takes the clip after its crop-resize (l.85) and rotation (l.86-87) and replaces it by
x[t+1] - x[t] along time, the last frame 0, for every joint of both bodies. hacm does the same at the end of
`augment_batch`, so the mapped store's workers, the device-resident batches, the kNN monitor's unaugmented
view and the linear probe's cached features all see it; the model's motion target is then taken from the
velocity as it comes in, as the release's `extract_motion` takes it from its input (model_hacm/transformer.py
l.557-565, 596).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from hacm.config import ConfigError
from hacm.data.augment import augment_batch, frame_velocity, sample_uniforms
from hacm.data.loader import DeviceBatches, SkeletonDataset, epoch_batches, make_feeder
from hacm.model.config import ModelConfig
from hacm.model.pretrainer import HACMPretrainer, to_sequences
from hacm.pretrain.config import PretrainConfig
from tests.conftest import TINY_ARCHITECTURE
from tests.test_store_and_loader import write_store


def release_velocity(clip: np.ndarray) -> np.ndarray:
    """The release's formula on one (C, T, V, M) clip: frame t+1 minus frame t, the last frame zero."""
    out = clip.copy()
    out[:, :-1] = clip[:, 1:] - clip[:, :-1]
    out[:, -1] = 0
    return out


def test_velocity_of_a_small_clip_is_the_frame_difference_with_a_zero_last_frame():
    t = torch.arange(4.0)[None, None, :, None, None]
    channel = torch.tensor([1.0, 2.0, 3.0])[None, :, None, None, None]
    joint = torch.arange(25.0)[None, None, None, :, None]
    x = torch.zeros(1, 3, 4, 25, 2)
    x[..., 0] = (t**2 * channel + joint)[..., 0]  # body 1: c * t^2 + joint index; body 2 absent
    v = frame_velocity(x)
    expected = torch.zeros_like(x)
    expected[:, :, :3, :, 0] = (torch.tensor([1.0, 3.0, 5.0])[None, None, :, None] * channel[..., 0])  # c (2t + 1)
    assert torch.equal(v, expected)
    assert torch.equal(v[0], torch.from_numpy(release_velocity(x[0].numpy())))


@pytest.mark.parametrize("train", [False, True])
def test_augment_batch_takes_the_velocity_of_the_cropped_resized_rotated_clip(tmp_path, train):
    store, _ = write_store(tmp_path / "s", [40, 150, 72, 300])
    uniforms = torch.from_numpy(sample_uniforms(3, 1, np.arange(len(store)))) if train else None
    args = (store.frames, torch.from_numpy(store.offsets), torch.from_numpy(store.valid_lengths), uniforms)
    coordinates = augment_batch(*args, frames=36, train=train)
    velocity = augment_batch(*args, frames=36, train=train, input="velocity")
    assert velocity.shape == coordinates.shape == (4, 3, 36, 25, 2)
    for clip, expected in zip(velocity.numpy(), coordinates.numpy()):
        np.testing.assert_array_equal(clip, release_velocity(expected))  # bit for bit: the same order of operations
    assert not velocity[0, ..., 1].any()  # the one-actor sample's absent body stays zero


def test_velocity_is_per_frame_of_the_resized_clip():
    """Taken after the resize, as the release: a steady drift of a per stored frame, resized from 96 to 24
    frames (test crop of 100), moves 4a per model frame."""
    frames = torch.zeros(100, 2, 25, 3)
    frames[:, 0, :, 0] = 0.01 * torch.arange(100.0)[:, None]
    x = augment_batch(frames, torch.tensor([0]), torch.tensor([100]), None, frames=24, train=False, input="velocity")
    torch.testing.assert_close(x[0, 0, 1:-1, :, 0], torch.full((22, 25), 0.04))
    assert not x[0, 0, -1].any() and not x[0, 1:].any()


def test_an_unknown_input_is_refused():
    with pytest.raises(ValueError, match="input must be"):
        augment_batch(torch.zeros(10, 2, 25, 3), torch.tensor([0]), torch.tensor([10]), None, frames=6, train=False,
                      input="vel")
    with pytest.raises(ConfigError, match=r"^data.input: must be one of \('coordinates', 'velocity'\)"):
        PretrainConfig.from_dict({"data": {"input": "vel"}})
    assert PretrainConfig.from_dict({}).data.input == "coordinates"


def batches_of(feeder, store, epoch=1):
    order = epoch_batches(len(store), batch_size=4, seed=0, epoch=epoch, drop_last=False)
    return [batch.x for batch in feeder.iterate(order, epoch)]


@pytest.mark.parametrize("loader", ["workers", "device"])
@pytest.mark.parametrize("train", [True, False])
def test_every_feeder_hands_out_velocity(tmp_path, loader, train):
    """The mapped store (CPU workers) and the resident copy (`device`, here on the CPU) give the velocity of
    what they give as coordinates; train=False is also the linear probe's cached-features pass."""
    store, _ = write_store(tmp_path / "s", [30, 90, 64, 120, 200, 75])
    feed = dict(frames=24, train=train, seed=5, device=torch.device("cpu"), loader=loader, workers=0, rotation=0.3)
    coordinates = batches_of(make_feeder(store, **feed), store)
    velocity_feeder = make_feeder(store, **feed, input="velocity")
    assert velocity_feeder.on_device == (loader == "device")
    for got, expected in zip(batches_of(velocity_feeder, store), coordinates, strict=True):
        assert torch.equal(got, frame_velocity(expected))


@pytest.mark.parametrize("loader", ["workers", "device"])
def test_the_monitors_unaugmented_view_keeps_the_input(tmp_path, loader):
    store, _ = write_store(tmp_path / "s", [30, 90, 64, 120])
    feed = dict(frames=24, seed=0, device=torch.device("cpu"), loader=loader, workers=0, rotation=0.3)
    unaugmented = make_feeder(store, train=True, input="velocity", **feed).unaugmented()
    assert unaugmented.input == "velocity" and not unaugmented.train
    for got, expected in zip(batches_of(unaugmented, store), batches_of(make_feeder(store, train=False, **feed), store)):
        assert torch.equal(got, frame_velocity(expected))


def test_a_feeder_sharing_a_resident_copy_applies_its_own_input(tmp_path):
    store, _ = write_store(tmp_path / "s", [30, 90, 64, 120])
    feed = dict(frames=24, train=False, seed=0, device=torch.device("cpu"), loader="device", workers=0, rotation=0.3)
    coordinates = make_feeder(store, **feed)
    shared = type(coordinates)(store, frames=24, train=False, seed=0, device=torch.device("cpu"), on_device=True,
                               workers=0, rotation=0.3, input="velocity", device_batches=coordinates.device_batches)
    assert shared.device_batches.table is coordinates.device_batches.table  # one copy
    for got, expected in zip(batches_of(shared, store), batches_of(coordinates, store)):
        assert torch.equal(got, frame_velocity(expected))
    assert coordinates.device_batches.input == "coordinates"  # the view did not change the copy's owner


def test_dataset_and_device_batches_agree_on_velocity(tmp_path):
    store, _ = write_store(tmp_path / "s", [30, 90, 64, 120, 41])
    indices = [4, 0, 2]
    dataset = SkeletonDataset(store, frames=24, train=True, seed=2, input="velocity")
    device = DeviceBatches(store, device="cpu", frames=24, train=True, seed=2, input="velocity")
    dataset.set_epoch(3)
    device.set_epoch(3)
    torch.testing.assert_close(dataset.__getitems__(indices).x, device.batch(indices).x, atol=1e-6, rtol=1e-6)


def test_the_motion_target_is_taken_from_the_input_as_it_comes():
    """With velocity input the release's target is extract_motion of that velocity (model_hacm/transformer.py
    l.596): hacm's motion target of a velocity clip is the same frame difference of it, token by token."""
    small = {**TINY_ARCHITECTURE, "hyperbolic": False}
    motion_model = HACMPretrainer(ModelConfig(**small, target="motion"))
    tokens_of = HACMPretrainer(ModelConfig(**small, target="coordinates")).raw_target  # the token layout alone
    x = torch.randn(2, 3, small["frames"], 25, 2)
    velocity = frame_velocity(x)
    release_target = np.stack([release_velocity(clip) for clip in velocity.numpy()])  # extract_motion, stride 1
    got = motion_model.raw_target(to_sequences(velocity))
    torch.testing.assert_close(got, tokens_of(to_sequences(torch.from_numpy(release_target))), atol=0, rtol=0)


# --- the stages pass data.input to their feeders --------------------------------------------------------------
def record_inputs(monkeypatch) -> list[str]:
    """Every `input` the loader's augment_batch is called with from now on (until monkeypatch undoes it)."""
    import hacm.data.loader as loader_module

    seen: list[str] = []
    real = loader_module.augment_batch

    def recording(*args, **kwargs):
        seen.append(kwargs.get("input", "coordinates"))
        return real(*args, **kwargs)

    monkeypatch.setattr(loader_module, "augment_batch", recording)
    return seen


@pytest.fixture()
def inputs_seen(monkeypatch) -> list[str]:
    return record_inputs(monkeypatch)


def pretrain_on_velocity(stores, out, loader: str) -> None:
    from hacm.pretrain.__main__ import main as pretrain_main

    config = out.parent / f"{out.name}.yaml"
    config.write_text(yaml.safe_dump({"model": TINY_ARCHITECTURE,
                                      "data": {"batch_size": 32, "loader": loader, "input": "velocity"},
                                      "optim": {"epochs": 1, "warmup_epochs": 0, "lr": 1e-3},
                                      "monitor": {"knn_every": 1}}))
    assert pretrain_main(["--config", str(config), "--data", str(stores / "ntu60-xsub"), "--out", str(out),
                          "--no-progress"]) == 0


@pytest.fixture(scope="module")
def velocity_pretraining(synthetic_stores, tmp_path_factory) -> tuple:
    """A one-epoch pretraining on velocity from the mapped store, with the kNN monitor: its encoder file and
    the inputs its batches were built with."""
    out = tmp_path_factory.mktemp("velocity_pretraining") / "run"
    with pytest.MonkeyPatch.context() as monkeypatch:
        seen = record_inputs(monkeypatch)
        pretrain_on_velocity(synthetic_stores, out, "workers")
    return out / "encoder.pt", seen


def test_pretraining_and_its_monitor_read_velocity_from_the_mapped_store(velocity_pretraining):
    _, seen = velocity_pretraining
    assert seen and set(seen) == {"velocity"}


def test_pretraining_and_its_monitor_read_velocity_from_a_resident_copy(synthetic_stores, tmp_path, inputs_seen):
    pretrain_on_velocity(synthetic_stores, tmp_path / "run", "device")
    assert inputs_seen and set(inputs_seen) == {"velocity"}


@pytest.mark.parametrize("protocol, linear_augment, loader", [
    ("linear", False, "workers"),  # cached features
    ("linear", True, "device"),  # augmented clips, resident copy
    ("finetune", None, "workers"),
])
def test_every_protocol_reads_velocity(synthetic_stores, velocity_pretraining, tmp_path, inputs_seen, protocol,
                                       linear_augment, loader):
    from hacm.evaluate.__main__ import main as evaluate_main

    config = tmp_path / "eval.yaml"
    config.write_text(yaml.safe_dump({
        "model": TINY_ARCHITECTURE, "data": {"batch_size": 64, "loader": loader, "input": "velocity"},
        "linear": {"epochs": 1, "augment": bool(linear_augment)},
        "finetune": {"epochs": 1, "warmup_epochs": 0, "hidden": 32}}))
    assert evaluate_main(["--protocol", protocol, "--config", str(config), "--data",
                          str(synthetic_stores / "ntu60-xsub"), "--encoder", str(velocity_pretraining[0]), "--out",
                          str(tmp_path / protocol), "--no-progress", "--device", "cpu"]) == 0
    assert inputs_seen and set(inputs_seen) == {"velocity"}
