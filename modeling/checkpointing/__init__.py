"""Checkpoint reading, writing and LoRA merging for Hugging Face and Meta formats.

Pure PyTorch (no Ray). Every checkpointer implements one protocol
(:class:`~modeling.checkpointing.protocol.Checkpointer`): load the rows a rank owns into a
sharded model, and write a run's outputs. Readers read one tensor, or one slice, at a
time; writers emit one shard at a time into directories that appear atomically.
"""

from modeling.checkpointing.atomic import atomic_directory
from modeling.checkpointing.files import resolve_hf_files, resolve_meta_files
from modeling.checkpointing.hf_checkpointer import FullModelHFCheckpointer
from modeling.checkpointing.merge import merge_adapter
from modeling.checkpointing.meta_checkpointer import FullModelMetaCheckpointer
from modeling.checkpointing.protocol import ADAPTER_DIR, MERGED_DIR, Checkpointer
from modeling.checkpointing.readers import TensorIndex, iter_hf_tensors, read_hf_slice
from modeling.checkpointing.validation import validate_config

__all__ = [
    "ADAPTER_DIR",
    "MERGED_DIR",
    "Checkpointer",
    "FullModelHFCheckpointer",
    "FullModelMetaCheckpointer",
    "TensorIndex",
    "atomic_directory",
    "iter_hf_tensors",
    "merge_adapter",
    "read_hf_slice",
    "resolve_hf_files",
    "resolve_meta_files",
    "validate_config",
]
