"""A differentiable all-gather of per-sequence rows over the data-parallel processes (for L_cc).

torch.distributed.nn.functional.all_gather is not used: on gloo its backward (an all-to-all built from
scatters) returns wrong gradients, silently, when the gradients reaching it are not contiguous, e.g. a
column-major slice that a batched matmul's backward produces (measured with torch 2.13, 2 CPU processes).
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def data_parallel() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class _GatherRows(torch.autograd.Function):
    @staticmethod
    def forward(ctx, rows: torch.Tensor) -> torch.Tensor:
        rows = rows.contiguous()
        parts = [torch.empty_like(rows) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, rows)
        ctx.rank, ctx.count = dist.get_rank(), rows.shape[0]
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        # Every process holds a loss of all rows: this process's rows get the sum of their gradients.
        total = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(total)
        return total[ctx.rank * ctx.count : (ctx.rank + 1) * ctx.count]


def gather_rows(rows: torch.Tensor) -> torch.Tensor:
    """(n, ...) rows of this process -> (P n, ...) the rows of every process in rank order (each process's
    n must be the same); the gradient of each process's rows is the sum over processes of the gradients
    of the gathered copy. Without data parallelism, the rows themselves."""
    return _GatherRows.apply(rows) if data_parallel() else rows
