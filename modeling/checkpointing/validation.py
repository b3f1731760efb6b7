"""Check a checkpoint against the model it is loaded into, with messages that say the fix."""

import importlib

import torch
from torch import nn

# config.json field -> how to read it off a built model.
_CONFIG_FIELDS = {
    "vocab_size": lambda m: m.tok_embeddings.weight.shape[0],
    "hidden_size": lambda m: m.tok_embeddings.weight.shape[1],
    "num_hidden_layers": lambda m: len(m.layers),
    "num_attention_heads": lambda m: m.layers[0].attn.num_heads,
    "num_key_value_heads": lambda m: m.layers[0].attn.num_kv_heads,
    "head_dim": lambda m: m.layers[0].attn.head_dim,
    "intermediate_size": lambda m: m.layers[0].mlp.w1.weight.shape[0],
}
_FAMILIES = {
    "llama3": "llama3",
    "llama2": "llama2",
    "mistral": "mistral",
    "phi3_mini": "phi3",
    "gemma": "gemma",
}


def validate_config(config: dict, model: nn.Module) -> None:
    """Check that a Hugging Face ``config.json`` describes ``model``'s sizes.

    Compares vocab, hidden size, layers, heads, kv heads, head dim (when the config has
    one) and intermediate size. Phi-3's fused ``gate_up_proj`` is split before comparing.

    Raises:
        ValueError: Naming every field that differs with both values.
    """
    if "num_key_value_heads" not in config and "num_attention_heads" in config:
        config = {**config, "num_key_value_heads": config["num_attention_heads"]}
    diffs = [
        f"{field}: config.json has {config[field]}, the model has {read(model)}"
        for field, read in _CONFIG_FIELDS.items()
        if config.get(field) is not None and config[field] != read(model)
    ]
    if diffs:
        raise ValueError(
            "config.json disagrees with the model builder (" + "; ".join(diffs) + "); build "
            "the model with the checkpoint's sizes or point at the matching checkpoint"
        )


def load_into(model: nn.Module, state_dict: dict[str, torch.Tensor], model_type: str) -> None:
    """``model.load_state_dict(state_dict, strict=True)`` with errors that name the fix.

    Raises:
        ValueError: Naming unknown and missing keys, or the first key whose shape differs
            (both shapes, and the sized builders of ``model_type`` that would fit).
    """
    expected = model.state_dict()
    unknown = sorted(set(state_dict) - set(expected))
    missing = sorted(set(expected) - set(state_dict))
    if unknown or missing:
        raise ValueError(
            f"Checkpoint keys do not match the model: unknown {unknown[:8]}, missing "
            f"{missing[:8]} ({len(unknown)} unknown, {len(missing)} missing); is model_type "
            f"{model_type!r} and the builder right?"
        )
    for key, tensor in state_dict.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            fits = fitting_builders(model_type, key, tuple(tensor.shape))
            hint = (
                f"builders of {model_type!r} that fit: {fits}"
                if fits
                else (
                    f"no sized {model_type!r} builder fits; build the model with the "
                    f"checkpoint's config"
                )
            )
            raise ValueError(
                f"Shape mismatch for {key!r}: checkpoint {tuple(tensor.shape)}, model "
                f"{tuple(expected[key].shape)}; {hint}"
            )
    model.load_state_dict(state_dict, strict=True)


def fitting_builders(model_type: str, key: str, shape: tuple[int, ...]) -> list[str]:
    """Sized builders of ``model_type``'s family whose ``key`` has ``shape`` (built on meta)."""
    family = _FAMILIES.get(model_type.lower())
    if family is None:
        return []
    module = importlib.import_module(f"modeling.{family}")
    names = [
        name
        for name in module.__all__
        if name != family and not name.startswith(("lora_", "qlora_")) and "token" not in name
    ]
    fits = []
    with torch.device("meta"):
        for name in names:
            params = getattr(module, name)().state_dict()
            if key in params and tuple(params[key].shape) == shape:
                fits.append(name)
    return fits
