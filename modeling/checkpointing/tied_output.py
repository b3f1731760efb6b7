"""The output copy some checkpoints of tied models carry, and when a load skips it.

A model whose output projection is tied to the embedding (Llama 3.2, Qwen 2.5 at its
small sizes, Gemma) has no ``output.weight`` of its own. Some of its checkpoints still
hold one: Meta's Llama 3.2 ``consolidated.00.pth`` stores it as a copy of the embedding,
and some exporters write ``lm_head.weight`` into the Hugging Face checkpoints of tied
models. torchtune drops that copy on load, and so do we, but only when it has the
embedding's shape: anything else is not a copy, and a tied model cannot load it.
"""

from collections.abc import Callable
from pathlib import Path

from torch import nn

OUTPUT_KEY = "output.weight"
EMBEDDING_KEY = "tok_embeddings.weight"


def ties_output(model: nn.Module) -> bool:
    """Whether ``model``'s output projection is its embedding (a decoder built with none)."""
    return getattr(model, "output", "absent") is None


def without_tied_copy(
    keys: list[str],
    shape: Callable[[str], tuple[int, ...]],
    *,
    why: str,
    checkpoint_dir: str | Path,
) -> list[str]:
    """``keys`` (ours) without the output projection a tied model's checkpoint carries.

    Args:
        keys: Our keys of the checkpoint's tensors.
        shape: Our shape of one of them, from the file headers (a checkpointer's ``shape``).
        why: Why the output is tied, for the message (``"the model ties its output ..."``).
        checkpoint_dir: The checkpoint, for the message.

    Raises:
        ValueError: When the checkpoint's output projection is not the embedding's shape,
            so it cannot be a copy of it.
    """
    if OUTPUT_KEY not in keys or EMBEDDING_KEY not in keys:
        return keys
    output, embedding = tuple(shape(OUTPUT_KEY)), tuple(shape(EMBEDDING_KEY))
    if output != embedding:
        raise ValueError(
            f"The checkpoint in {str(checkpoint_dir)!r} has an output projection (Hugging "
            f"Face lm_head.weight, Meta output.weight) of shape {output}, unlike its "
            f"embedding's {embedding}, but {why}: it is not a copy of the embedding. Build "
            f"the model untied (tie_word_embeddings=False) or fix checkpoint_dir"
        )
    return [key for key in keys if key != OUTPUT_KEY]
