"""Qwen 2.5 against transformers' Qwen2ForCausalLM, through FullModelHFCheckpointer.

Tied (0.5B-3B) and untied (7B+) tiny random models with non-zero q/k/v biases: logits,
exact round trip to Hugging Face names, KV-cache decoding, sliced bias reads, LoRA with
frozen biases, and the PEFT adapter and merged outputs loaded back by peft/transformers.
"""

import json

import pytest
import torch

from modeling.checkpointing import FullModelHFCheckpointer
from modeling.peft import get_adapter_params, get_merged_state_dict
from modeling.qwen2_5 import (
    lora_qwen2_5,
    qlora_qwen2_5_tiny,
    qwen2_5,
    qwen2_5_tiny,
)

transformers = pytest.importorskip("transformers")

SIZES = dict(
    vocab_size=256,
    num_layers=3,
    num_heads=4,
    num_kv_heads=2,
    embed_dim=64,
    intermediate_dim=128,
    max_seq_len=128,
    norm_eps=1e-6,
    rope_base=1_000_000.0,
)
TOKENS = torch.randint(0, 256, (2, 24), generator=torch.Generator().manual_seed(1))
LORA = dict(
    lora_attn_modules=["q_proj", "k_proj", "v_proj", "output_proj"],
    apply_lora_to_mlp=True,
    lora_rank=4,
    lora_alpha=8.0,
)
TIED = pytest.mark.parametrize("tied", [True, False], ids=["tied", "untied"])


def tiny_hf(tied: bool, seed: int = 0):
    """A float32 Qwen2ForCausalLM with norms near 1, sizeable biases and small weights."""
    torch.manual_seed(seed)
    config = transformers.Qwen2Config(
        vocab_size=SIZES["vocab_size"],
        hidden_size=SIZES["embed_dim"],
        intermediate_size=SIZES["intermediate_dim"],
        num_hidden_layers=SIZES["num_layers"],
        num_attention_heads=SIZES["num_heads"],
        num_key_value_heads=SIZES["num_kv_heads"],
        max_position_embeddings=SIZES["max_seq_len"],
        rms_norm_eps=SIZES["norm_eps"],
        rope_theta=SIZES["rope_base"],
        tie_word_embeddings=tied,
    )
    model = transformers.Qwen2ForCausalLM(config).float().eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("bias"):
                param.copy_(torch.randn_like(param) * 0.5)
            elif param.dim() == 1:
                param.copy_(torch.randn_like(param) * 0.1 + 1.0)
            else:
                param.copy_(torch.randn_like(param) * 0.08)
    return model


def saved(tied: bool, directory, **save_kwargs):
    """A tiny Hugging Face Qwen saved to ``directory`` (with tokenizer files to copy)."""
    hf = tiny_hf(tied)
    hf.save_pretrained(directory, **save_kwargs)
    for name in ("vocab.json", "merges.txt", "tokenizer.json"):
        (directory / name).write_text("{}")
    return hf, directory


def converted(tied: bool, tmp_path):
    hf, directory = saved(tied, tmp_path / "hf")
    ckpt = FullModelHFCheckpointer(directory, model_type="QWEN2", output_dir=tmp_path / "out")
    ours = qwen2_5(**SIZES, tie_word_embeddings=tied).eval()
    ours.load_state_dict(ckpt.load_checkpoint(), strict=True)
    ckpt.check_model(ours)
    return hf, ours, ckpt


def logits(model, tokens=TOKENS):
    with torch.no_grad():
        out = model(tokens)
    return out.logits if hasattr(out, "logits") else out


@TIED
def test_logits_match_transformers(tied, tmp_path):
    hf, ours, ckpt = converted(tied, tmp_path)
    expected = logits(hf)
    assert expected.abs().max() > 1.0  # not a comparison of near-zero logits
    torch.testing.assert_close(logits(ours), expected, atol=1e-4, rtol=1e-4)
    assert ("output.weight" in ours.state_dict()) is not tied
    assert ("output.weight" in list(ckpt.keys())) is not tied  # tied: no lm_head stored


def test_biases_take_part(tmp_path):
    _, ours, _ = converted(True, tmp_path)
    expected = logits(ours)
    with torch.no_grad():
        for layer in ours.layers:
            layer.attn.q_proj.bias.zero_()
            layer.attn.k_proj.bias.zero_()
    assert not torch.allclose(logits(ours), expected, atol=1e-2)


@TIED
def test_round_trip_to_hf_names_is_exact(tied, tmp_path):
    hf, ours, ckpt = converted(tied, tmp_path)
    back = dict(ckpt.mapper.to_hf(ours.state_dict()))
    original = hf.state_dict()
    if tied:
        original.pop("lm_head.weight")  # the embedding, under a second name
    assert set(back) == set(original)
    for key, tensor in back.items():
        assert torch.equal(tensor, original[key]), key


def test_kv_cache_decoding_matches_full_forward(tmp_path):
    _, ours, _ = converted(False, tmp_path)
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


@pytest.mark.parametrize("key", ["q_proj.bias", "k_proj.bias", "v_proj.bias", "q_proj.weight"])
def test_sliced_reads_of_biases_equal_the_full_read(key, tmp_path):
    _, ours, ckpt = converted(False, tmp_path)
    full = ours.state_dict()[f"layers.1.attn.{key}"]
    for start, stop in ((0, len(full)), (3, 21), (16, len(full))):
        torch.testing.assert_close(
            ckpt.read_rows(f"layers.1.attn.{key}", start, stop), full[start:stop]
        )


