"""A generated random Llama checkpoint and a fresh-process peak-RSS/time harness.

Shared by ``bench/ckpt_load.py`` and ``bench/lora_merge.py``. Each measured command runs
in its own Python process; peak RSS is VmHWM after resetting it once imports and a small
warm-up are done, so it is what the measured code added.
"""

import json
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

# ~490M parameters: 1.96 GB in float32.
CONFIG = dict(
    architectures=["LlamaForCausalLM"],
    model_type="llama",
    vocab_size=32000,
    hidden_size=2048,
    intermediate_size=5632,
    num_hidden_layers=8,
    num_attention_heads=32,
    num_key_value_heads=8,
    max_position_embeddings=2048,
    rms_norm_eps=1e-5,
    rope_theta=500000.0,
    dtype="float32",
    tie_word_embeddings=False,
)
SHARD_BYTES = 500 * 10**6
HARNESS = """
import json, sys, time
def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024
import torch
{imports}
torch.randn(64, 64) @ torch.randn(64, 64)
open("/proc/self/clear_refs", "w").write("5")
baseline = status("VmRSS")
start = time.perf_counter()
{body}
print(json.dumps({{"seconds": time.perf_counter() - start, "peak": status("VmHWM") - baseline}}))
"""


def shapes() -> dict[str, tuple[int, ...]]:
    c = CONFIG
    h, kv = (
        c["hidden_size"],
        c["num_key_value_heads"] * c["hidden_size"] // c["num_attention_heads"],
    )
    i = c["intermediate_size"]
    out = {"model.embed_tokens.weight": (c["vocab_size"], h)}
    for n in range(c["num_hidden_layers"]):
        p = f"model.layers.{n}."
        out |= {
            p + "self_attn.q_proj.weight": (h, h),
            p + "self_attn.k_proj.weight": (kv, h),
            p + "self_attn.v_proj.weight": (kv, h),
            p + "self_attn.o_proj.weight": (h, h),
            p + "mlp.gate_proj.weight": (i, h),
            p + "mlp.up_proj.weight": (i, h),
            p + "mlp.down_proj.weight": (h, i),
            p + "input_layernorm.weight": (h,),
            p + "post_attention_layernorm.weight": (h,),
        }
    return out | {"model.norm.weight": (h,), "lm_head.weight": (c["vocab_size"], h)}


def checkpoint(directory: Path) -> Path:
    """Write (once) the random checkpoint in ~500 MB shards with its index and config."""
    if (directory / "model.safetensors.index.json").is_file():
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    shards, current, size = [], {}, 0
    for key, shape in shapes().items():
        nbytes = torch.Size(shape).numel() * 4
        if current and size + nbytes > SHARD_BYTES:
            shards.append(current)
            current, size = {}, 0
        current[key], size = shape, size + nbytes
    shards.append(current)
    weight_map, total = {}, 0
    for n, shard in enumerate(shards, start=1):
        name = f"model-{n:05d}-of-{len(shards):05d}.safetensors"
        tensors = {k: torch.randn(s) * (0.02 if len(s) == 2 else 1.0) for k, s in shard.items()}
        save_file(tensors, directory / name, metadata={"format": "pt"})
        total += sum(t.numel() * 4 for t in tensors.values())
        weight_map |= dict.fromkeys(tensors, name)
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (directory / "model.safetensors.index.json").write_text(json.dumps(index))
    (directory / "config.json").write_text(json.dumps(CONFIG))
    return directory


def raw_read_seconds(files: list[Path]) -> float:
    """Best of three plain sequential reads of ``files`` (warm page cache, as the runs)."""
    best = float("inf")
    buffer = bytearray(64 * 2**20)
    for _ in range(3):
        start = time.perf_counter()
        for path in files:
            with open(path, "rb", buffering=0) as f:
                while f.readinto(buffer):
                    pass
        best = min(best, time.perf_counter() - start)
    return best


def measure(imports: str, body: str) -> dict:
    """Seconds and peak RSS above baseline of ``body`` in a fresh Python process."""
    code = HARNESS.format(imports=imports, body=body)
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])
