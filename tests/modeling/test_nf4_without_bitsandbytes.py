"""bitsandbytes is needed for NF4 (QLoRA) only: without it LoRA, full and planning work."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Run in a fresh interpreter where ``import bitsandbytes`` fails, as on a machine without it.
SCRIPT = """
import sys
sys.modules["bitsandbytes"] = None  # any import of it now raises ImportError

import torch
import modeling.peft
from modeling.llama3 import llama3, lora_llama3

tiny = dict(vocab_size=96, num_layers=1, num_heads=4, num_kv_heads=2, embed_dim=64,
            intermediate_dim=128, max_seq_len=16)
lora = dict(lora_attn_modules=["q_proj", "v_proj"], lora_rank=4, lora_alpha=8)
tokens = torch.arange(8)[None]
assert lora_llama3(**tiny, **lora)(tokens).shape == (1, 8, 96)
assert llama3(**tiny)(tokens).shape == (1, 8, 96)
with torch.device("meta"):  # what tune plan builds: no quantisation on meta
    lora_llama3(**tiny, **lora, quantize_base=True)
try:
    lora_llama3(**tiny, **lora, quantize_base=True)
except ImportError as error:
    print("QLORA-ERROR:", error)
else:
    raise AssertionError("a QLoRA build without bitsandbytes did not raise")
"""


def test_lora_works_and_qlora_names_the_install_without_bitsandbytes():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    message = result.stdout.split("QLORA-ERROR:", 1)[1]
    assert "pip install bitsandbytes" in message
    assert "quantize_base" in message and "qlora_" in message
