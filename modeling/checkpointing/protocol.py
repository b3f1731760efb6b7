"""The one checkpointer protocol a run uses: load this rank's rows, write the run's outputs.

A recipe never asks which kind of checkpoint it has. Every checkpointer (Hugging Face
safetensors or ``.bin``, Meta ``consolidated.NN.pth``, and those behind a URI) can:

- list its tensors under our state-dict names (:meth:`Checkpointer.keys`) and their
  shapes from the file headers (:meth:`Checkpointer.shape`);
- read rows ``[start, stop)`` of one of them without reading the rest where the format
  allows it (:meth:`Checkpointer.read_rows`), so :meth:`Checkpointer.load_into` fills a
  FSDP2-sharded model with each rank reading only the rows its shards own;
- write a finished run's ``adapter/`` and ``merged/`` under an output directory in its own
  format (:meth:`Checkpointer.write_outputs`), every rank joining the gathers it needs.
"""

from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from modeling.checkpointing.tied_output import ties_output, without_tied_copy
from modeling.sharding import load_owned_rows

# The folders a run's outputs go in, under its output directory.
ADAPTER_DIR = "adapter"
MERGED_DIR = "merged"


class Checkpointer(ABC):
    """A base checkpoint: read it into a (sharded) model, write a run's outputs from it.

    Attributes:
        model_type: The key map's model type (``llama3``, ``phi3_mini``, ...).
        checkpoint_dir: Where the base checkpoint is.
    """

    model_type: str
    checkpoint_dir: Path

    @abstractmethod
    def keys(self) -> list[str]:
        """Our state-dict keys of every tensor in the checkpoint."""

    @abstractmethod
    def shape(self, key: str) -> tuple[int, ...]:
        """The shape of our tensor ``key``, from the file headers (nothing else is read)."""

    @abstractmethod
    def read_rows(self, key: str, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Rows ``[start, stop)`` (dim 0) of our tensor ``key``; all rows when ``stop`` is None."""

    @abstractmethod
    def write_outputs(
        self,
        model: nn.Module,
        output_dir: str | Path,
        *,
        rank: int,
        lora_config: dict[str, Any] | None = None,
        max_shard_size: int | str | None = None,
        extra_files: Mapping[str, bytes] | None = None,
    ) -> dict[str, Path]:
        """Write ``output_dir/adapter`` (LoRA runs) and ``output_dir/merged``.

        Called on every rank: ranks join the collectives that gather what is written.

        Args:
            model: The trained model; parameters may be FSDP2 shards.
            output_dir: The run's output directory.
            rank: This process's rank; rank 0 writes files.
            lora_config: The LoRA keywords the model was built with; None for a full
                fine-tune.
            max_shard_size: Largest output shard (bytes or ``"5GB"``); None for the
                checkpointer's default.
            extra_files: File name -> contents written into ``adapter/`` and ``merged/``
                before each is published (the run's tokenizer files), over any copied
                from the base.

        Returns:
            The written directories by name (``"adapter"``, ``"merged"``); empty off rank 0.
        """

    @abstractmethod
    def check_model(self, model: nn.Module) -> None:
        """Raise ``ValueError`` naming the sizes where the checkpoint and ``model`` differ."""

    def load_into(self, model: nn.Module, *, strict: bool = True) -> set[str]:
        """Load the base weights into ``model``, reading only the rows this rank owns.

        When ``model`` ties its output to the embedding, an output projection the
        checkpoint still holds (a copy of the embedding, see
        :mod:`~modeling.checkpointing.tied_output`) is skipped.

        Args:
            model: A materialised model; parameters may be FSDP2 ``DTensor`` shards.
            strict: Raise for checkpoint keys the model lacks or base weights it misses.

        Returns:
            The keys loaded.

        Raises:
            ValueError: Naming the size that differs between the checkpoint and the model,
                unknown keys, missing base weights, or an output projection of a tied
                model's checkpoint that is not the embedding's shape.
        """
        self.check_model(model)
        keys = self.keys()
        if ties_output(model):
            keys = without_tied_copy(
                keys,
                self.shape,
                why="the model ties its output to the embedding",
                checkpoint_dir=self.checkpoint_dir,
            )
        return load_owned_rows(model, self.read_rows, keys, strict=strict)
