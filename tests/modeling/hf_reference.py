"""Tiny random Hugging Face models of each family and our builder keywords for the same sizes.

Used by parity tests: the Hugging Face model is saved with ``save_pretrained`` and read
back through the production key map, so the tests exercise the real conversion.
"""

import json
from pathlib import Path

import torch
from safetensors import safe_open

FAMILIES = ("llama3", "llama2", "mistral", "phi3", "gemma")
MODEL_TYPES = {
    "llama3": "llama3",
    "llama2": "llama2",
    "mistral": "mistral",
    "phi3": "phi3_mini",
    "gemma": "gemma",
}

_COMMON = dict(
    vocab_size=256,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=3,
    max_position_embeddings=128,
    rms_norm_eps=1e-5,
)
HF_CONFIGS = {
    "llama3": (
        "LlamaConfig",
        "LlamaForCausalLM",
        dict(_COMMON, num_attention_heads=4, num_key_value_heads=2, rope_theta=500_000.0),
    ),
    "llama2": (
        "LlamaConfig",
        "LlamaForCausalLM",
        dict(_COMMON, num_attention_heads=4, num_key_value_heads=4, rope_theta=10_000.0),
    ),
    "mistral": (
        "MistralConfig",
        "MistralForCausalLM",
        dict(
            _COMMON,
            num_attention_heads=4,
            num_key_value_heads=2,
            rope_theta=10_000.0,
            sliding_window=None,
        ),
    ),
    "phi3": (
        "Phi3Config",
        "Phi3ForCausalLM",
        dict(
            _COMMON,
            num_attention_heads=4,
            num_key_value_heads=4,
            rope_theta=10_000.0,
            pad_token_id=0,
            tie_word_embeddings=False,
        ),
    ),
    "gemma": (
        "GemmaConfig",
        "GemmaForCausalLM",
        dict(
            _COMMON,
            num_attention_heads=4,
            num_key_value_heads=1,
            head_dim=32,
            rope_theta=10_000.0,
            rms_norm_eps=1e-6,
            hidden_activation="gelu_pytorch_tanh",
        ),
    ),
}


def our_kwargs(family: str) -> dict:
    """Our generic builder's keywords for the family's tiny Hugging Face config."""
    cfg = HF_CONFIGS[family][2]
    kwargs = dict(
        vocab_size=cfg["vocab_size"],
        num_layers=cfg["num_hidden_layers"],
        num_heads=cfg["num_attention_heads"],
        num_kv_heads=cfg["num_key_value_heads"],
        embed_dim=cfg["hidden_size"],
        intermediate_dim=cfg["intermediate_size"],
        max_seq_len=cfg["max_position_embeddings"],
        norm_eps=cfg["rms_norm_eps"],
        rope_base=cfg["rope_theta"],
    )
    if family == "gemma":
        kwargs["head_dim"] = cfg["head_dim"]
    return kwargs


def tiny_hf_model(family: str, seed: int = 0):
    """A float32 random Hugging Face model whose weights are large enough to matter."""
    import transformers

    config_name, model_name, cfg = HF_CONFIGS[family]
    torch.manual_seed(seed)
    config = getattr(transformers, config_name)(**cfg)
    model = getattr(transformers, model_name)(config).float().eval()
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() == 1:  # norms: around 1 (Gemma stores the offset from 1)
                param.copy_(torch.randn_like(param) * 0.1 + (0.0 if family == "gemma" else 1.0))
            else:
                param.copy_(torch.randn_like(param) * 0.08)
    return model


def save_hf(model, directory: Path) -> Path:
    """``save_pretrained`` as safetensors; return the directory."""
    model.save_pretrained(directory, safe_serialization=True)
    return directory


def read_hf_checkpoint(directory: Path) -> tuple[dict, list[tuple[str, torch.Tensor]]]:
    """The config.json and every ``(key, tensor)`` of a saved Hugging Face checkpoint."""
    config = json.loads((directory / "config.json").read_text())
    items = []
    for path in sorted(directory.glob("*.safetensors")):
        with safe_open(path, framework="pt") as f:
            items.extend((key, f.get_tensor(key)) for key in f.keys())  # noqa: SIM118
    return config, items