def trained_lora(tmp_path, tied: bool, use_dora: bool = False):
    """Our LoRA Qwen on the saved base, trained two steps so every adapter is non-zero."""
    _, ours, ckpt = converted(tied, tmp_path)
    model = lora_qwen2_5(**LORA, **SIZES, tie_word_embeddings=tied, use_dora=use_dora)
    missing, unexpected = model.load_state_dict(ckpt.load_checkpoint(), strict=False)
    assert not unexpected
    assert missing and all(
        k.endswith(("lora_a.weight", "lora_b.weight", "magnitude")) for k in missing
    )
    model.eval()
    torch.testing.assert_close(logits(model), logits(ours), atol=1e-5, rtol=1e-5)
    biases = {k: v.clone() for k, v in model.state_dict().items() if k.endswith("bias")}
    assert len(biases) == 3 * SIZES["num_layers"]
    assert not any(p.requires_grad for k, p in model.named_parameters() if k.endswith("bias"))
    params = get_adapter_params(model)
    optimizer = torch.optim.SGD(params.values(), lr=0.5)
    model.train()
    for _ in range(2):
        loss = torch.nn.functional.cross_entropy(
            model(TOKENS[:, :-1]).flatten(0, 1), TOKENS[:, 1:].flatten()
        )
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    assert all(p.abs().sum() > 0 for p in params.values())
    for key, bias in biases.items():
        assert torch.equal(model.state_dict()[key], bias), key
    return model, ckpt


@pytest.mark.parametrize(
    ("tied", "use_dora"), [(True, False), (False, True)], ids=["tied-lora", "untied-dora"]
)
def test_peft_adapter_and_merged_model_load_in_peft_and_transformers(tied, use_dora, tmp_path):
    peft = pytest.importorskip("peft")
    model, ckpt = trained_lora(tmp_path, tied, use_dora)
    expected = logits(model)
    merged_state = get_merged_state_dict(model)
    plain = qwen2_5(**SIZES, tie_word_embeddings=tied).eval()
    plain.load_state_dict(merged_state, strict=True)
    torch.testing.assert_close(logits(plain), expected, atol=1e-4, rtol=1e-4)
    written = ckpt.save_checkpoint(
        merged_state,
        max_shard_size="60KB",
        adapter_weights=get_adapter_params(model),
        adapter_config=dict(LORA, use_dora=use_dora),
    )
    config = json.loads((written["adapter"] / "adapter_config.json").read_text())
    assert config["bias"] == "none" and config["use_dora"] is use_dora
    assert config["target_modules"] == sorted(
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    base = transformers.AutoModelForCausalLM.from_pretrained(ckpt.checkpoint_dir).float().eval()
    with_adapter = peft.PeftModel.from_pretrained(base, written["adapter"]).eval()
    torch.testing.assert_close(logits(with_adapter), expected, atol=1e-4, rtol=1e-4)
    merged = transformers.AutoModelForCausalLM.from_pretrained(written["merged"]).float().eval()
    torch.testing.assert_close(logits(merged), expected, atol=1e-4, rtol=1e-4)
    for name in ("vocab.json", "merges.txt", "tokenizer.json"):
        assert (written["merged"] / name).is_file(), name


@TIED
def test_run_outputs_merge_the_adapter_into_the_base_files(tied, tmp_path):
    model, ckpt = trained_lora(tmp_path, tied)
    written = ckpt.write_outputs(model, tmp_path / "run", rank=0, lora_config=LORA)
    merged = transformers.AutoModelForCausalLM.from_pretrained(written["merged"]).float().eval()
    torch.testing.assert_close(logits(merged), logits(model), atol=1e-4, rtol=1e-4)
    files = {k for path in written["merged"].glob("*.safetensors") for k in _keys(path)}
    assert ("lm_head.weight" in files) is not tied
    assert "model.layers.0.self_attn.q_proj.bias" in files


def _keys(path):
    from safetensors import safe_open

    with safe_open(path, framework="pt") as f:
        return list(f.keys())  # noqa: SIM118


def test_qlora_tiny_keeps_dense_frozen_biases():
    torch.manual_seed(0)
    base = qwen2_5_tiny().eval()
    model = qlora_qwen2_5_tiny(["q_proj", "v_proj"], apply_lora_to_mlp=True, lora_rank=4)
    missing, unexpected = model.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected and all(k.endswith(("lora_a.weight", "lora_b.weight")) for k in missing)
    attn, base_attn = model.layers[0].attn, base.layers[0].attn
    for name in ("q_proj", "k_proj", "v_proj"):  # LoRA over NF4, frozen NF4, LoRA over NF4
        bias = getattr(attn, name).bias
        assert bias.dtype == torch.float32 and not bias.requires_grad
        assert torch.equal(bias, getattr(base_attn, name).bias)
    tokens = TOKENS[:, :8] % 512
    expected, out = logits(base, tokens), logits(model.eval(), tokens)
    assert torch.isfinite(out).all()
    assert torch.nn.functional.cosine_similarity(out.flatten(), expected.flatten(), dim=0) > 0.99
