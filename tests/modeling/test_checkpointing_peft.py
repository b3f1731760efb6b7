"""PEFT adapter export and ``tune merge`` against peft itself."""

import json

import pytest
import torch
from typer.testing import CliRunner

from modeling.checkpointing import FullModelHFCheckpointer, TensorIndex
from modeling.peft import get_adapter_params, get_merged_state_dict
from orchestrator.cli import app
from tests.modeling.checkpoint_fixtures import TOKENS, build, logits, saved_hf

peft = pytest.importorskip("peft")
transformers = pytest.importorskip("transformers")

LORA = dict(
    lora_attn_modules=["q_proj", "k_proj", "v_proj"],
    apply_lora_to_mlp=True,
    lora_rank=4,
    lora_alpha=8.0,
)


def trained_lora(tmp_path, use_dora=False):
    """Our LoRA Llama 3 on a saved base, trained two steps so every adapter is non-zero."""
    hf, directory = saved_hf("llama3", tmp_path / "base", max_shard_size="60KB")
    ckpt = FullModelHFCheckpointer(directory, model_type="LLAMA3", output_dir=tmp_path / "out")
    model = build("llama3", dict(LORA, use_dora=use_dora))
    missing, unexpected = model.load_state_dict(ckpt.load_checkpoint(), strict=False)
    assert not unexpected and all(
        k.endswith(("lora_a.weight", "lora_b.weight", "magnitude")) for k in missing
    )
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
    return model, ckpt, directory


@pytest.mark.parametrize("use_dora", [False, True], ids=["lora", "dora"])
def test_adapter_loads_in_peft_and_merged_model_in_transformers(use_dora, tmp_path):
    model, ckpt, base_dir = trained_lora(tmp_path, use_dora)
    written = ckpt.save_checkpoint(
        get_merged_state_dict(model),
        max_shard_size="60KB",
        adapter_weights=get_adapter_params(model),
        adapter_config=dict(LORA, use_dora=use_dora),
    )
    config = json.loads((written["adapter"] / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["r"] == 4 and config["use_dora"] is use_dora
    assert config["target_modules"] == [
        "down_proj",
        "gate_proj",
        "k_proj",
        "q_proj",
        "up_proj",
        "v_proj",
    ]
    expected = logits(model)
    base = transformers.AutoModelForCausalLM.from_pretrained(base_dir).float().eval()
    with_adapter = peft.PeftModel.from_pretrained(base, written["adapter"]).eval()
    torch.testing.assert_close(logits(with_adapter), expected, atol=1e-4, rtol=1e-4)
    merged = transformers.AutoModelForCausalLM.from_pretrained(written["merged"]).float().eval()
    torch.testing.assert_close(logits(merged), expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("use_dora", [False, True], ids=["lora", "dora"])
def test_tune_merge_equals_peft_merge_and_unload(use_dora, tmp_path):
    model, ckpt, base_dir = trained_lora(tmp_path, use_dora)
    adapter_dir = ckpt.save_checkpoint(
        None,
        adapter_weights=get_adapter_params(model),
        adapter_config=dict(LORA, use_dora=use_dora),
    )["adapter"]
    out = tmp_path / "merged-cli"
    result = CliRunner().invoke(
        app, ["merge", "--base", str(base_dir), "--adapter", str(adapter_dir), "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    base = transformers.AutoModelForCausalLM.from_pretrained(base_dir).float().eval()
    reference = peft.PeftModel.from_pretrained(base, adapter_dir).merge_and_unload().state_dict()
    ours = TensorIndex(sorted(out.glob("*.safetensors")))
    assert set(ours.names()) == {k for k in reference if k != "lm_head.weight"} | {"lm_head.weight"}
    for key in ours.names():
        torch.testing.assert_close(ours.read(key), reference[key], atol=1e-5, rtol=0)
    # same shard layout as the base (one output shard per base shard), index and side files
    assert (
        json.loads((out / "model.safetensors.index.json").read_text())["weight_map"]
        == json.loads((base_dir / "model.safetensors.index.json").read_text())["weight_map"]
    )
    assert (out / "tokenizer.model").read_bytes() == (base_dir / "tokenizer.model").read_bytes()
    merged = transformers.AutoModelForCausalLM.from_pretrained(out).float().eval()
    torch.testing.assert_close(logits(merged), logits(model), atol=1e-4, rtol=1e-4)


def test_tune_merge_reshards_and_reports_errors_without_traceback(tmp_path):
    model, ckpt, base_dir = trained_lora(tmp_path)
    adapter_dir = ckpt.save_checkpoint(
        None, adapter_weights=get_adapter_params(model), adapter_config=LORA
    )["adapter"]
    out = tmp_path / "m"
    args = ["merge", "--base", str(base_dir), "--adapter", str(adapter_dir), "--output", str(out)]
    result = CliRunner().invoke(app, [*args, "--max-shard-size", "200KB"])
    assert result.exit_code == 0, result.output
    assert sorted(p.stat().st_size < 201_000 for p in out.glob("model-*.safetensors")) == [True] * 3
    bad = CliRunner().invoke(app, ["merge", "--base", str(tmp_path / "nope"), *args[3:]])
    assert bad.exit_code == 1
    assert "Checkpoint directory" in bad.output and "nope" in bad.output
    assert "Traceback" not in bad.output
    _, wrong_base = saved_hf("phi3", tmp_path / "phi3")
    bad = CliRunner().invoke(app, ["merge", "--base", str(wrong_base), *args[3:]])
    assert bad.exit_code == 1 and "targets weights the base" in bad.output
    # the failed merges left the earlier output as it was and no temporary directories
    assert len(list(out.glob("model-*.safetensors"))) == 3
    assert not list(tmp_path.glob(".m.*"))
