"""Phi-3 LoRA/DoRA adapters on some of q/k/v (or gate/up) export as PEFT LoRAs on the fused
``qkv_proj``/``gate_up_proj``, checked against peft on a tiny random transformers Phi-3."""

import json

import pytest
import torch

from modeling.checkpointing import FullModelHFCheckpointer, TensorIndex
from modeling.checkpointing.adapter import fused_rank_pattern, write_peft_adapter
from modeling.checkpointing.merge import pattern_value
from modeling.convert import HeadDims, KeyMapper
from modeling.peft import get_adapter_params
from modeling.phi3 import lora_phi3
from tests.modeling.checkpoint_fixtures import logits
from tests.modeling.hf_reference import HF_CONFIGS, our_kwargs

peft = pytest.importorskip("peft")
transformers = pytest.importorskip("transformers")

RANK, ALPHA = 4, 8.0
KV_HEADS = 2  # grouped-query attention, so q, k and v blocks differ in size


def saved_phi3(directory):
    """A tiny random transformers Phi-3 with 4 query and 2 key/value heads, saved."""
    torch.manual_seed(0)
    cfg = dict(HF_CONFIGS["phi3"][2], num_key_value_heads=KV_HEADS)
    hf = transformers.Phi3ForCausalLM(transformers.Phi3Config(**cfg)).float().eval()
    with torch.no_grad():
        for param in hf.parameters():  # norms around 1, weights large enough to matter
            noise = torch.randn_like(param)
            param.copy_(1 + 0.1 * noise if param.dim() == 1 else 0.08 * noise)
    hf.save_pretrained(directory)
    return directory


def lora_model(attn_modules, apply_lora_to_mlp, use_dora, base_dir, out_dir):
    """Our LoRA Phi-3 loaded from the base, with random non-zero adapters (and magnitudes)."""
    ckpt = FullModelHFCheckpointer(base_dir, model_type="PHI3_MINI", output_dir=out_dir)
    kwargs = dict(our_kwargs("phi3"), num_kv_heads=KV_HEADS)
    lora = dict(
        lora_attn_modules=attn_modules,
        apply_lora_to_mlp=apply_lora_to_mlp,
        lora_rank=RANK,
        lora_alpha=ALPHA,
        use_dora=use_dora,
    )
    model = lora_phi3(**kwargs, **lora).eval()
    missing, unexpected = model.load_state_dict(ckpt.load_checkpoint(), strict=False)
    assert not unexpected and all(
        k.endswith(("lora_a.weight", "lora_b.weight", "magnitude")) for k in missing
    )
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for name, param in get_adapter_params(model).items():
            noise = torch.randn(param.shape, generator=gen)
            param.copy_(param * (1 + 0.2 * noise) if name.endswith("magnitude") else 0.1 * noise)
    return model, ckpt, lora


VARIANTS = [
    (["q_proj", "v_proj", "output_proj"], False),
    (["q_proj", "v_proj", "output_proj"], True),
    (["q_proj", "k_proj", "v_proj", "output_proj"], False),
    (["q_proj", "k_proj", "v_proj", "output_proj"], True),
    (["k_proj"], False),
]


