"""Datasets over a converted split (docs/method.md §1.7): batches of (C, T, V, M) sequences with their labels.

Two ways to feed a model, sharing `augment_batch`:
- `SkeletonDataset` + `make_loader`: DataLoader workers gather rows from the memory-mapped store
  and augment whole batches at once on the CPU (`__getitems__`), never loading the store whole.
- `DeviceBatches`: the frame table is copied once to an accelerator and every batch is gathered and
  augmented there, for the sample rates a GPU needs (NTU-60 x-sub fits in about 2 GB).
Both hand the model what `input` names (coordinates or velocity, `augment_batch`), so pretraining and every
evaluation protocol see the same kind of clip whichever way it is fed.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from hacm.data.augment import COORDINATES, MAX_ROTATION, augment_batch, sample_uniforms
from hacm.data.storage import SkeletonStore


@dataclass
class Batch:
    """A batch of augmented sequences: x (B, 3, T, 25, 2), labels (B,), store indices (B,)."""

    x: torch.Tensor
    labels: torch.Tensor
    indices: torch.Tensor

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        return Batch(
            self.x.to(device, non_blocking=non_blocking),
            self.labels.to(device, non_blocking=non_blocking),
            self.indices.to(device, non_blocking=non_blocking),
        )

    def pin_memory(self) -> Batch:
        return Batch(self.x.pin_memory(), self.labels.pin_memory(), self.indices.pin_memory())


class SkeletonDataset(Dataset):
    """Augmented samples of a store; `__getitems__` builds a whole batch with tensor operations."""

    def __init__(
        self,
        store: SkeletonStore,
        *,
        frames: int,
        train: bool,
        seed: int = 0,
        rotation: float = MAX_ROTATION,
        input: str = COORDINATES,
        release_bytes: int = 32 << 20,
    ) -> None:
        self.store = store
        self.frames = frames
        self.train = train
        self.seed = seed
        self.rotation = rotation
        self.input = input
        self.epoch = 0
        self._offsets = torch.from_numpy(store.offsets.astype(np.int64))
        self._valid = torch.from_numpy(store.valid_lengths.astype(np.int64))
        self._labels = torch.from_numpy(store.labels.astype(np.int64))
        self._row_bytes = int(np.prod(store.frames.shape[1:])) * store.frames.itemsize
        self._release_bytes = release_bytes
        self._bytes_since_release = 0

    def set_epoch(self, epoch: int) -> None:
        """Fresh augmentations for each epoch, reproducible from (seed, epoch, index)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.store)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        batch = self.__getitems__([index])
        return batch.x[0], int(batch.labels[0])

    def __getitems__(self, indices: list[int]) -> Batch:
        index = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        uniforms = None
        if self.train:
            uniforms = torch.from_numpy(sample_uniforms(self.seed, self.epoch, index.numpy()))
        x = augment_batch(
            self.store.frames,
            self._offsets[index],
            self._valid[index],
            uniforms,
            frames=self.frames,
            train=self.train,
            rotation=self.rotation,
            input=self.input,
        )
        # Bound the mapped pages this process keeps resident, whatever the size of the store.
        self._bytes_since_release += int(self._valid[index].sum()) * self._row_bytes
        if self._bytes_since_release >= self._release_bytes:
            self.store.release_pages()
            self._bytes_since_release = 0
        return Batch(x, self._labels[index], index)


def epoch_batches(
    num_samples: int,
    *,
    batch_size: int,
    seed: int,
    epoch: int,
    shuffle: bool = True,
    drop_last: bool = True,
    rank: int = 0,
    world_size: int = 1,
) -> list[list[int]]:
    """This process's sample indices for each step of an epoch.

    The order is a pure function of (seed, epoch), so a resumed run sees the same batches; each
    global batch of `batch_size` is cut into `world_size` equal slices, one per data-parallel process.
    """
    if batch_size % world_size:
        raise ValueError(f"batch size {batch_size} does not split over {world_size} processes")
    if shuffle:
        generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        order = torch.randperm(num_samples, generator=generator).tolist()
    else:
        order = list(range(num_samples))
    local = batch_size // world_size
    batches = []
    for start in range(0, num_samples, batch_size):
        batch = order[start : start + batch_size]
        if len(batch) < batch_size:
            if drop_last or len(batch) < world_size:
                break
            local = len(batch) // world_size
        batches.append(batch[rank * local : (rank + 1) * local])
    return batches


def _whole_batch(batch: Batch) -> Batch:
    return batch


def make_loader(dataset: SkeletonDataset, batches: list[list[int]], *, num_workers: int = 0,
                pin_memory: bool = False) -> DataLoader:
    """A DataLoader over given batches whose workers build each one whole (`__getitems__`) from the map."""
    return DataLoader(
        dataset,
        batch_sampler=batches,
        collate_fn=_whole_batch,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=False,
    )


def copy_frames_to(store: SkeletonStore, device: torch.device, *, chunk_rows: int = 1 << 18) -> torch.Tensor:
    """The whole frame table on `device`, copied in chunks so the host never holds a second full copy."""
    table = torch.empty(store.frames.shape, dtype=torch.float32, device=device)
    for start in range(0, len(store.frames), chunk_rows):
        chunk = np.array(store.frames[start : start + chunk_rows])
        table[start : start + len(chunk)] = torch.from_numpy(chunk)
    store.release_pages()
    return table


