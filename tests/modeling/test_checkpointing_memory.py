"""Peak memory of a checkpoint load and of a LoRA merge, each in a fresh process.

Peak RSS is read from ``/proc/self/status`` (VmHWM) after resetting it once imports are
done, so the figure is what the load or merge itself added. A fixed slack covers one-time
costs (thread-pool and matmul scratch buffers) that do not grow with the model.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

pytest.importorskip("transformers")
if not Path("/proc/self/clear_refs").exists():
    pytest.skip("needs Linux /proc to measure peak RSS", allow_module_level=True)

MB = 2**20
CONFIG = dict(
    vocab_size=8192,
    hidden_size=512,
    intermediate_size=1536,
    num_hidden_layers=6,
    num_attention_heads=8,
    num_key_value_heads=2,
    max_position_embeddings=256,
    rms_norm_eps=1e-5,
    rope_theta=500000.0,
    architectures=["LlamaForCausalLM"],
    model_type="llama",
    dtype="float32",
)
PEAK = """
import json, sys
def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024
import torch
from modeling.checkpointing import FullModelHFCheckpointer, merge_adapter
# one-time library set-up (allocator arenas, matmul scratch) is not the load's memory
torch.randn(64, 64) @ torch.randn(64, 64)
open("/proc/self/clear_refs", "w").write("5")  # reset VmHWM to the current RSS
baseline = status("VmRSS")
{body}
print(json.dumps({{"peak": status("VmHWM") - baseline}}))
"""


def peak_above_baseline(body: str) -> int:
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", PEAK.format(body=body)],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["peak"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A random ~90 MB Llama checkpoint in ~24 MB shards, and a q/v/mlp LoRA adapter."""
    import transformers

    directory = tmp_path_factory.mktemp("mem") / "base"
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**CONFIG))
    model.save_pretrained(directory, max_shard_size="24MB")
    adapter = directory.parent / "adapter"
    adapter.mkdir()
    tensors = {}
    for name, param in model.named_parameters():
        module = name.removesuffix(".weight")
        if module.endswith(("q_proj", "v_proj", "gate_proj", "down_proj")):
            out_dim, in_dim = param.shape
            tensors[f"base_model.model.{module}.lora_A.weight"] = torch.randn(8, in_dim)
            tensors[f"base_model.model.{module}.lora_B.weight"] = torch.randn(out_dim, 8) * 0.01
    save_file(tensors, adapter / "adapter_model.safetensors")
    (adapter / "adapter_config.json").write_text(
        json.dumps({"peft_type": "LORA", "r": 8, "lora_alpha": 16})
    )
    model_bytes = sum(p.numel() * 4 for p in model.parameters())
    shard = max(p.stat().st_size for p in directory.glob("model-*.safetensors"))
    adapter_bytes = sum(t.numel() * 4 for t in tensors.values())
    return directory, adapter, model_bytes, shard, adapter_bytes


def test_load_adds_about_one_model(checkpoint):
    directory, _, model_bytes, _, _ = checkpoint
    peak = peak_above_baseline(
        f"state = FullModelHFCheckpointer({str(directory)!r}).load_checkpoint()\n"
        f"assert sum(t.numel() for t in state.values()) * 4 == {model_bytes}"
    )
    assert model_bytes > 60 * MB
    # one model's tensors, plus allocator slack; a second copy would be 2x
    assert peak < 1.25 * model_bytes + 8 * MB, (peak / MB, model_bytes / MB)


def test_merge_adds_about_one_shard(checkpoint, tmp_path):
    directory, adapter, model_bytes, shard, adapter_bytes = checkpoint
    peak = peak_above_baseline(
        f"merge_adapter({str(directory)!r}, {str(adapter)!r}, {str(tmp_path / 'out')!r})"
    )
    assert (tmp_path / "out" / "model.safetensors.index.json").is_file()
    assert 3 * shard < model_bytes  # the bound below is well under the whole model
    # one shard being written plus the tensor being merged; the whole model would be ~4 shards
    assert peak < 1.5 * shard + adapter_bytes + 32 * MB < model_bytes, (peak / MB, shard / MB)
