"""Sized builders carry the published sizes; generic builders reject impossible ones."""

import importlib

import pytest
import torch

from modeling.gemma import gemma, lora_gemma
from modeling.llama3 import llama3, lora_llama3

PUBLISHED = {
    "llama3.llama3_8b": 8.03e9,
    "llama3.llama3_70b": 70.6e9,
    "llama2.llama2_7b": 6.74e9,
    "llama2.llama2_13b": 13.0e9,
    "llama2.llama2_70b": 69.0e9,
    "mistral.mistral_7b": 7.24e9,
    "phi3.phi3_mini": 3.82e9,
    "gemma.gemma_2b": 2.51e9,
    "gemma.gemma_7b": 8.54e9,
}
TINY = dict(
    vocab_size=64,
    num_layers=1,
    num_heads=4,
    num_kv_heads=2,
    embed_dim=32,
    max_seq_len=16,
    intermediate_dim=64,
)


def builder(path: str):
    module, name = path.split(".")
    return getattr(importlib.import_module(f"modeling.{module}"), name)


@pytest.mark.parametrize("path", sorted(PUBLISHED))
def test_parameter_count_matches_published_total(path):
    with torch.device("meta"):
        model = builder(path)()
    total = sum(p.numel() for p in model.parameters())
    assert float(f"{total:.3g}") == PUBLISHED[path], total
    assert all(p.is_meta for p in model.parameters())


@pytest.mark.parametrize("path", sorted(PUBLISHED))
def test_lora_and_qlora_sized_builders_work_on_meta(path):
    family, name = path.split(".")
    with torch.device("meta"):
        lora = builder(f"{family}.lora_{name}")(["q_proj", "v_proj"], lora_rank=8)
        qlora = builder(f"{family}.qlora_{name}")(["q_proj", "v_proj"], lora_rank=8)
    assert lora.layers[0].attn.q_proj.lora_a.weight.shape[0] == 8
    assert qlora.layers[0].attn.q_proj.lora_b.weight.is_meta


def test_seed_import_paths_resolve_to_the_same_builders():
    from modeling.models.llama3 import llama3_8b as via_models

    from modeling.llama3 import llama3_8b

    assert via_models is llama3_8b


def test_intermediate_dim_defaults_follow_meta():
    from modeling.builders import llama_intermediate_dim

    assert llama_intermediate_dim(4096) == 11_008  # Llama 2 7B
    assert llama_intermediate_dim(4096, 1024, 1.3) == 14_336  # Llama 3 8B
    with torch.device("meta"):
        model = llama3(
            vocab_size=8, num_layers=1, num_heads=32, num_kv_heads=8, embed_dim=4096, max_seq_len=8
        )
    assert model.layers[0].mlp.w1.weight.shape == (14_336, 4096)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(TINY, num_heads=5), r"num_heads=5 must divide embed_dim=32"),
        (dict(TINY, num_kv_heads=3), r"num_kv_heads=3 must divide num_heads=4.*\[1, 2, 4\]"),
        (dict(TINY, vocab_size=0), r"vocab_size must be a positive integer"),
    ],
)
def test_impossible_sizes_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        llama3(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(lora_attn_modules=["q_proj", "query"]), r"unknown module\(s\) \['query'\].*allowed"),
        (dict(lora_attn_modules="q_proj"), r"lora_attn_modules must be a list"),
        (dict(lora_attn_modules=["q_proj"], lora_rank=0), r"lora_rank must be a positive"),
        (dict(lora_attn_modules=["q_proj"], lora_rank=-4), r"lora_rank must be a positive"),
    ],
)
def test_bad_lora_options_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        lora_llama3(**kwargs, **TINY)


def test_gemma_rejects_lora_on_tied_output():
    sizes = dict(TINY, head_dim=16)
    with pytest.raises(ValueError, match="apply_lora_to_output=True is not supported for gemma"):
        lora_gemma(["q_proj"], apply_lora_to_output=True, **sizes)
    model = gemma(**sizes)
    assert model.output is None and "output.weight" not in model.state_dict()


def test_output_mask_computes_only_the_selected_logits():
    torch.manual_seed(0)
    model = llama3(**TINY)
    tokens = torch.randint(0, 64, (2, 8))
    keep = torch.zeros(2, 8, dtype=torch.bool)
    keep[0, 3:] = True
    keep[1, 6] = True
    full = model(tokens)
    selected = model(tokens, output_mask=keep)
    assert selected.shape == (6, 64)
    torch.testing.assert_close(selected, full[keep])
