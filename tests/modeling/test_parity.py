"""Our five families against Hugging Face transformers, through the production key map."""

import importlib

import pytest
import torch

from modeling.convert import HeadDims, KeyMapper
from tests.modeling.hf_reference import (
    FAMILIES,
    MODEL_TYPES,
    our_kwargs,
    read_hf_checkpoint,
    save_hf,
    tiny_hf_model,
)

pytest.importorskip("transformers")


def build(family: str, **extra):
    module = importlib.import_module(f"modeling.{family}")
    return getattr(module, family)(**our_kwargs(family), **extra)


def converted(family: str, tmp_path, seed: int = 0):
    """A Hugging Face model and our model loaded from its saved checkpoint."""
    hf = tiny_hf_model(family, seed)
    config, items = read_hf_checkpoint(save_hf(hf, tmp_path / family))
    mapper = KeyMapper(MODEL_TYPES[family], HeadDims.from_hf_config(config))
    ours = build(family).eval()
    ours.load_state_dict(mapper.convert_from_hf(items), strict=True)
    return hf, ours, mapper


@pytest.mark.parametrize("family", FAMILIES)
def test_logits_match_transformers(family, tmp_path):
    hf, ours, _ = converted(family, tmp_path)
    tokens = torch.randint(0, 256, (2, 24), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = hf(tokens).logits
        actual = ours(tokens)
    assert actual.shape == expected.shape == (2, 24, 256)
    assert expected.abs().max() > 1.0  # the comparison is not between near-zero logits
    torch.testing.assert_close(actual, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("family", FAMILIES)
def test_round_trip_to_hf_names_is_exact(family, tmp_path):
    hf, ours, mapper = converted(family, tmp_path)
    back = dict(mapper.to_hf(ours.state_dict()))
    original = {k: v for k, v in hf.state_dict().items() if k in back}
    assert set(back) == set(original)
    for key, tensor in back.items():
        assert torch.equal(tensor, original[key]), key


@pytest.mark.parametrize("family", ["llama3", "gemma", "phi3"])
def test_kv_cache_decoding_matches_full_forward(family, tmp_path):
    _, ours, _ = converted(family, tmp_path)
    tokens = torch.randint(0, 256, (2, 16), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        full = ours(tokens)
        ours.setup_caches(batch_size=2, max_seq_len=32)
        steps = [ours(tokens[:, :10])]  # prompt in one go, then one token at a time
        steps += [ours(tokens[:, i : i + 1]) for i in range(10, 16)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-5)
    ours.reset_caches()
    with torch.no_grad():
        again = ours(tokens[:, :4])
    torch.testing.assert_close(again, full[:, :4], atol=1e-5, rtol=1e-5)


def test_unknown_hf_key_is_named():
    mapper = KeyMapper("llama3", HeadDims(4, 2, 16))
    with pytest.raises(ValueError, match=r"model\.layers\.0\.self_attn\.qkv_proj\.weight.*llama3"):
        mapper.from_hf("model.layers.0.self_attn.qkv_proj.weight", torch.zeros(1))


def test_unknown_model_type_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"Unknown model_type 'gpt2'.*llama3"):
        KeyMapper("gpt2", HeadDims(4, 2, 16))


def test_llama31_rope_scaling_matches_transformers(tmp_path):
    import transformers

    from modeling.llama3 import llama3
    from modeling.modules import RopeScaling

    scaling = RopeScaling(
        factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0, original_max_seq_len=32
    )
    cfg = dict(tiny_hf_model("llama3").config.to_dict())
    cfg["rope_scaling"] = {
        "rope_type": "llama3",
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 32,
        "rope_theta": 500_000.0,
    }
    cfg.pop("rope_parameters", None)
    torch.manual_seed(0)
    hf = transformers.LlamaForCausalLM(transformers.LlamaConfig(**cfg)).float().eval()
    with torch.no_grad():
        for param in hf.parameters():
            param.copy_(torch.randn_like(param) * 0.08 + (1.0 if param.dim() == 1 else 0.0))
    config, items = read_hf_checkpoint(save_hf(hf, tmp_path / "llama31"))
    mapper = KeyMapper("llama3", HeadDims.from_hf_config(config))
    ours = llama3(**our_kwargs("llama3"), rope_scaling=scaling).eval()
    ours.load_state_dict(mapper.convert_from_hf(items))
    plain = llama3(**our_kwargs("llama3")).eval()
    plain.load_state_dict(ours.state_dict())
    tokens = torch.randint(0, 256, (1, 100), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = hf(tokens).logits
        torch.testing.assert_close(ours(tokens), expected, atol=1e-4, rtol=1e-4)
        assert not torch.allclose(plain(tokens), expected, atol=1e-3)  # scaling matters here
