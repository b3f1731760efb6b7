"""Llama 3.1, 3.2 and 3.3 against Hugging Face transformers, through our checkpointer.

Each tiny size gets a random ``LlamaForCausalLM`` of the same sizes with Meta's
``rope_type: llama3`` scaling (factor 8 for 3.1/3.3, 32 for 3.2, whose output is also
tied to the embedding), saved with ``save_pretrained`` and read back by
``FullModelHFCheckpointer`` under torchtune's model_type names.
"""

import importlib
import json

import pytest
import torch
from safetensors import safe_open

from modeling.builders import decoder_sizes
from modeling.checkpointing import FullModelHFCheckpointer
from modeling.llama3_1 import llama3_1
from modeling.llama3_2 import llama3_2
from modeling.modules import Llama3ScaledRoPE, RotaryPositionalEmbeddings, llama3_rope_scaling
from modeling.peft import get_adapter_params

transformers = pytest.importorskip("transformers")

# family -> (RoPE scale factor, tied output, torchtune's checkpointer model_type)
FAMILIES = {
    "llama3_1": (8.0, False, "LLAMA3"),
    "llama3_2": (32.0, True, "LLAMA3_2"),
    "llama3_3": (8.0, False, "LLAMA3"),
}
# The generic builder of each family's architecture (Llama 3.3 is Llama 3.1's).
GENERIC = {"llama3_1": llama3_1, "llama3_2": llama3_2, "llama3_3": llama3_1}
TOKENS = torch.randint(0, 768, (2, 200), generator=torch.Generator().manual_seed(1))


def family_module(family: str):
    return importlib.import_module(f"modeling.{family}")


def tiny(family: str, **kwargs):
    return getattr(family_module(family), f"{family}_tiny")(**kwargs)


def rope_scaling(factor: float) -> dict:
    return {
        "rope_type": "llama3",
        "factor": factor,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
    }


def hf_config(family: str, factor: float | None = None):
    """A ``LlamaConfig`` with the family's tiny sizes and its rope scaling."""
    own_factor, tied, _ = FAMILIES[family]
    with torch.device("meta"):
        sizes = decoder_sizes(tiny(family))
    return transformers.LlamaConfig(
        vocab_size=sizes["vocab_size"],
        hidden_size=sizes["embed_dim"],
        intermediate_size=sizes["intermediate_dim"],
        num_hidden_layers=sizes["num_layers"],
        num_attention_heads=sizes["num_heads"],
        num_key_value_heads=sizes["num_kv_heads"],
        max_position_embeddings=131_072,
        rms_norm_eps=sizes["norm_eps"],
        rope_theta=sizes["rope_base"],
        rope_scaling=rope_scaling(factor or own_factor),
        tie_word_embeddings=tied,
    )


def random_hf(config, seed: int = 0):
    """A float32 ``LlamaForCausalLM`` whose random weights are large enough to matter."""
    torch.manual_seed(seed)
    model = transformers.LlamaForCausalLM(config).float().eval()
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn_like(param) * 0.08 + (1.0 if param.dim() == 1 else 0.0))
    return model


def saved_keys(directory) -> set[str]:
    keys = set()
    for path in directory.glob("*.safetensors"):
        with safe_open(path, framework="pt") as f:
            keys.update(f.keys())
    return keys


def loaded(family: str, tmp_path):
    """A saved random HF model, its checkpointer, and our tiny model loaded from it."""
    hf = random_hf(hf_config(family))
    directory = tmp_path / "hf"
    hf.save_pretrained(directory)
    ckpt = FullModelHFCheckpointer(
        directory, model_type=FAMILIES[family][2], output_dir=tmp_path / "out"
    )
    ours = tiny(family).eval()
    ckpt.check_model(ours)
    ours.load_state_dict(ckpt.load_checkpoint(), strict=True)
    return hf, ckpt, ours


