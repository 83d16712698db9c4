"""Datasets over a converted split (DESIGN §1.7): batches of (C, T, V, M) sequences with their labels.

Two ways to feed a model, sharing `augment_batch`:
- `SkeletonDataset` + `make_loader`: DataLoader workers gather rows from the memory-mapped store
  and augment whole batches at once on the CPU (`__getitems__`), never loading the store whole.
- `DeviceBatches`: the frame table is copied once to an accelerator and every batch is gathered and
  augmented there, for the sample rates a GPU needs (NTU-60 x-sub fits in about 2 GB).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from hacm.data.augment import MAX_ROTATION, augment_batch, sample_uniforms
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
        release_bytes: int = 32 << 20,
    ) -> None:
        self.store = store
        self.frames = frames
        self.train = train
        self.seed = seed
        self.rotation = rotation
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
        )
        # Bound the mapped pages this process keeps resident, whatever the size of the store.
        self._bytes_since_release += int(self._valid[index].sum()) * self._row_bytes
        if self._bytes_since_release >= self._release_bytes:
            self.store.release_pages()
            self._bytes_since_release = 0
        return Batch(x, self._labels[index], index)


def _whole_batch(batch: Batch) -> Batch:
    return batch


def make_loader(
    dataset: SkeletonDataset,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    drop_last: bool = False,
    num_workers: int = 0,
    pin_memory: bool = False,
) -> DataLoader:
    """A DataLoader whose workers build whole batches (`__getitems__`) from the mapped store."""
    if shuffle:
        generator = torch.Generator().manual_seed(seed)
        sampler = RandomSampler(dataset, generator=generator)
    else:
        sampler = SequentialSampler(dataset)
    return DataLoader(
        dataset,
        batch_sampler=BatchSampler(sampler, batch_size=batch_size, drop_last=drop_last),
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
    """Shuffled (or ordered) augmented batches built entirely on one device from a resident frame table."""

    def __init__(
        self,
        store: SkeletonStore,
        *,
        device: torch.device | str,
        frames: int,
        train: bool,
        batch_size: int,
        seed: int = 0,
        shuffle: bool = True,
        drop_last: bool = False,
        rotation: float = MAX_ROTATION,
    ) -> None:
        self.device = torch.device(device)
        self.table = copy_frames_to(store, self.device)
        self.offsets = torch.from_numpy(store.offsets.astype(np.int64)).to(self.device)
        self.valid = torch.from_numpy(store.valid_lengths.astype(np.int64)).to(self.device)
        self.labels = torch.from_numpy(store.labels.astype(np.int64)).to(self.device)
        self.frames, self.train, self.batch_size = frames, train, batch_size
        self.seed, self.shuffle, self.drop_last, self.rotation = seed, shuffle, drop_last, rotation
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        full, rest = divmod(len(self.labels), self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def __iter__(self) -> Iterator[Batch]:
        count = len(self.labels)
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(count, generator=generator)
        else:
            order = torch.arange(count)
        for batch_number in range(len(self)):
            index = order[batch_number * self.batch_size : (batch_number + 1) * self.batch_size]
            uniforms = None
            if self.train:
                uniforms = torch.from_numpy(sample_uniforms(self.seed, self.epoch, index.numpy()))
            index_on_device = index.to(self.device)
            x = augment_batch(
                self.table,
                self.offsets[index_on_device],
                self.valid[index_on_device],
                uniforms,
                frames=self.frames,
                train=self.train,
                rotation=self.rotation,
            )
            yield Batch(x, self.labels[index_on_device], index_on_device)
