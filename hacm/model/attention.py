"""Multi-head self-attention softmax(q kᵀ / √d) v of packed projections.

GPUs, and CPUs in float32, use PyTorch's fused kernel. In bfloat16 on a CPU without AMX units that
kernel is slower than its own float32 version (forward and backward of one decoder layer, 256 heads of
432 tokens, on a 2-core AVX512-BF16 EPYC: ~305 ms against ~190 ms), so there `BlockedAttention` does
the same arithmetic with bfloat16 batched GEMMs (float32 accumulation) block by block, a block of heads
small enough that its L x L scores stay in cache from the GEMM that writes them through the softmax to
the GEMM that reads them (~105 ms). In float32 the blocked form only ties with the fused kernel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

# Bytes of L x L scores per block: 8 heads of 432 tokens in bfloat16, 1.5 MB per core of a 2-core CPU.
# Timings are flat from 8 to 16 heads and worse at 4 or fewer (per-call overhead, smaller GEMMs).
BLOCK_BYTES = 8 * 432 * 432 * 2


class BlockedAttention(torch.autograd.Function):
    """(B, L, 3, H, d) packed q, k, v -> (B, L, H, d) outputs; exact in math.

    Products accumulate in float32 and are rounded to the inputs' dtype (scores, probabilities,
    outputs, gradients), as in eager bfloat16 attention; the softmax and its gradient are computed in
    float32. In bfloat16 the rounding of the scores costs precision as attention sharpens (relative
    error of the outputs ~4e-3 at score std 1, ~1.3e-2 at std 9, against ~2e-3 for the float32 kernel);
    float32 scores would cost ~12 % more time. The probabilities are kept for backward (an L x L matrix
    per head, 96 MB per decoder layer at batch 16): recomputing them costs a GEMM and a softmax there,
    more than storing them.
    """

    @staticmethod
    def forward(ctx, packed: torch.Tensor, keep: bool) -> torch.Tensor:
        batch, length, _, heads, width = packed.shape
        scale = width**-0.5
        # One copy to head-major (3, B*H, L, d): every block's q, k, v are then contiguous slices.
        head_major = packed.permute(2, 0, 3, 1, 4).reshape(3, batch * heads, length, width)
        q, k, v = head_major
        block = max(1, BLOCK_BYTES // (length * length * packed.element_size()))
        out = packed.new_empty(batch * heads, length, width)
        probabilities = []
        unused = packed.new_empty(1, 1, 1)  # baddbmm's input; beta=0 ignores it
        for start in range(0, batch * heads, block):
            part = slice(start, start + block)
            scores = torch.baddbmm(unused, q[part], k[part].transpose(1, 2), beta=0.0, alpha=scale)
            p = torch.softmax(scores, dim=-1)
            torch.bmm(p, v[part], out=out[part])
            if keep:
                probabilities.append(p)
        if keep:
            ctx.save_for_backward(head_major, *probabilities)
            ctx.scale, ctx.block, ctx.shape = scale, block, packed.shape
        return out.view(batch, heads, length, width).transpose(1, 2)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: torch.Tensor):
        head_major, *probabilities = ctx.saved_tensors
        q, k, v = head_major
        batch, length, _, heads, width = ctx.shape
        grad_out = grad_out.transpose(1, 2).reshape(batch * heads, length, width)
        grad_head_major = torch.empty_like(head_major)
        grad_q, grad_k, grad_v = grad_head_major
        unused = q.new_empty(1, 1, 1)
        with torch.autocast(device_type="cpu", enabled=False):
            for start, p in zip(range(0, batch * heads, ctx.block), probabilities):
                part = slice(start, start + ctx.block)
                grad = grad_out[part]
                # dV = Pᵀ dO and dK = dSᵀ Q computed as (dOᵀ P)ᵀ and (Qᵀ dS)ᵀ: GEMMs with the
                # transposed operand on the narrow (d) side run ~20 % faster.
                grad_v[part] = torch.bmm(grad.transpose(1, 2), p).transpose(1, 2)
                grad_p = torch.bmm(grad, v[part].transpose(1, 2))
                # P * (dP - rowsum(P * dP)) in one float32 pass (the op behind softmax's autograd)
                grad_scores = torch._softmax_backward_data(grad_p, p, -1, p.dtype)
                torch.baddbmm(unused, grad_scores, k[part], beta=0.0, alpha=ctx.scale, out=grad_q[part])
                grad_k[part] = torch.baddbmm(unused, q[part].transpose(1, 2), grad_scores, beta=0.0,
                                             alpha=ctx.scale).transpose(1, 2)
        return grad_head_major.view(3, batch, heads, length, width).permute(1, 3, 0, 2, 4), None


def self_attention(qkv: torch.Tensor, *, heads: int) -> torch.Tensor:
    """(B, L, 3 * heads * d) projections ordered (q|k|v, head, d) -> (B, L, heads * d), heads concatenated."""
    batch, length, packed_width = qkv.shape
    width = packed_width // (3 * heads)
    dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else qkv.dtype
    if qkv.device.type != "cpu" or dtype != torch.bfloat16:
        q, k, v = qkv.view(batch, length, 3, heads, width).permute(2, 0, 3, 1, 4)
        return F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(batch, length, heads * width)
    packed = qkv.to(dtype).reshape(batch, length, 3, heads, width)
    keep = torch.is_grad_enabled() and packed.requires_grad
    with torch.autocast(device_type="cpu", enabled=False):
        out = BlockedAttention.apply(packed, keep)
    return out.reshape(batch, length, heads * width)