def logits(model, tokens=TOKENS):
    with torch.no_grad():
        out = model(tokens)
    return out.logits if hasattr(out, "logits") else out


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_logits_match_transformers(family, tmp_path):
    hf, _, ours = loaded(family, tmp_path)
    expected = logits(hf)
    assert expected.abs().max() > 1.0  # the comparison is not between near-zero logits
    torch.testing.assert_close(logits(ours), expected, atol=1e-4, rtol=1e-4)
    tied = FAMILIES[family][1]
    assert (ours.output is None) is tied
    assert ("lm_head.weight" in saved_keys(tmp_path / "hf")) is not tied


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_the_family_scale_factor_is_what_matches(family, tmp_path):
    """Our model with no scaling (factor 1) or the other family's factor differs from HF."""
    hf, _, ours = loaded(family, tmp_path)
    expected = logits(hf)
    generic = GENERIC[family]
    for factor in (1.0, 40.0 - FAMILIES[family][0]):  # 8 <-> 32
        other = generic(**decoder_sizes(ours), scale_factor=factor).eval()
        other.load_state_dict(ours.state_dict())
        assert not torch.allclose(logits(other), expected, atol=1e-3), factor


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_kv_cache_decoding_matches_full_forward(family, tmp_path):
    _, _, ours = loaded(family, tmp_path)
    tokens = TOKENS[:, :40]
    full = logits(ours, tokens)
    with torch.no_grad():
        ours.setup_caches(batch_size=2, max_seq_len=64)
        steps = [ours(tokens[:, :30])]  # prompt in one go, then one token at a time
        steps += [ours(tokens[:, i : i + 1]) for i in range(30, 40)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_round_trip_to_hf_names_is_exact(family, tmp_path):
    hf, ckpt, ours = loaded(family, tmp_path)
    back = dict(ckpt.mapper.to_hf(ours.state_dict()))
    assert set(back) == saved_keys(tmp_path / "hf")
    original = hf.state_dict()
    for key, tensor in back.items():
        assert torch.equal(tensor, original[key]), key


@pytest.mark.parametrize("family", ["llama3_1", "llama3_2"])
def test_adapter_loads_in_peft_and_merged_model_in_transformers(family, tmp_path):
    """The recipe's output path: a PEFT adapter and a merged HF model (tied stays tied)."""
    peft = pytest.importorskip("peft")
    hf, ckpt, _ = loaded(family, tmp_path)
    lora = dict(
        lora_attn_modules=["q_proj", "k_proj", "v_proj"],
        apply_lora_to_mlp=True,
        lora_rank=4,
        lora_alpha=8.0,
    )
    model = getattr(family_module(family), f"lora_{family}_tiny")(**lora)
    model.load_state_dict(ckpt.load_checkpoint(), strict=False)
    torch.manual_seed(3)
    with torch.no_grad():
        for param in get_adapter_params(model).values():
            param.copy_(torch.randn_like(param) * 0.05)
    model.eval()
    expected = logits(model)
    assert not torch.allclose(expected, logits(hf), atol=1e-3)  # the adapter does something
    written = ckpt.write_outputs(model, tmp_path / "out", rank=0, lora_config=lora)
    config = json.loads((written["adapter"] / "adapter_config.json").read_text())
    assert "lm_head" not in config["target_modules"]
    with_adapter = peft.PeftModel.from_pretrained(hf, written["adapter"]).eval()
    torch.testing.assert_close(logits(with_adapter), expected, atol=1e-4, rtol=1e-4)
    merged_dir = written["merged"]
    tied = FAMILIES[family][1]
    assert ("lm_head.weight" in saved_keys(merged_dir)) is not tied
    assert json.loads((merged_dir / "config.json").read_text())["tie_word_embeddings"] is tied
    merged = transformers.AutoModelForCausalLM.from_pretrained(merged_dir).float().eval()
    torch.testing.assert_close(logits(merged), expected, atol=1e-4, rtol=1e-4)


def test_tied_output_takes_no_lora_but_an_untied_one_does():
    from modeling.llama3_2 import lora_llama3_2_tiny

    with pytest.raises(ValueError, match="apply_lora_to_output=True is not supported for llama3_2"):
        lora_llama3_2_tiny(["q_proj"], apply_lora_to_output=True)
    untied = lora_llama3_2_tiny(["q_proj"], apply_lora_to_output=True, tie_word_embeddings=False)
    assert untied.output.lora_a.weight.shape == (8, 128)
    tied = tiny("llama3_2")
    assert tied.output is None and "output.weight" not in tied.state_dict()
    assert sum(p.numel() for p in tied.parameters()) == 393_856  # embedding counted once


@pytest.mark.parametrize("factor", [8.0, 32.0])
def test_scaled_rope_frequencies_match_transformers(factor):
    """Llama3ScaledRoPE's table is cos/sin of HF's llama3 inverse frequencies."""
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    config = hf_config("llama3_2", factor=factor)
    config.head_dim = 64
    inv_freq, attention_scaling = ROPE_INIT_FUNCTIONS["llama3"](config, "cpu")
    assert attention_scaling == 1.0
    rope = Llama3ScaledRoPE(64, max_seq_len=1024, base=500_000.0, scale_factor=factor)
    positions = torch.arange(1024, dtype=torch.float64)
    angles = torch.outer(positions, inv_freq.double())
    torch.testing.assert_close(rope.cos, angles.cos().float(), atol=2e-4, rtol=0)
    torch.testing.assert_close(rope.sin, angles.sin().float(), atol=2e-4, rtol=0)
    plain = RotaryPositionalEmbeddings(64, max_seq_len=1024, base=500_000.0)
    assert not torch.allclose(rope.cos, plain.cos, atol=1e-2)
    same = RotaryPositionalEmbeddings(
        64, max_seq_len=1024, base=500_000.0, scaling=llama3_rope_scaling(factor)
    )
    assert torch.equal(rope.cos, same.cos) and torch.equal(rope.sin, same.sin)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(scale_factor=0), r"scale_factor must be a positive number, got 0"),
        (dict(scale_factor="8"), r"scale_factor must be a positive number, got '8'"),
        (dict(old_context_len=-1), r"old_context_len must be a positive number"),
        (dict(low_freq_factor=4, high_freq_factor=4), r"high_freq_factor=4 must exceed"),
    ],
)
def test_bad_rope_scaling_is_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        llama3_rope_scaling(**kwargs)
    with pytest.raises(ValueError, match=message):
        Llama3ScaledRoPE(16, max_seq_len=8, **kwargs)


@pytest.mark.parametrize(
    ("family", "wrong", "message"),
    [
        (
            "llama3_1",
            "llama3",
            r"rope_scaling\.factor is 8\.0 there but the model has scale_factor=None",
        ),
        ("llama3_2", "llama3_1", r"tie_word_embeddings is True there but the model's output "),
        (
            "llama3_1",
            "llama3_2",
            r"rope_scaling\.factor is 8\.0 there but the model has scale_factor=32",
        ),
    ],
)
def test_a_builder_of_the_wrong_llama_release_is_named(family, wrong, message, tmp_path):
    """Llama 3 and 3.1 8B have the same sizes; only config.json's rope_scaling tells them apart."""
    random_hf(hf_config(family)).save_pretrained(tmp_path)
    ckpt = FullModelHFCheckpointer(tmp_path, model_type=FAMILIES[family][2])
    with torch.device("meta"):
        model = getattr(family_module(wrong), f"{wrong}_tiny")()
    with pytest.raises(ValueError, match=message):
        ckpt.check_model(model)
