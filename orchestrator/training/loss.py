"""Cross-entropy over the vocabulary, computed in chunks of the sequence."""

import torch
import torch.nn.functional as F

from modeling.data import CROSS_ENTROPY_IGNORE_IDX


class CEWithChunkedOutputLoss:
    """Token-level cross-entropy that upcasts logits to float32 one chunk at a time.

    With bf16 logits the float32 copy is the largest activation of a step; chunking the
    sequence keeps only ``1 / num_output_chunks`` of it alive. The loss is a *sum* over
    non-ignored tokens, so the recipe can normalise by the token count of the whole global
    batch (across gradient-accumulation steps and workers) and get the same gradient for
    any split of that batch.

    Args:
        num_output_chunks: Chunks along the sequence.
        ignore_index: Label value that takes no loss.
    """

    def __init__(
        self, num_output_chunks: int = 8, ignore_index: int = CROSS_ENTROPY_IGNORE_IDX
    ) -> None:
        if num_output_chunks < 1:
            raise ValueError(f"num_output_chunks must be >= 1, got {num_output_chunks}")
        self.num_output_chunks = num_output_chunks
        self.ignore_index = ignore_index

    def __call__(
        self, logits: torch.Tensor | list[torch.Tensor], labels: torch.Tensor
    ) -> torch.Tensor:
        """Summed loss of ``logits`` against ``labels`` (already shifted).

        Args:
            logits: ``[b, s, v]``, or ``[n, v]`` for logits of selected positions only; or
                the model's ``output_chunks=num_output_chunks`` list of their chunks.
            labels: ``[b, s]``, or ``[n]`` to match.
        """
        chunks = logits if isinstance(logits, list) else None
        if chunks is None:
            chunks = torch.tensor_split(logits, self.num_output_chunks, dim=logits.dim() - 2)
        dim = chunks[0].dim() - 2  # the sequence (or selected-position) dimension
        total = chunks[0].new_zeros((), dtype=torch.float32)
        for logit_chunk, label_chunk in zip(
            chunks, torch.tensor_split(labels, self.num_output_chunks, dim=dim), strict=True
        ):
            total = total + F.cross_entropy(
                logit_chunk.reshape(-1, logit_chunk.shape[-1]).float(),
                label_chunk.reshape(-1),
                ignore_index=self.ignore_index,
                reduction="sum",
            )
        return total


def shift_labels(
    labels: torch.Tensor, ignore_index: int = CROSS_ENTROPY_IGNORE_IDX
) -> torch.Tensor:
    """Labels for next-token prediction: position i is scored against token i + 1."""
    pad = labels.new_full((labels.shape[0], 1), ignore_index)
    return torch.cat([labels[:, 1:], pad], dim=1)
