"""NF4 needs no bitsandbytes: QLoRA builds, quantises and trains where it cannot be imported."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Run in a fresh interpreter where ``import bitsandbytes`` fails, as on a machine without it.
SCRIPT = """
import sys
sys.modules["bitsandbytes"] = None  # any import of it now raises ImportError

import torch
from modeling.llama3 import lora_llama3
from modeling.peft import NF4Weight, get_adapter_params, set_trainable_params

tiny = dict(vocab_size=96, num_layers=1, num_heads=4, num_kv_heads=2, embed_dim=64,
            intermediate_dim=128, max_seq_len=16)
lora = dict(lora_attn_modules=["q_proj", "v_proj"], lora_rank=4, lora_alpha=8)
torch.manual_seed(0)
dense = lora_llama3(**tiny, **lora)
qlora = lora_llama3(**tiny, **lora, quantize_base=True)
qlora.load_state_dict(dense.state_dict())
assert any(isinstance(m, NF4Weight) for m in qlora.modules())
tokens = torch.arange(8)[None]
gap = (qlora(tokens) - dense(tokens)).abs().max().item()
assert 0 < gap < 0.5, gap  # quantised, close to the dense model
set_trainable_params(qlora, get_adapter_params(qlora))
qlora(tokens).sum().backward()
assert all(p.grad is not None for p in get_adapter_params(qlora).values())
print("QLORA-OK")
"""


def test_qlora_builds_quantises_and_trains_without_bitsandbytes():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "QLORA-OK" in result.stdout
