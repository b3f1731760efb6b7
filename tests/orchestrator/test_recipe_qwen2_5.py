"""A shipped Qwen 2.5 LoRA config, run unchanged but for the tiny model and local files.

The recipe runs as a plain function (LocalSession, no Ray) on a tiny random transformers
Qwen2 checkpoint with q/k/v biases and a tied output, and the test tokenizer trained by
``tests.modeling.qwen_tokenizer_fixtures``; peft and transformers load what it writes.
"""

import json

import pytest
import torch

from orchestrator.config import load_config
from orchestrator.recipes.finetune import finetune
from orchestrator.training.session import LocalSession
from tests.modeling import qwen_tokenizer_fixtures as fixtures

transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")


def tiny_checkpoint(directory):
    """transformers' Qwen2 at ``qwen2_5_tiny``'s sizes, saved with the test tokenizer."""
    torch.manual_seed(0)
    config = transformers.Qwen2Config(
        vocab_size=512,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        rms_norm_eps=1e-6,
        rope_theta=1_000_000.0,
        tie_word_embeddings=True,
    )
    model = transformers.Qwen2ForCausalLM(config).float()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("bias"):
                param.normal_(0.0, 0.3)
    model.save_pretrained(directory)
    fixtures.write_vocab_and_merges(directory)
    fixtures.write_tokenizer_json(directory)
    return model


def alpaca_rows(path):
    """Alpaca-format rows: capitals to memorise, in English and French."""
    pairs = [("France", "Paris"), ("Japan", "Tokyo"), ("Italy", "Rome"), ("Peru", "Lima")]
    rows = [
        {"instruction": f"{q} {country}?", "input": "", "output": city}
        for country, city in pairs
        for q in ("What is the capital of", "Quelle est la capitale de")
    ]
    path.write_text(json.dumps(rows * 4), encoding="utf-8")
    return path


def test_lora_config_trains_and_its_outputs_load_in_peft_and_transformers(tmp_path):
    base_dir, out = tmp_path / "Qwen2.5-tiny", tmp_path / "out"
    tiny_checkpoint(base_dir)
    data = alpaca_rows(tmp_path / "capitals.json")
    cfg = load_config(
        "qwen2_5/0.5B_lora",
        [
            "model._component_=modeling.qwen2_5.lora_qwen2_5_tiny",
            "model.lora_rank=8",
            "model.lora_alpha=16",
            f"tokenizer.path={base_dir}/vocab.json",
            f"tokenizer.merges_file={base_dir}/merges.txt",
            "tokenizer.max_seq_len=96",
            f"checkpointer.checkpoint_dir={base_dir}",
            f"output_dir={out}",
            "dataset._component_=orchestrator.datasets.alpaca_dataset",
            f"+dataset.source={data}",
            "batch_size=4",
            "gradient_accumulation_steps=1",
            "max_steps_per_epoch=6",
            "save_every_n_steps=100",
            "optimizer.lr=1e-2",
            "lr_scheduler.num_warmup_steps=1",
            "dtype=fp32",
        ],
    )
    finetune(cfg, LocalSession(checkpoint_root=tmp_path / "ckpt"))
    curve = [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(curve) == 6 and curve[-1] < curve[0], curve

    tokens = torch.randint(0, 472, (1, 16), generator=torch.Generator().manual_seed(0))
    base = transformers.AutoModelForCausalLM.from_pretrained(base_dir).float().eval()
    with torch.no_grad():
        before = base(tokens).logits
        with_adapter = peft.PeftModel.from_pretrained(base, out / "adapter").eval()(tokens).logits
    merged = transformers.AutoModelForCausalLM.from_pretrained(out / "merged").float().eval()
    with torch.no_grad():
        after = merged(tokens).logits
    torch.testing.assert_close(after, with_adapter, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(after, before, atol=1e-3)  # the adapter learned something
    for name in ("vocab.json", "merges.txt", "tokenizer.json"):
        assert (out / "merged" / name).is_file(), name
    state = {n for n, _ in merged.named_parameters()}
    assert "model.layers.0.self_attn.q_proj.bias" in state
