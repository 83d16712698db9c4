"""The same masking noise on both sides: the uniforms hacm draws, handed to foreign code in its calls to
`torch.rand`.

hacm draws a group's uniforms from its generator as (S, L_group) tensors, the temporal group's first
(`hacm.model.pretrainer.draw_uniforms`); the release's mask_hyper_matrix and MAMP's masking call
`torch.rand(S, L)` once per group. `hacm_uniforms` draws what hacm's forward will draw from the same
seed, and `served` answers the foreign calls with given tensors, in order, checking their shapes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from unittest import mock

import torch


class NoiseError(RuntimeError):
    """Foreign code asked for other uniforms than were prepared."""


def hacm_generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def hacm_uniforms(seed: int, shapes: Sequence[tuple[int, ...]]) -> list[torch.Tensor]:
    """The uniforms hacm's forward draws, group by group, from `hacm_generator(seed)`."""
    generator = hacm_generator(seed)
    return [torch.rand(shape, generator=generator) for shape in shapes]


@contextlib.contextmanager
def served(uniforms: Sequence[torch.Tensor]) -> Iterator[list[tuple[int, ...]]]:
    """Within the block, `torch.rand(*size)` returns the next of `uniforms` (its size must match); yields
    the sizes asked for. Every prepared tensor must have been asked for by the end."""
    queue = list(uniforms)
    asked: list[tuple[int, ...]] = []

    def rand(*size, device=None, **_ignored) -> torch.Tensor:
        shape = tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list, torch.Size)) else tuple(size)
        if not queue:
            raise NoiseError(f"an unexpected torch.rand{shape} call (after {len(asked)} prepared)")
        head = queue.pop(0)
        if tuple(head.shape) != shape:
            raise NoiseError(f"torch.rand{shape} asked where {tuple(head.shape)} was prepared")
        asked.append(shape)
        return head.clone().to(device if device is not None else head.device)

    with mock.patch.object(torch, "rand", rand):
        yield asked
    if queue:
        raise NoiseError(f"{len(queue)} prepared uniform tensor(s) never asked for")
