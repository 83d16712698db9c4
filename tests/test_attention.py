"""The CPU blocked attention against PyTorch's fused kernel; transformer blocks unchanged by it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import hacm.model.attention as attention_module
from hacm.model.attention import BlockedAttention, self_attention
from hacm.model.transformer import Block, Transformer, init_weights

# (batch, heads, length, head width): the decoder's heads (432 tokens of width 32, 8 per sequence),
# the encoder's (42 tokens), and odd ones.
SHAPES = [(2, 8, 432, 32), (2, 8, 42, 32), (2, 3, 37, 8), (3, 1, 50, 16), (2, 4, 1, 8)]


def reference_attention(qkv: torch.Tensor, heads: int) -> torch.Tensor:
    """What `Attention` computed before the CPU kernel: scaled_dot_product_attention per head."""
    batch, length, packed_width = qkv.shape
    q, k, v = qkv.view(batch, length, 3, heads, packed_width // (3 * heads)).permute(2, 0, 3, 1, 4)
    return F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(batch, length, -1)


def blocked(qkv: torch.Tensor, heads: int) -> torch.Tensor:
    batch, length, packed_width = qkv.shape
    packed = qkv.view(batch, length, 3, heads, packed_width // (3 * heads))
    return BlockedAttention.apply(packed, True).reshape(batch, length, -1)


def outputs_and_gradients(function, qkv: torch.Tensor, heads: int, grad_out: torch.Tensor):
    qkv = qkv.detach().requires_grad_()
    out = function(qkv, heads)
    (grad,) = torch.autograd.grad(out, qkv, grad_out)
    return out, grad


def relative_error(value: torch.Tensor, reference: torch.Tensor) -> float:
    return ((value.double() - reference.double()).norm() / reference.double().norm()).item()


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_blocked_attention_matches_fused_kernel(shape, dtype, tolerance):
    batch, heads, length, width = shape
    generator = torch.Generator().manual_seed(0)
    qkv = torch.randn(batch, length, 3 * heads * width, generator=generator, dtype=dtype)
    grad_out = torch.randn(batch, length, heads * width, generator=generator, dtype=dtype)
    out, grad = outputs_and_gradients(blocked, qkv, heads, grad_out)
    ref_out, ref_grad = outputs_and_gradients(reference_attention, qkv, heads, grad_out)
    torch.testing.assert_close(out, ref_out, rtol=tolerance, atol=tolerance)
    torch.testing.assert_close(grad, ref_grad, rtol=tolerance, atol=tolerance)


def test_blocks_that_do_not_divide_the_heads(monkeypatch):
    """3 heads per block over 2 x 5 heads: the last block is partial."""
    batch, heads, length, width = 2, 5, 19, 4
    monkeypatch.setattr(attention_module, "BLOCK_BYTES", 3 * length * length * 8)
    generator = torch.Generator().manual_seed(1)
    qkv = torch.randn(batch, length, 3 * heads * width, generator=generator, dtype=torch.float64)
    grad_out = torch.randn(batch, length, heads * width, generator=generator, dtype=torch.float64)
    out, grad = outputs_and_gradients(blocked, qkv, heads, grad_out)
    ref_out, ref_grad = outputs_and_gradients(reference_attention, qkv, heads, grad_out)
    torch.testing.assert_close(out, ref_out, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-12, atol=1e-12)


def test_gradcheck():
    qkv = torch.randn(2, 5, 3 * 2 * 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: blocked(t, 2), (qkv,))


@pytest.mark.parametrize("shape", SHAPES)
def test_bf16_autocast_within_bf16_precision(shape):
    """bf16 inputs: close to the exact attention of those inputs, about as close as the float32 kernel."""
    batch, heads, length, width = shape
    generator = torch.Generator().manual_seed(2)
    qkv = torch.randn(batch, length, 3 * heads * width, generator=generator).bfloat16()
    grad_out = torch.randn(batch, length, heads * width, generator=generator).bfloat16()
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        out, grad = outputs_and_gradients(lambda t, h: self_attention(t, heads=h), qkv, heads, grad_out)
    assert out.dtype == grad.dtype == torch.bfloat16
    exact_out, exact_grad = outputs_and_gradients(reference_attention, qkv.double(), heads, grad_out.double())
    # rounding the result alone to bf16 gives ~2e-3; rounded scores and probabilities add as much again
    assert relative_error(out, exact_out) < 1e-2
    assert relative_error(grad, exact_grad) < 1.5e-2
    torch.testing.assert_close(out.double(), exact_out, rtol=5e-2, atol=2e-2)
    torch.testing.assert_close(grad.double(), exact_grad, rtol=5e-2, atol=5e-2)


def test_kernel_choice(monkeypatch):
    """The blocked kernel serves bf16 on CPUs only; float32 keeps scaled_dot_product_attention exactly."""
    calls = []
    original = BlockedAttention.apply
    monkeypatch.setattr(BlockedAttention, "apply", lambda *args: calls.append(1) or original(*args))
    qkv = torch.randn(2, 10, 3 * 4 * 8)
    torch.testing.assert_close(self_attention(qkv, heads=4), reference_attention(qkv, 4), rtol=0, atol=0)
    assert not calls
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        self_attention(qkv, heads=4)
    self_attention(qkv.bfloat16(), heads=4)
    assert len(calls) == 2


def test_inference_keeps_no_probabilities():
    qkv = torch.randn(2, 30, 3 * 4 * 8).bfloat16()
    with torch.no_grad():
        out = self_attention(qkv, heads=4)
    assert not out.requires_grad
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        with_grad = self_attention(qkv.requires_grad_(), heads=4)
    torch.testing.assert_close(out, with_grad.detach(), rtol=0, atol=0)


def reference_block(block: Block, x: torch.Tensor) -> torch.Tensor:
    """The pre-norm block written out with the fused kernel, from the block's own parameters."""
    attn = block.attn
    x = x + attn.proj(reference_attention(attn.qkv(block.norm1(x)), attn.heads))
    return x + block.mlp(block.norm2(x))


