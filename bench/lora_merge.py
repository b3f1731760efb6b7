"""LoRA merge: peak RSS / largest shard and time / raw read time, ours vs PEFT.

Ours is ``modeling.checkpointing.merge_adapter`` (what ``tune merge`` runs); PEFT's is
``from_pretrained`` + ``PeftModel.from_pretrained`` + ``merge_and_unload`` +
``save_pretrained``, each in a fresh process, on the generated ~2 GB checkpoint of
``bench/ckpt_fixture.py`` with a rank-16 adapter on every attention and MLP projection.

    python -m bench.lora_merge [--dir /tmp/tunefleet-bench/llama-2g]
"""

import argparse
import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file

from bench.ckpt_fixture import checkpoint, measure, raw_read_seconds, shapes

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
MERGERS = {
    "Tunefleet merge_adapter (tune merge)": (
        "from modeling.checkpointing import merge_adapter",
        "merge_adapter({base!r}, {adapter!r}, {out!r})",
    ),
    "PEFT merge_and_unload + save_pretrained": (
        "import peft, transformers",
        "m = transformers.AutoModelForCausalLM.from_pretrained({base!r}, dtype=torch.float32)\n"
        "m = peft.PeftModel.from_pretrained(m, {adapter!r}).merge_and_unload()\n"
        "m.save_pretrained({out!r}, max_shard_size='500MB')",
    ),
}


def adapter(directory: Path, rank: int = 16) -> Path:
    """A random PEFT LoRA adapter on every projection of the checkpoint."""
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for key, shape in shapes().items():
        module = key.removesuffix(".weight")
        if module.endswith(TARGETS):
            tensors[f"base_model.model.{module}.lora_A.weight"] = torch.randn(rank, shape[1]) * 0.01
            tensors[f"base_model.model.{module}.lora_B.weight"] = torch.randn(shape[0], rank) * 0.01
    save_file(tensors, directory / "adapter_model.safetensors", metadata={"format": "pt"})
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "r": rank,
        "lora_alpha": 32,
        "target_modules": list(TARGETS),
        "lora_dropout": 0.0,
        "bias": "none",
    }
    (directory / "adapter_config.json").write_text(json.dumps(config))
    return directory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/tunefleet-bench/llama-2g"))
    args = parser.parse_args()
    base = checkpoint(args.dir)
    lora = adapter(args.dir.parent / "adapter")
    files = sorted(base.glob("model-*.safetensors"))
    shard = max(p.stat().st_size for p in files)
    raw = raw_read_seconds(files)
    total = sum(p.stat().st_size for p in files)
    print(
        f"checkpoint {total / 1e9:.2f} GB, largest shard {shard / 1e6:.0f} MB; "
        f"adapter {(lora / 'adapter_model.safetensors').stat().st_size / 1e6:.0f} MB; "
        f"raw read {raw:.2f} s"
    )
    print("| merge | peak RSS above baseline / largest shard | time / raw read time |")
    print("| --- | --- | --- |")
    for name, (imports, body) in MERGERS.items():
        out = args.dir.parent / "merged"
        result = measure(imports, body.format(base=str(base), adapter=str(lora), out=str(out)))
        shutil.rmtree(out, ignore_errors=True)
        peak, seconds = result["peak"] / shard, result["seconds"] / raw
        print(f"| {name} | {peak:.2f} | {seconds:.1f} ({result['seconds']:.2f} s) |")


if __name__ == "__main__":
    main()
