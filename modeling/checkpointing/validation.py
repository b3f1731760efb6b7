"""Check a checkpoint's ``config.json`` against the model it is loaded into."""

from pathlib import Path

from torch import nn

from modeling.builders import decoder_sizes

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
    prefix of the checkpoint's rows.

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
    if diffs:
        raise ValueError(
            f"{config_path} disagrees with the model builder: " + "; ".join(diffs) + ". Build "
            "the model with the checkpoint's sizes (the model keywords named) or point "
            "checkpointer.checkpoint_dir at the matching checkpoint"
        )