def test_block_parameters_and_output_unchanged():
    torch.manual_seed(0)
    block = Block(64, 4, 4.0)
    block.apply(init_weights)
    assert sorted(block.state_dict()) == sorted([
        "norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight", "attn.proj.bias",
        "norm2.weight", "norm2.bias", "mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias"])
    x = torch.randn(3, 25, 64)
    torch.testing.assert_close(block(x), reference_block(block, x), rtol=0, atol=0)


def test_transformer_output_and_gradients_unchanged_in_fp32():
    torch.manual_seed(0)
    transformer = Transformer(dim=64, depth=2, heads=8, mlp_ratio=4.0)
    transformer.apply(init_weights)
    x = torch.randn(4, 42, 64, requires_grad=True)
    inputs = [x, *transformer.parameters()]
    out = transformer(x)
    grads = torch.autograd.grad(out.pow(2).sum(), inputs)
    reference = x
    for block in transformer.blocks:
        reference = reference_block(block, reference)
    reference = transformer.norm(reference)
    reference_grads = torch.autograd.grad(reference.pow(2).sum(), inputs)
    torch.testing.assert_close(out, reference, rtol=0, atol=0)
    for grad, reference_grad in zip(grads, reference_grads):
        torch.testing.assert_close(grad, reference_grad, rtol=0, atol=0)


def test_transformer_bf16_close_to_fp32():
    torch.manual_seed(0)
    transformer = Transformer(dim=64, depth=2, heads=8, mlp_ratio=4.0)
    transformer.apply(init_weights)
    x = torch.randn(4, 42, 64, requires_grad=True)
    out = transformer(x)
    (grad,) = torch.autograd.grad(out.pow(2).sum(), x)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        low = transformer(x)
    (low_grad,) = torch.autograd.grad(low.float().pow(2).sum(), x)
    assert relative_error(low, out) < 2e-2
    assert relative_error(low_grad, grad) < 3e-2
