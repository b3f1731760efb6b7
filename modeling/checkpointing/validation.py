"""Check a checkpoint's ``config.json`` against the model it is loaded into."""

from pathlib import Path

from torch import nn

from modeling.builders import decoder_sizes
from modeling.checkpointing.tied_output import ties_output

# config.json field -> the builder keyword that sets it (read off a model by decoder_sizes).
_CONFIG_FIELDS = {
    "vocab_size": "vocab_size",
    "hidden_size": "embed_dim",
    "num_hidden_layers": "num_layers",
    "num_attention_heads": "num_heads",
    "num_key_value_heads": "num_kv_heads",
    "head_dim": "head_dim",
    "intermediate_size": "intermediate_dim",
}


def validate_config(
    config: dict, model: nn.Module, config_path: str | Path = "config.json"
) -> None:
    """Check that a Hugging Face ``config.json`` describes ``model``'s sizes.

    Compares vocab, hidden size, layers, heads, kv heads, head dim (when the config has
    one) and intermediate size, so that a model built with other sizes never trains on a
    prefix of the checkpoint's rows; and, when the config states them, whether the output
    is tied to the embedding and the Llama 3.1-style RoPE scaling (Llama 3 and 3.1 8B have
    the same sizes but not the same positions).

    Args:
        config: The parsed ``config.json``.
        model: The built model (on any device, possibly sharded).
        config_path: Where ``config`` came from, for the message.

    Raises:
        ValueError: Naming every field that differs, with both values and the builder
            keyword to change.
    """
    if "num_key_value_heads" not in config and "num_attention_heads" in config:
        config = {**config, "num_key_value_heads": config["num_attention_heads"]}
    sizes = decoder_sizes(model)
    diffs = [
        f"{field} is {config[field]} there but the model has {keyword}={sizes[keyword]}"
        for field, keyword in _CONFIG_FIELDS.items()
        if config.get(field) is not None and config[field] != sizes[keyword]
    ]
    diffs += _tie_and_rope_diffs(config, model)
    if diffs:
        raise ValueError(
            f"{config_path} disagrees with the model builder: " + "; ".join(diffs) + ". Build "
            "the model with the checkpoint's sizes (the model keywords named) or point "
            "checkpointer.checkpoint_dir at the matching checkpoint"
        )


def _tie_and_rope_diffs(config: dict, model: nn.Module) -> list[str]:
    """Differences in output tying and ``rope_type: llama3`` scaling the config states."""
    diffs = []
    tied = ties_output(model)
    if (
        isinstance(config.get("tie_word_embeddings"), bool)
        and config["tie_word_embeddings"] != tied
    ):
        diffs.append(
            f"tie_word_embeddings is {config['tie_word_embeddings']} there but the model's output "
            f"projection is {'tied' if tied else 'untied'} (tie_word_embeddings={tied})"
        )
    rope = config.get("rope_scaling") or config.get("rope_parameters") or {}
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    layers = getattr(model, "layers", None)
    if rope_type not in ("default", "llama3") or not layers:
        return diffs  # other scalings (Phi-3's longrope, ...) are not compared
    scaling = getattr(layers[0].attn.pos_embeddings, "scaling", None)
    factor = None if scaling is None else scaling.factor
    wanted = rope.get("factor") if rope_type == "llama3" else None
    if wanted != factor:
        diffs.append(
            f"rope_scaling.factor is {wanted} there but the model has scale_factor={factor} "
            "(Llama 3.1/3.3: modeling.llama3_1 builders, factor 8; Llama 3.2: "
            "modeling.llama3_2, factor 32; Llama 3: modeling.llama3, none)"
        )
    return diffs