@pytest.mark.parametrize("use_dora", [False, True], ids=["lora", "dora"])
@pytest.mark.parametrize(("attn_modules", "mlp"), VARIANTS, ids=lambda v: str(v))
def test_fused_adapter_matches_peft_and_merge_and_unload(attn_modules, mlp, use_dora, tmp_path):
    base_dir = saved_phi3(tmp_path / "base")
    model, ckpt, lora = lora_model(attn_modules, mlp, use_dora, base_dir, tmp_path / "out")
    expected = logits(model)
    base_logits = logits(transformers.AutoModelForCausalLM.from_pretrained(base_dir).float())
    assert (expected - base_logits).abs().max() > 1e-2  # the adapters change the output

    written = ckpt.write_outputs(model, tmp_path / "out", rank=0, lora_config=lora)

    config = json.loads((written["adapter"] / "adapter_config.json").read_text())
    qkv = sum(m in attn_modules for m in ("q_proj", "k_proj", "v_proj"))
    fused = {"qkv_proj": qkv * RANK} | ({"gate_up_proj": 2 * RANK} if mlp else {})
    assert config["r"] == RANK and config["use_dora"] is use_dora
    assert config["rank_pattern"] == {k: v for k, v in fused.items() if v != RANK}
    assert config["alpha_pattern"] == {
        k: ALPHA * v / RANK for k, v in config["rank_pattern"].items()
    }
    targets = {"qkv_proj"} | ({"o_proj"} if "output_proj" in attn_modules else set())
    assert config["target_modules"] == sorted(
        targets | ({"gate_up_proj", "down_proj"} if mlp else set())
    )

    base = transformers.AutoModelForCausalLM.from_pretrained(base_dir).float().eval()
    with_adapter = peft.PeftModel.from_pretrained(base, written["adapter"]).eval()
    torch.testing.assert_close(logits(with_adapter), expected, atol=1e-4, rtol=1e-4)

    reference = with_adapter.merge_and_unload().state_dict()
    ours = TensorIndex(sorted(written["merged"].glob("*.safetensors")))
    assert set(ours.names()) == set(reference)
    for key in ours.names():
        torch.testing.assert_close(ours.read(key), reference[key], atol=1e-5, rtol=0)
    merged = transformers.AutoModelForCausalLM.from_pretrained(written["merged"]).float().eval()
    torch.testing.assert_close(logits(merged), expected, atol=1e-4, rtol=1e-4)


def test_fused_blocks_hold_each_part_in_its_rows_and_columns(tmp_path):
    base_dir = saved_phi3(tmp_path / "base")
    model, ckpt, lora = lora_model(["q_proj", "v_proj"], False, False, base_dir, tmp_path / "o")
    written = ckpt.save_checkpoint(
        None, adapter_weights=get_adapter_params(model), adapter_config=lora
    )
    adapter = TensorIndex([written["adapter"] / "adapter_model.safetensors"])
    prefix = "base_model.model.model.layers.0.self_attn.qkv_proj"
    a, b = adapter.read(f"{prefix}.lora_A.weight"), adapter.read(f"{prefix}.lora_B.weight")
    q_rows, kv_rows = 4 * 16, KV_HEADS * 16
    assert a.shape == (2 * RANK, 64) and b.shape == (q_rows + 2 * kv_rows, 2 * RANK)
    attn = model.layers[0].attn
    torch.testing.assert_close(a, torch.cat([attn.q_proj.lora_a.weight, attn.v_proj.lora_a.weight]))
    assert not b[q_rows : q_rows + kv_rows].any()  # k: not adapted
    assert not b[:q_rows, RANK:].any() and not b[q_rows + kv_rows :, :RANK].any()
    torch.testing.assert_close(b[q_rows + kv_rows :, RANK:], attn.v_proj.lora_b.weight)


def test_dora_on_some_parts_without_a_readable_base_names_the_fix(tmp_path):
    base_dir = saved_phi3(tmp_path / "base")
    model, _, lora = lora_model(["q_proj", "v_proj"], False, True, base_dir, tmp_path / "o")
    mapper = KeyMapper("phi3_mini", HeadDims(4, KV_HEADS, 16))
    adapters = {k: v.detach() for k, v in get_adapter_params(model).items()}
    with pytest.raises(ValueError, match=r"use_dora=True.*lora_attn_modules.*use_dora=False"):
        write_peft_adapter(tmp_path / "adapter", adapters, lora, mapper, str(tmp_path / "none"))
    with pytest.raises(ValueError, match=r"qkv_proj.*base_row_norms"):
        mapper.adapters_to_peft(adapters)
    assert not (tmp_path / "adapter").exists()


def test_rank_pattern_names_layers_only_when_they_differ():
    uniform = {f"model.layers.{i}.self_attn.qkv_proj": 8 for i in range(12)}
    assert fused_rank_pattern({**uniform, "model.layers.0.self_attn.o_proj": 4}, 4) == {
        "qkv_proj": 8
    }
    mixed = dict(uniform, **{"model.layers.1.self_attn.qkv_proj": 12})
    pattern = fused_rank_pattern(mixed, 4)
    assert len(pattern) == 12 and r"model\.layers\.1\.self_attn\.qkv_proj" in pattern
    for module, rank in mixed.items():  # ours reads the pattern as PEFT does
        assert pattern[peft.utils.other.get_pattern_key(pattern, module)] == rank
        assert pattern_value(pattern, module, 4) == rank
