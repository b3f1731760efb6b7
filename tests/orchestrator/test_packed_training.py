"""Packed training through the recipe: the CPU's dense mask and flex_attention agree.

The recipe builds the mask from the batch's ``document_ids`` (``packed_attention_mask``:
a BlockMask on CUDA, a dense additive mask on the CPU). The flex run swaps in the
BlockMask on the CPU and lifts torch's CPU-backward check, so torch's reference
flex_attention backward runs (see ``tests/modeling/test_packed_attention.py``).
"""

import json

import pytest
import torch
import torch.nn.attention.flex_attention as flex_module

import orchestrator.recipes.finetune as finetune_module
from modeling.modules.attention_masks import block_causal_block_mask, packed_attention_mask
from orchestrator.planning.activation_memory import StepShape, mask_bytes
from orchestrator.training.session import LocalSession
from tests.orchestrator.recipe_fixtures import demo_config

pytestmark = pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")


def losses(output_dir):
    lines = (output_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["loss"] for line in lines]


def test_packed_run_with_flex_attention_gives_the_dense_losses(tmp_path, monkeypatch):
    overrides = ("dataset.packed=True", "max_steps_per_epoch=4", "save_every_n_steps=100")
    dense = demo_config(tmp_path / "assets", tmp_path / "dense", *overrides)
    finetune_module.finetune(dense, LocalSession(checkpoint_root=tmp_path / "c1"))

    built = []

    def flex_mask(document_ids):
        built.append(document_ids.shape)
        return block_causal_block_mask(document_ids)

    monkeypatch.setattr(flex_module, "_validate_device", lambda *tensors: None)
    monkeypatch.setattr(finetune_module, "packed_attention_mask", flex_mask)
    flex = demo_config(tmp_path / "assets", tmp_path / "flex", *overrides)
    finetune_module.finetune(flex, LocalSession(checkpoint_root=tmp_path / "c2"))

    assert built and all(shape == (4, 256) for shape in built)  # one mask per micro-batch
    curve = losses(tmp_path / "dense")
    assert len(curve) == 4 and curve[-1] < curve[0]
    assert losses(tmp_path / "flex") == pytest.approx(curve, abs=1e-5)


@pytest.mark.parametrize("batch, seq", [(2, 512), (1, 2048), (3, 200)])
def test_packed_mask_bytes_are_what_the_masks_hold(batch, seq):
    ids = torch.repeat_interleave(
        torch.arange(3), torch.tensor([seq // 2, seq // 4, seq - seq // 2 - seq // 4])
    )
    ids = ids[None].repeat(batch, 1)
    block_mask = block_causal_block_mask(ids)
    block_bytes = sum(
        t.numel() * t.element_size() for t in block_mask.as_tuple() if isinstance(t, torch.Tensor)
    )
    dense = packed_attention_mask(ids)  # the CPU's mask
    assert mask_bytes(StepShape(batch, seq, 2, "cuda", packed=True)) == block_bytes
    assert (
        mask_bytes(StepShape(batch, seq, 4, "cpu", packed=True))
        == dense.numel() * dense.element_size()
    )
    assert mask_bytes(StepShape(batch, seq, 2, "cuda", packed=False)) == 0