class DeviceBatches:
    """Augmented batches built entirely on one device from a resident copy of the frame table."""

    def __init__(self, store: SkeletonStore, *, device: torch.device | str, frames: int, train: bool,
                 seed: int = 0, rotation: float = MAX_ROTATION, input: str = COORDINATES) -> None:
        self.device = torch.device(device)
        self.table = copy_frames_to(store, self.device)
        self.offsets = torch.from_numpy(store.offsets.astype(np.int64)).to(self.device)
        self.valid = torch.from_numpy(store.valid_lengths.astype(np.int64)).to(self.device)
        self.labels = torch.from_numpy(store.labels.astype(np.int64)).to(self.device)
        self.frames, self.train, self.seed, self.rotation, self.input = frames, train, seed, rotation, input
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, indices: list[int]) -> Batch:
        index = torch.as_tensor(indices, dtype=torch.int64)
        uniforms = None
        if self.train:
            uniforms = torch.from_numpy(sample_uniforms(self.seed, self.epoch, index.numpy()))
        on_device = index.to(self.device)
        x = augment_batch(self.table, self.offsets[on_device], self.valid[on_device], uniforms,
                          frames=self.frames, train=self.train, rotation=self.rotation, input=self.input)
        return Batch(x, self.labels[on_device], on_device)

    def iterate(self, batches: list[list[int]]) -> Iterator[Batch]:
        for indices in batches:
            yield self.batch(indices)

    def view(self, *, train: bool, frames: int, input: str) -> DeviceBatches:
        """Batches over the same resident tensors with other settings (no second copy on the device)."""
        view = copy.copy(self)
        view.train, view.frames, view.input = train, frames, input
        return view


# Device memory a resident copy must leave free for the model, its activations and the optimiser: a
# quarter of the GPU, at least 4 GiB (the paper-size pretraining step at batch 64 needs ~3 GiB of activations).
DEVICE_RESERVE_FRACTION, DEVICE_RESERVE_MIN_BYTES = 0.25, 4 << 30


def store_bytes(store: SkeletonStore) -> int:
    """Bytes of a store's resident copy: the float32 frame table and three int64 columns."""
    return int(np.prod(store.frames.shape)) * 4 + 3 * 8 * len(store)


def fits_on_device(needed: int, *, free: int, total: int) -> bool:
    """Whether a copy of `needed` bytes leaves the reserve free on a device with `free` of `total` bytes."""
    return needed <= free - max(DEVICE_RESERVE_MIN_BYTES, DEVICE_RESERVE_FRACTION * total)


@dataclass
class Feeder:
    """Batches of one split, from the mapped store (CPU workers) or a copy on the device."""

    store: SkeletonStore
    frames: int
    train: bool
    seed: int
    device: torch.device
    on_device: bool
    workers: int
    rotation: float
    input: str = COORDINATES  # coordinates | velocity (data.input)
    device_batches: DeviceBatches | None = None  # a resident copy to share (another Feeder's), else made here

    def __post_init__(self) -> None:
        if self.on_device:
            if self.device_batches is None:
                self.device_batches = DeviceBatches(self.store, device=self.device, frames=self.frames,
                                                    train=self.train, seed=self.seed, rotation=self.rotation,
                                                    input=self.input)
            else:  # the same tensors, this feeder's augmentation
                self.device_batches = self.device_batches.view(train=self.train, frames=self.frames,
                                                               input=self.input)
        else:
            self._dataset = SkeletonDataset(self.store, frames=self.frames, train=self.train, seed=self.seed,
                                            rotation=self.rotation, input=self.input)

    def unaugmented(self) -> Feeder:
        """A feeder of the same split without augmentation, sharing this one's copy on the device (the kNN
        monitor reads the training split the training feeder already holds: one copy, not two). The input
        kind stays: it is what the model reads, not an augmentation."""
        return Feeder(self.store, frames=self.frames, train=False, seed=self.seed, device=self.device,
                      on_device=self.on_device, workers=self.workers, rotation=self.rotation, input=self.input,
                      device_batches=self.device_batches)

    def iterate(self, batches: list[list[int]], epoch: int = 0):
        if self.on_device:
            self.device_batches.set_epoch(epoch)
            return self.device_batches.iterate(batches)
        self._dataset.set_epoch(epoch)
        return iter(make_loader(self._dataset, batches, num_workers=self.workers,
                                pin_memory=self.device.type == "cuda"))


def copy_fits(store: SkeletonStore, device: torch.device) -> tuple[bool, str]:
    """Whether `store` fits on `device` beside the reserve, and the figures, in words."""
    free, total = torch.cuda.mem_get_info(device)
    needed = store_bytes(store)
    words = f"{needed / 2**30:.1f} GiB needed, {free / 2**30:.1f} GiB free of {total / 2**30:.1f} GiB"
    return fits_on_device(needed, free=free, total=total), words


def make_feeder(store: SkeletonStore, *, frames: int, train: bool, seed: int, device: torch.device, loader: str,
                workers: int, rotation: float, input: str = COORDINATES) -> Feeder:
    """The feeder a run's `data.loader` asks for: `device` copies the store to the device, `workers` maps it
    with CPU workers, `auto` copies it when the device is a GPU and the copy leaves the reserve free there,
    and otherwise maps it, saying so in one line. Its clips hold `input` (data.input) either way."""
    on_device = loader == "device"
    if loader == "auto" and device.type == "cuda":
        on_device, words = copy_fits(store, device)
        if not on_device:
            print(f"hacm: data.loader auto: {store.directory} stays mapped in host memory, read by CPU workers "
                  f"(its copy would leave less than the reserve free on {device}: {words})", file=sys.stderr)
    return Feeder(store, frames=frames, train=train, seed=seed, device=device, on_device=on_device, workers=workers,
                  rotation=rotation, input=input)
