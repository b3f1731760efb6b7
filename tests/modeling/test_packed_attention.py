"""Packed batches through flex_attention (BlockMask) equal the dense-mask SDPA path.

On the CPU torch runs flex_attention eagerly (its reference implementation, which the
fused GPU kernel must match); it refuses CPU backward only because inductor has no CPU
backward kernel, so the gradient tests lift that check to run the reference backward.
"""

import pytest
import torch
import torch.nn.attention.flex_attention as flex_module
import torch.nn.functional as F
from torch.nn.attention.flex_attention import BlockMask

from modeling.llama3 import llama3, llama3_tiny
from modeling.modules.attention_masks import (
    block_causal_additive_mask,
    block_causal_block_mask,
    block_causal_dense_mask,
    packed_attention_mask,
)

pytestmark = pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")

# Two packs of 512 tokens (four 128-token blocks): documents straddle block boundaries,
# and the 256-token documents leave whole blocks inside one document (full blocks), so
# the BlockMask has empty, partial and full blocks. No document is longer than the tiny
# model's 256 rotary positions.
PACKS = ([256, 200, 56], [120, 256, 100, 36])
SEQ = 512


def packed_inputs(seed: int = 1):
    """Tokens, per-document positions and document ids of ``PACKS``, and the documents."""
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(1, 768, (len(PACKS), SEQ), generator=generator)
    ids = torch.stack(
        [torch.repeat_interleave(torch.arange(len(p)), torch.tensor(p)) for p in PACKS]
    )
    input_pos = torch.stack([torch.cat([torch.arange(n) for n in p]) for p in PACKS])
    return tokens, input_pos, ids


@pytest.fixture
def cpu_flex_backward(monkeypatch):
    """Let torch run flex_attention's reference backward on the CPU (see module docstring)."""
    monkeypatch.setattr(flex_module, "_validate_device", lambda *tensors: None)


def test_flex_logits_equal_the_dense_mask_and_each_document_alone():
    torch.manual_seed(0)
    model = llama3_tiny().eval()
    tokens, input_pos, ids = packed_inputs()
    block_mask = block_causal_block_mask(ids)
    assert isinstance(block_mask, BlockMask)
    assert block_mask.full_kv_num_blocks.sum() > 0  # the full-block path is exercised
    with torch.no_grad():
        flex = model(tokens, mask=block_mask, input_pos=input_pos)
        for dense_mask in (block_causal_dense_mask(ids), block_causal_additive_mask(ids)):
            dense = model(tokens, mask=dense_mask, input_pos=input_pos)
            torch.testing.assert_close(flex, dense, atol=1e-5, rtol=0)
        for b, lengths in enumerate(PACKS):
            offset = 0
            for n in lengths:
                alone = model(tokens[b : b + 1, offset : offset + n])
                torch.testing.assert_close(
                    flex[b : b + 1, offset : offset + n], alone, atol=1e-5, rtol=0
                )
                offset += n


def test_flex_training_step_gives_the_dense_loss_and_gradients(cpu_flex_backward):
    torch.manual_seed(0)
    model = llama3_tiny().train()
    tokens, input_pos, ids = packed_inputs()
    labels = tokens.roll(-1, dims=1)

    def step(mask):
        model.zero_grad(set_to_none=True)
        logits = model(tokens, mask=mask, input_pos=input_pos)
        loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten())
        loss.backward()
        return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}

    flex_loss, flex_grads = step(block_causal_block_mask(ids))
    dense_loss, dense_grads = step(packed_attention_mask(ids))  # the CPU's choice: dense
    torch.testing.assert_close(flex_loss, dense_loss, atol=1e-5, rtol=0)
    assert flex_grads.keys() == dense_grads.keys()
    for name, grad in flex_grads.items():
        torch.testing.assert_close(grad, dense_grads[name], atol=1e-5, rtol=0, msg=name)


def test_cpu_gets_one_additive_mask_saved_once_for_every_layer():
    """Bool masks are converted, and saved, per layer by SDPA; the additive mask is shared."""
    ids = packed_inputs()[2][:, :64]
    mask = packed_attention_mask(ids)
    assert mask.dtype == torch.float32 and mask.shape == (2, 64, 64)
    allowed = block_causal_dense_mask(ids)
    assert torch.equal(mask == 0, allowed) and torch.isneginf(mask[~allowed]).all()

    torch.manual_seed(0)
    model = llama3_tiny().train()
    tokens = torch.randint(1, 768, (2, 64))

    def square_storages(mask):
        storages = set()

        def pack(t):
            if t.dim() == 4 and t.shape[-2:] == (64, 64):
                storages.add(t.untyped_storage().data_ptr())
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            model(tokens, mask=mask)
        return storages

    assert square_storages(mask) == {mask.untyped_storage().data_ptr()}
    assert len(square_storages(allowed)) == len(model.layers)  # one float copy per layer


def test_flex_refuses_attention_dropout_while_training():
    model = llama3(
        vocab_size=64,
        num_layers=1,
        num_heads=2,
        num_kv_heads=1,
        embed_dim=32,
        max_seq_len=32,
        attn_dropout=0.1,
    ).train()
    tokens, ids = torch.zeros(1, 16, dtype=torch.long), torch.zeros(1, 16, dtype=torch.long)
    with pytest.raises(ValueError, match=r"attn_dropout=0.1 .*attn_dropout=0.0"):
        model(tokens, mask=block_causal_block_mask(ids))
    with torch.no_grad():  # no dropout in eval: flex runs
        logits = model.eval()(tokens, mask=block_causal_block_mask(ids))
    assert logits.shape == (1, 16, 64)


def test_document_ids_must_be_a_batch_of_integer_rows():
    with pytest.raises(ValueError, match=r"document_ids .*\[batch, seq\].*\[16\]"):
        packed_attention_mask(torch.zeros(16, dtype=torch.long))
    with pytest.raises(ValueError, match="document_ids .*torch.float32"):
        block_causal_block_mask(torch.zeros(1, 16))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the compiled flex kernel needs CUDA")
def test_cuda_packed_step_uses_compiled_flex_and_matches_dense():
    device = torch.device("cuda")
    torch.manual_seed(0)
    model = llama3_tiny().to(device).train()
    tokens, input_pos, ids = (t.to(device) for t in packed_inputs())
    labels = tokens.roll(-1, dims=1)
    block_mask = packed_attention_mask(ids)
    assert isinstance(block_mask, BlockMask)

    def step(mask):
        model.zero_grad(set_to_none=True)
        logits = model(tokens, mask=mask, input_pos=input_pos)
        loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten())
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in model.parameters()]

    flex_loss, flex_grads = step(block_mask)
    dense_loss, dense_grads = step(block_causal_dense_mask(ids))
    torch.testing.assert_close(flex_loss, dense_loss, atol=1e-4, rtol=1e-4)
    for grad, ref in zip(flex_grads, dense_grads, strict=True):
        torch.testing.assert_close(grad, ref, atol=1e-4, rtol=1e-3)
