"""Tiny saved checkpoints for the checkpointing tests (Hugging Face, Meta, PEFT)."""

import importlib
import json
from pathlib import Path

import torch

from tests.modeling.hf_reference import MODEL_TYPES, our_kwargs, tiny_hf_model

TOKENS = torch.randint(0, 256, (2, 12), generator=torch.Generator().manual_seed(1))


def build(family: str, lora: dict | None = None):
    """Our model of the family's tiny size (a ``lora_`` model when ``lora`` is given)."""
    module = importlib.import_module(f"modeling.{family}")
    if lora is None:
        return getattr(module, family)(**our_kwargs(family)).eval()
    return getattr(module, f"lora_{family}")(**our_kwargs(family), **lora).eval()


def saved_hf(family: str, directory: Path, max_shard_size="5GB", safe=True, seed=0):
    """A tiny random transformers model saved to ``directory`` with a tokenizer stub."""
    hf = tiny_hf_model(family, seed)
    hf.save_pretrained(directory, max_shard_size=max_shard_size)
    if not safe:
        to_bin(directory)
    (directory / "tokenizer.model").write_bytes(b"tokenizer-bytes")
    (directory / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 128}))
    return hf, directory


def model_type(family: str) -> str:
    return MODEL_TYPES[family]


def logits(model, tokens=TOKENS):
    with torch.no_grad():
        out = model(tokens)
    return out.logits if hasattr(out, "logits") else out


def to_bin(directory: Path) -> None:
    """Rewrite saved safetensors shards as ``pytorch_model*.bin`` (transformers 5 writes none)."""
    from safetensors.torch import load_file

    weight_map = {}
    for path in sorted(directory.glob("*.safetensors")):
        name = path.name.replace("model", "pytorch_model", 1).replace(".safetensors", ".bin")
        tensors = load_file(path)
        torch.save(tensors, directory / name)
        weight_map.update(dict.fromkeys(tensors, name))
        path.unlink()
    (directory / "model.safetensors.index.json").unlink(missing_ok=True)
    index = {"metadata": {}, "weight_map": weight_map}
    (directory / "pytorch_model.bin.index.json").write_text(json.dumps(index))
